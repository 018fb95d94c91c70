"""Admin logic: the admin check, user management, the queue overview."""
from __future__ import annotations

import logging
from functools import wraps

from flask import abort
from flask_login import current_user
from flask_babel import gettext as _
from redis.exceptions import RedisError
from rq import Worker
from rq.registry import FailedJobRegistry, FinishedJobRegistry, StartedJobRegistry
from sqlalchemy import func, select

from app.access import shown_runs
from app.blueprints.auth.reset_links import ResetLink, cancel_reset_link, issue_reset_link
from app.errors import Conflict, DomainError, NotFound, ValidationError
from app.extensions import db, get_queue, get_redis
from app.models import TrainingRun, User

log = logging.getLogger(__name__)
RECENT_RUNS = 20


def is_admin(user) -> bool:
    """True for a logged-in, enabled admin."""
    return bool(user and user.is_authenticated and user.is_admin and not user.is_disabled)


def admin_required(view):
    """Admins only; everyone else (anonymous included) gets a 404, as if the page did not exist."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not is_admin(current_user):
            abort(404)
        return view(*args, **kwargs)

    return wrapped


def list_users() -> list[User]:
    """Every account (not those being deleted), admins first, then by name."""
    return list(db.session.scalars(select(User).where(User.deleted_at.is_(None))
                                   .order_by(User.is_admin.desc(), func.lower(User.username))))


def get_user(user_id: int) -> User:
    """One account by id; NotFound when there is none (or it is being deleted)."""
    user = db.session.get(User, user_id)
    if user is None or user.deleted_at is not None:
        raise NotFound(_("There is no such account."))
    return user


def _other_user(acting_user_id: int, user_id: int, action: str) -> User:
    user = get_user(user_id)
    if user.id == acting_user_id:
        raise DomainError(_("You cannot %(action)s your own account. Ask another admin to do it.", action=action), 409)
    return user


def set_admin(acting_user_id: int, user_id: int, value: bool) -> User:
    """Grant or remove admin rights; an admin cannot demote themselves (someone must stay admin)."""
    user = _other_user(acting_user_id, user_id, _("remove admin rights from") if not value else _("change"))
    user.is_admin = value
    db.session.commit()
    log.info("admin user=%s set is_admin=%s on user=%s", acting_user_id, value, user.id)
    return user


def set_disabled(acting_user_id: int, user_id: int, value: bool) -> User:
    """Disable or re-enable an account; disabled accounts cannot log in and are signed out."""
    user = _other_user(acting_user_id, user_id, _("disable") if value else _("change"))
    user.is_disabled = value
    if value:
        cancel_reset_link(user)
    db.session.commit()
    if value:
        from app.blueprints.auth.sessions import end_other_sessions

        end_other_sessions(user, keep_current=False)
    log.info("admin user=%s set is_disabled=%s on user=%s", acting_user_id, value, user.id)
    return user


def create_reset_link(acting_user_id: int, user_id: int) -> ResetLink:
    """A one-time password reset link for another account, to show the admin once (only its hash is kept);
    any earlier link of that account stops working."""
    user = get_user(user_id)
    if user.id == acting_user_id:
        raise Conflict(_("Change your own password on your account page."))
    link = issue_reset_link(user)
    log.info("admin user=%s created a password reset link for user=%s, valid until %s UTC",
             acting_user_id, user.id, link.expires_at.isoformat(timespec="minutes"))
    return link


def user_to_delete(acting_user_id: int, user_id: int) -> User:
    """The account an admin is about to delete: not their own (that is done on the account page)."""
    user = get_user(user_id)
    if user.id == acting_user_id:
        raise Conflict(_("Delete your own account on your account page."))
    return user


def delete_user(acting_user: User, user_id: int, typed_name: str, transfer_to_id: str = "") -> tuple[str, User | None]:
    """Delete another account once the admin typed its name; its datasets go to the account
    `transfer_to_id` names (empty: they are deleted). Returns (the account's name, the receiver): the
    deletion renames the row."""
    from app.blueprints.auth.deletion import delete_account

    user = user_to_delete(acting_user.id, user_id)
    if (typed_name or "").strip() != user.username:
        raise ValidationError(_("Type the account's name, %(name)s, to confirm.", name=user.username))
    receiver = None
    if transfer_to_id:
        receiver = db.session.get(User, int(transfer_to_id)) if transfer_to_id.isdigit() else None
        if receiver is None:
            raise ValidationError(_("There is no such account."))
    name = user.username
    delete_account(user, acting_user, transfer_to=receiver)
    return name, receiver


def queue_overview() -> dict:
    """Job counts, live workers and recent training runs; `redis_error` set when Redis is down."""
    overview = {"counts": {}, "workers": [], "redis_error": None, "queue": None}
    try:
        queue = get_queue()
        conn = get_redis()
        overview["queue"] = queue.name
        overview["counts"] = {
            "queued": queue.count,
            "running": StartedJobRegistry(queue=queue).get_job_count(cleanup=False),
            "failed": FailedJobRegistry(queue=queue).get_job_count(cleanup=False),
            "finished": FinishedJobRegistry(queue=queue).get_job_count(cleanup=False),
        }
        overview["workers"] = [_worker_info(w) for w in Worker.all(connection=conn)]
    except (RedisError, OSError) as err:
        log.warning("queue overview: Redis is not answering: %s", err)
        overview["redis_error"] = "Redis (the job queue) is not answering, so job counts are unknown."
    overview["runs"] = list(
        db.session.scalars(select(TrainingRun).where(shown_runs()).order_by(TrainingRun.id.desc()).limit(RECENT_RUNS))
    )
    return overview


def _worker_info(worker: Worker) -> dict:
    job_id = worker.get_current_job_id()
    return {
        "name": worker.name,
        "state": str(getattr(worker.get_state(), "value", worker.get_state())),
        "queues": ", ".join(q.name for q in worker.queues),
        "current_job": job_id.decode() if isinstance(job_id, bytes) else job_id,
        "last_heartbeat": worker.last_heartbeat,
        "done": worker.successful_job_count,
        "failed": worker.failed_job_count,
    }


def count_users() -> int:
    """How many accounts exist."""
    return db.session.scalar(select(func.count(User.id)).where(User.deleted_at.is_(None))) or 0
