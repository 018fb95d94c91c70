"""Per-user quotas: stored bytes, images, datasets, models, and trainings queued or running at once.

Limits: the site defaults (settings QUOTA_*, which an admin overrides on Admin -> Limits; kept in the
`settings` table), then the user's own overrides (users.quota_*, Admin -> Users). 0 means no limit.

Usage: images and bytes are counters on the user row (users.image_count / image_bytes) for every image in
the datasets the user owns, whoever uploaded it. They change in the same transaction as the image rows:
`reserve_images` (a conditional UPDATE, so two uploads at once cannot both take the last room) before an
insert, `release_images` with a delete. Datasets, models and active runs are counted with one indexed
query each (a user has hundreds of those, not hundreds of thousands).

Services raise QuotaExceeded (403, code "quota_exceeded") with a message naming the quota.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import case, func, select, update

from app.errors import QuotaExceeded, ValidationError
from app.extensions import db
from app.i18n import N_, format_number, ngettext, stored_join, stored_line, stored_text
from app.models import Dataset, Setting, TrainingRun, User

MB = 1024 * 1024
DEFAULTS_KEY = "quota_defaults"
MODEL_STATUSES = ("queued", "running", "succeeded")  # runs that are or will be a model
ACTIVE_STATUSES = ("queued", "running")


@dataclass(frozen=True)
class Limits:
    """One user's (or the site's default) quotas; 0 = no limit."""

    storage_mb: int = 0
    images: int = 0
    datasets: int = 0
    models: int = 0
    active_runs: int = 0


NAMES = tuple(f.name for f in fields(Limits))
LABELS = {"storage_mb": N_("Storage (MB)"), "images": N_("Images"), "datasets": N_("Datasets"),
          "models": N_("Models"), "active_runs": N_("Trainings queued or running")}


# --- limits ----------------------------------------------------------------------------------------

def default_limits() -> Limits:
    """The site defaults: QUOTA_* settings, overridden by what an admin saved."""
    cfg = current_app.config
    values = {name: cfg[f"QUOTA_{name.upper()}"] for name in NAMES}
    saved = db.session.get(Setting, DEFAULTS_KEY)
    if saved is not None and isinstance(saved.value, dict):
        values.update({k: int(v) for k, v in saved.value.items() if k in NAMES and v is not None})
    return Limits(**values)


def user_overrides(user: User) -> dict:
    """The user's own limits (None where the site default applies)."""
    return {name: getattr(user, f"quota_{name}") for name in NAMES}


def limits_for(user: User) -> Limits:
    """The limits that apply to `user`."""
    defaults = asdict(default_limits())
    return Limits(**{name: value if value is not None else defaults[name]
                     for name, value in user_overrides(user).items()})


def parse_limits(form, allow_blank: bool) -> dict:
    """Quota values from a form (field names as in Limits): whole numbers >= 0; blank = None (the site
    default) where allowed."""
    values = {}
    for name in NAMES:
        raw = (form.get(name) or "").strip().replace(",", "").replace("_", "")
        if not raw and allow_blank:
            values[name] = None
            continue
        if not raw.isdigit() or len(raw) > 9:
            text = (_("%(what)s: enter a whole number (0 for no limit) or leave it empty for the site default.",
                      what=_(LABELS[name])) if allow_blank else
                    _("%(what)s: enter a whole number (0 for no limit).", what=_(LABELS[name])))
            raise ValidationError(text)
        values[name] = int(raw)
    return values


def save_default_limits(values: dict) -> Limits:
    """Store new site defaults (every name of Limits, ints)."""
    setting = db.session.get(Setting, DEFAULTS_KEY) or Setting(key=DEFAULTS_KEY)
    setting.value = {name: int(values[name]) for name in NAMES}
    db.session.add(setting)
    db.session.commit()
    return default_limits()


def save_user_limits(user: User, values: dict) -> Limits:
    """Store a user's overrides (None = the site default)."""
    for name in NAMES:
        setattr(user, f"quota_{name}", values.get(name))
    db.session.commit()
    return limits_for(user)


# --- usage -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Usage:
    images: int
    bytes: int
    datasets: int
    models: int
    active_runs: int


def count_datasets(user_id: int) -> int:
    return db.session.scalar(select(func.count(Dataset.id)).where(
        Dataset.owner_id == user_id, Dataset.deleting.is_(False))) or 0


def count_runs(user_id: int, statuses) -> int:
    """The user's runs in these statuses; a model being deleted no longer counts (its room is free at once)."""
    return db.session.scalar(select(func.count(TrainingRun.id)).where(
        TrainingRun.created_by_id == user_id, TrainingRun.status.in_(statuses),
        TrainingRun.deleting.is_(False))) or 0


