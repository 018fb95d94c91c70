"""Admin -> Limits: the site's quota defaults, one user's overrides, and who used the most in the last day
(storage, predictions, training time)."""
from __future__ import annotations

import logging
from datetime import timedelta

from redis.exceptions import RedisError
from sqlalchemy import or_, select
from flask_babel import gettext as _

from app import activity, quotas
from app.i18n import ngettext
from app.extensions import db
from app.models import TrainingRun, User, utcnow

log = logging.getLogger(__name__)
TOP = 10


def save_defaults(acting_user_id: int, form) -> quotas.Limits:
    """New site-wide quota defaults from the admin form (0 = no limit)."""
    limits = quotas.save_default_limits(quotas.parse_limits(form, allow_blank=False))
    log.info("admin user=%s set quota defaults %s", acting_user_id, limits)
    return limits


def save_user_limits(acting_user_id: int, user: User, form) -> quotas.Limits:
    """One user's overrides from the admin form (blank = the site default)."""
    limits = quotas.save_user_limits(user, quotas.parse_limits(form, allow_blank=True))
    log.info("admin user=%s set quotas of user=%s to %s", acting_user_id, user.id, limits)
    return limits


def _names(ids) -> dict[int, str]:
    ids = [i for i in ids if i is not None]
    if not ids:
        return {}
    return dict(db.session.execute(select(User.id, User.username).where(  # a deleted one is named as such below
        User.id.in_(ids), User.deleted_at.is_(None))).all())


def top_storage() -> list[dict]:
    users = db.session.scalars(select(User).where(User.image_count > 0)
                               .order_by(User.image_bytes.desc(), User.id).limit(TOP))
    return [{"user": _("deleted account") if u.deleted_at else u.username, "value": quotas.human_bytes(u.image_bytes),
             "detail": ngettext("%(num)s image", "%(num)s images", u.image_count)} for u in users]


def top_predictions() -> tuple[list[dict], str | None]:
    """Callers with the most images predicted in the last 24 hours; (rows, error when Redis is down)."""
    try:
        rows = activity.top_predictors(TOP)
    except (RedisError, OSError) as err:
        log.warning("top predictions: Redis is not answering: %s", err)
        return [], _("Redis is not answering, so prediction counts are unknown.")
    names = _names(int(member[5:]) for member, _ in rows if member.startswith("user:"))
    result = []
    for member, images in rows:
        kind, _sep, ident = member.partition(":")
        who = (names.get(int(ident), _("deleted account #%(id)s", id=ident)) if kind == "user" else
               _("anonymous (%(address)s)", address=ident))
        result.append({"user": who, "value": ngettext("%(num)s image", "%(num)s images", int(images)), "detail": ""})
    return result, None


def top_training() -> list[dict]:
    """Users whose runs trained longest within the last 24 hours (running ones until now)."""
    now = utcnow()
    since = now - timedelta(hours=24)
    rows = db.session.execute(select(TrainingRun.created_by_id, TrainingRun.started_at, TrainingRun.finished_at)
                              .where(TrainingRun.started_at.is_not(None),
                                     or_(TrainingRun.finished_at.is_(None), TrainingRun.finished_at > since))).all()
    seconds: dict[int | None, float] = {}
    runs: dict[int | None, int] = {}
    for user_id, started, finished in rows:
        end = finished or now
        spent = (end - max(started, since)).total_seconds()
        if spent > 0:
            seconds[user_id] = seconds.get(user_id, 0.0) + spent
            runs[user_id] = runs.get(user_id, 0) + 1
    names = _names(seconds)
    ranked = sorted(seconds.items(), key=lambda item: -item[1])[:TOP]
    return [{"user": names.get(uid, _("deleted account")), "value": _duration(spent),
             "detail": ngettext("%(num)s run", "%(num)s runs", runs[uid])} for uid, spent in ranked]


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{max(minutes, 1)} min"


def overview() -> dict:
    """Everything the Limits page shows."""
    predictions, predictions_error = top_predictions()
    return {"defaults": quotas.default_limits(), "labels": quotas.LABELS, "storage": top_storage(),
            "predictions": predictions, "predictions_error": predictions_error, "training": top_training()}
