"""Flask CLI commands: `flask create-admin`, `flask shutdown`, `flask import-folder`."""
from __future__ import annotations

import click
from flask import Flask
from flask.cli import with_appcontext


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


def init_cli(app: Flask) -> None:
    app.cli.add_command(import_folder)

    @app.cli.command("create-admin")
    @click.option("--username", prompt=True)
    @click.password_option()
    def create_admin(username: str, password: str) -> None:
        """Create an admin account, or make an existing account an admin."""
        from app.blueprints.auth.services import find_user, register_user
        from app.extensions import db

        user = find_user(username)
        if user is not None:
            user.is_admin = True
            db.session.commit()
            click.echo(f"'{user.username}' is now an admin.")
            return
        from app.errors import DomainError

        try:
            register_user(username, password, is_admin=True)
        except DomainError as err:
            raise click.BadParameter(err.message, param_hint="password") from None
        click.echo(f"Admin '{username}' created.")

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

