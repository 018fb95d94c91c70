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
        if len(password) < app.config["MIN_PASSWORD_LENGTH"]:
            raise click.BadParameter(f"use at least {app.config['MIN_PASSWORD_LENGTH']} characters", param_hint="password")
        register_user(username, password, is_admin=True)
        click.echo(f"Admin '{username}' created.")