def usage_for(user_id: int) -> Usage:
    """What the user holds now (fresh from the database)."""
    images, nbytes = db.session.execute(select(User.image_count, User.image_bytes).where(User.id == user_id)).one()
    return Usage(images=images or 0, bytes=nbytes or 0, datasets=count_datasets(user_id),
                 models=count_runs(user_id, MODEL_STATUSES), active_runs=count_runs(user_id, ACTIVE_STATUSES))


def human_bytes(size: float) -> str:
    """1.5 GB, 20.0 MB, 300 KB."""
    for unit, scale in (("GB", 1024 ** 3), ("MB", MB)):
        if size >= scale:
            return f"{format_number(size / scale, 1)} {unit}"
    return f"{format_number(size / 1024, 0)} KB"


def usage_rows(user: User) -> list[dict]:
    """The account page's table: [{label, used, limit, percent}] (limit None = no limit)."""
    limits, usage = limits_for(user), usage_for(user.id)
    rows = [(_("Storage"), usage.bytes, limits.storage_mb * MB, human_bytes),
            (_("Images"), usage.images, limits.images, format_number),
            (_("Datasets"), usage.datasets, limits.datasets, format_number),
            (_("Models"), usage.models, limits.models, format_number),
            (_("Trainings queued or running"), usage.active_runs, limits.active_runs, format_number)]
    return [{"label": label, "used": show(used), "limit": show(limit) if limit else None,
             "percent": min(100, round(100 * used / limit)) if limit else None}
            for label, used, limit, show in rows]


# --- images: room, reserve, release ----------------------------------------------------------------

def owner_of(dataset_id: int) -> int:
    return db.session.scalar(select(Dataset.owner_id).where(Dataset.id == dataset_id))


def image_room(user_id: int) -> tuple[int | None, int | None]:
    """(images, bytes) the user may still add; None = no limit."""
    user = db.session.get(User, user_id)
    limits = limits_for(user)
    images, nbytes = db.session.execute(select(User.image_count, User.image_bytes).where(User.id == user_id)).one()
    return (max(0, limits.images - images) if limits.images else None,
            max(0, limits.storage_mb * MB - nbytes) if limits.storage_mb else None)


def images_full_message(user_id: int, adding: int = 1, adding_bytes: int = 0, acting_user_id: int | None = None) -> str:
    """Which quota stops `adding` more images of `adding_bytes`, in words ("your" quota when the owner
    is the one acting: the signed-in user, or `acting_user_id`)."""
    return stored_text(images_full_line(user_id, adding, adding_bytes, acting_user_id))


def images_full_line(user_id: int, adding: int = 1, adding_bytes: int = 0, acting_user_id: int | None = None) -> dict:
    """images_full_message as an app.i18n.stored_line (what a job keeps, shown in the reader's language)."""
    user = db.session.get(User, user_id)
    limits = limits_for(user)
    images, nbytes = db.session.execute(select(User.image_count, User.image_bytes).where(User.id == user_id)).one()
    acting = acting_user_id if acting_user_id is not None else _current_user_id()
    values = {"owner": user.username, "limit": limits.images, "stored": images,
              "size": human_bytes(limits.storage_mb * MB), "used": human_bytes(nbytes)}
    mine = user_id == acting
    if limits.images and images + adding > limits.images:
        text = (N_("Your quota of %(limit)s images is reached (%(stored)s stored).") if mine else
                N_("The quota of the dataset's owner (%(owner)s) of %(limit)s images is reached (%(stored)s stored)."))
    elif limits.storage_mb:
        text = (N_("Your storage quota of %(size)s is full (%(used)s used).") if mine else
                N_("The storage quota of the dataset's owner (%(owner)s) of %(size)s is full (%(used)s used)."))
    else:
        text = (N_("Your image quota is reached.") if mine else
                N_("The image quota of the dataset's owner (%(owner)s) is reached."))
    used = {name: value for name, value in values.items() if f"%({name})s" in text}
    return stored_join(stored_line(text, **used), stored_line(N_("Delete images or ask an administrator for more.")))


def _current_user_id() -> int | None:
    from flask import has_request_context
    from flask_login import current_user

    if has_request_context() and current_user.is_authenticated:
        return current_user.id
    return None


def check_image_room(user_id: int) -> None:
    """QuotaExceeded when the user cannot add a single image any more."""
    images, nbytes = image_room(user_id)
    if images == 0 or nbytes == 0:
        raise QuotaExceeded(images_full_message(user_id, 1, 1))


