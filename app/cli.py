"""Flask CLI commands: `flask create-admin`, `flask shutdown`."""
from __future__ import annotations

import click
from flask import Flask


def init_cli(app: Flask) -> None:
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