def reserve_images(user_id: int, count: int, nbytes: int) -> bool:
    """Count `count` images of `nbytes` against the user's quota, in the caller's transaction (committed
    or rolled back with the rows). False, and nothing counted, when they do not fit."""
    if count <= 0:
        return True
    limits = limits_for(db.session.get(User, user_id))
    conditions = [User.id == user_id]
    if limits.images:
        conditions.append(User.image_count + count <= limits.images)
    if limits.storage_mb:
        conditions.append(User.image_bytes + nbytes <= limits.storage_mb * MB)
    done = db.session.execute(
        update(User).where(*conditions).values(image_count=User.image_count + count,
                                               image_bytes=User.image_bytes + nbytes)
        .execution_options(synchronize_session=False)).rowcount
    return done == 1


def release_images(user_id: int | None, count: int, nbytes: int) -> None:
    """Images were deleted: give their room back (in the caller's transaction; never below zero)."""
    if user_id is None or count <= 0:
        return
    db.session.execute(update(User).where(User.id == user_id).values(
        image_count=case((User.image_count > count, User.image_count - count), else_=0),
        image_bytes=case((User.image_bytes > nbytes, User.image_bytes - nbytes), else_=0),
    ).execution_options(synchronize_session=False))


def fitting(rows: list[dict], room: tuple[int | None, int | None]) -> list[dict]:
    """The longest prefix of `rows` (dicts with size_bytes) that fits into `room`."""
    images, nbytes = room
    kept, total = [], 0
    for row in rows:
        if images is not None and len(kept) + 1 > images:
            break
        if nbytes is not None and total + row["size_bytes"] > nbytes:
            break
        kept.append(row)
        total += row["size_bytes"]
    return kept


def recount_images(user_id: int | None = None) -> int:
    """Set the image counters from the image rows (repairs drift; `flask quotas recount`). Returns how
    many users were updated. Counts every row once: for maintenance, not for requests."""
    from app.models import Image

    ids = [user_id] if user_id is not None else list(db.session.scalars(select(User.id)))
    for uid in ids:
        count, nbytes = db.session.execute(
            select(func.count(Image.id), func.coalesce(func.sum(Image.size_bytes), 0))
            .join(Dataset, Dataset.id == Image.dataset_id)
            .where(Dataset.owner_id == uid, Dataset.deleting.is_(False))).one()  # deleted: room given back
        db.session.execute(update(User).where(User.id == uid).values(image_count=count, image_bytes=nbytes))
    db.session.commit()
    return len(ids)


# --- datasets, models, trainings -------------------------------------------------------------------

def check_can_create_dataset(user_id: int) -> None:
    limit = limits_for(db.session.get(User, user_id)).datasets
    if limit and count_datasets(user_id) >= limit:
        raise QuotaExceeded(ngettext("You have %(count)s dataset, your quota. Delete one, or ask an administrator "
                                     "for more.", "You have %(count)s datasets, your quota. Delete one, or ask an "
                                     "administrator for more.", limit, count=format_number(limit)))


def check_can_queue_run(user_id: int, counting_new: bool = False) -> None:
    """QuotaExceeded when the user's active-training limit or model quota does not allow one more run.
    counting_new: the new run is already committed (checked again after its insert, so two requests at
    once cannot both take the last place; the caller deletes it)."""
    limits = limits_for(db.session.get(User, user_id))
    extra = 0 if counting_new else 1
    if limits.active_runs and count_runs(user_id, ACTIVE_STATUSES) + extra > limits.active_runs:
        raise QuotaExceeded(ngettext(
            "You already have %(num)s training queued or running, your limit. Wait for it to finish or cancel it, "
            "then start this one.",
            "You already have %(num)s trainings queued or running, your limit. Wait for one to finish or cancel "
            "one, then start this one.", limits.active_runs))
    if limits.models and count_runs(user_id, MODEL_STATUSES) + extra > limits.models:
        raise QuotaExceeded(_models_full(limits.models))


def check_models_within_quota(user_id: int) -> None:
    """QuotaExceeded when the user holds more models than their quota allows (a restored model is counted
    in the restore's transaction, before its commit)."""
    limit = limits_for(db.session.get(User, user_id)).models
    if limit and count_runs(user_id, MODEL_STATUSES) > limit:
        raise QuotaExceeded(_models_full(limit))


def _models_full(limit: int) -> str:
    return ngettext("You have %(count)s model, your quota. Delete models you no longer need, "
                    "or ask an administrator for more.",
                    "You have %(count)s models, your quota. Delete models you no longer need, "
                    "or ask an administrator for more.", limit, count=format_number(limit))
