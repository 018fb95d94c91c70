"""Undo for the labeling grid: every label / unlabel / delete there can be taken back for UNDO_SECONDS,
and so can deleting a class (its name, colour and place, and the class of each of its images).

Labeling records each image's label columns from before in an UndoAction (same transaction as the
change). Deleting moves the rows into trashed_images: their quota room is given back at once, but their
hashes still count as referenced, so their files stay until the action expires; then the hashes go the
usual way (pending_file_removals and a sweep). Undoing a delete puts the rows back (same ids where
free), reserving quota room again; images re-uploaded meanwhile and classes deleted meanwhile are
respected.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, insert, or_, select, update

from app import quotas
from app.i18n import ngettext
from app.batching import IN_CHUNK, chunked
from app.errors import NotFound, QuotaExceeded
from app.extensions import db
from app.models import Image, Label, TrainingRun, TrashedImage, UndoAction, User, utcnow

LABEL_COLUMNS = ("label_id", "label_source", "labeled_by_id", "label_model_id")
ROW_COLUMNS = tuple(c.name for c in Image.__table__.columns)
GONE = _l("This can no longer be undone (it is too long ago, or it was undone already).")


def _window() -> timedelta:
    return timedelta(seconds=current_app.config["UNDO_SECONDS"])


def record_labels(dataset_id: int, user_id: int, image_ids: list[int]) -> UndoAction:
    """Remember the images' label columns before a change (the caller commits with the change)."""
    before = []
    for part in chunked(image_ids):
        rows = db.session.execute(select(Image.id, *[getattr(Image, c) for c in LABEL_COLUMNS])
                                  .where(Image.dataset_id == dataset_id, Image.id.in_(part)))
        before.extend([list(row) for row in rows])
    action = UndoAction(dataset_id=dataset_id, user_id=user_id, kind="label", count=len(image_ids),
                        payload={"groups": packed(before)})
    db.session.add(action)
    db.session.flush()
    return action


def packed(rows: list[list]) -> list:
    """Rows [image_id, *values] as [[values, [[first id, last id], ...]], ...]: the images that share
    values, as runs of consecutive ids. A class imported from a folder is a few runs, not 200,000 numbers
    (the payload is read whenever the classes page offers the undo)."""
    groups: dict[tuple, list[int]] = {}
    for image_id, *values in rows:
        groups.setdefault(tuple(values), []).append(image_id)
    return [[list(values), _runs(sorted(ids))] for values, ids in groups.items()]


def _runs(ids: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for image_id in ids:
        if runs and image_id == runs[-1][1] + 1:
            runs[-1][1] = image_id
        else:
            runs.append([image_id, image_id])
    return runs


def unpacked(payload) -> list[list]:
    """The rows [image_id, *values] a payload holds: packed groups, or the plain rows actions recorded
    before packing (a list, or a class's "images")."""
    if isinstance(payload, list):
        return payload
    if "groups" not in payload:
        return payload.get("images") or []
    return [[image_id, *values] for values, runs in payload["groups"]
            for first, last in runs for image_id in range(first, last + 1)]


def _as_json(value):
    return value.isoformat() if isinstance(value, datetime) else value


def trash_rows(dataset_id: int, user_id: int, image_ids: list[int]) -> tuple[UndoAction, int]:
    """Move the images' rows into the trash of a new 'delete' action; returns (action, bytes freed).
    The caller commits (and gives the quota room back) in the same transaction."""
    action = UndoAction(dataset_id=dataset_id, user_id=user_id, kind="delete", count=len(image_ids))
    db.session.add(action)
    db.session.flush()
    freed = 0
    for part in chunked(image_ids):
        rows = db.session.execute(select(Image.__table__).where(Image.dataset_id == dataset_id,
                                                                Image.id.in_(part))).mappings().all()
        trashed = [{"undo_id": action.id, "sha256": r["sha256"], "row": {k: _as_json(r[k]) for k in ROW_COLUMNS}}
                   for r in rows]
        for few in chunked(trashed, IN_CHUNK // 3):  # three values a row: statements stay under IN_CHUNK
            db.session.execute(insert(TrashedImage), few)
        freed += sum(r["size_bytes"] or 0 for r in rows)
        db.session.execute(delete(Image).where(Image.dataset_id == dataset_id, Image.id.in_(part)))
    return action, freed


def record_class(dataset_id: int, user_id: int, label: Label, merged_into: Label | None = None) -> UndoAction:
    """Remember a class about to be deleted, or merged into another, and which images had it (the caller
    commits with the change)."""
    images = []
    for row in db.session.execute(select(Image.id, *[getattr(Image, c) for c in LABEL_COLUMNS[1:]])
                                  .where(Image.dataset_id == dataset_id, Image.label_id == label.id)):
        images.append(list(row))
    payload = {"label": {"id": label.id, "name": label.name, "color": label.color, "position": label.position},
               "groups": packed(images)}
    if merged_into is not None:
        payload["merged_into"] = {"id": merged_into.id, "name": merged_into.name}
    action = UndoAction(dataset_id=dataset_id, user_id=user_id, kind="class", count=len(images), payload=payload)
    db.session.add(action)
    db.session.flush()
    return action


def latest_class_deletion(dataset_id: int, user_id: int) -> UndoAction | None:
    """The user's most recent deletion of a class of this dataset that can still be undone (the classes
    page offers it, after a reload too); None once it was undone or is too old."""
    return db.session.scalar(select(UndoAction).where(
        UndoAction.dataset_id == dataset_id, UndoAction.user_id == user_id, UndoAction.kind == "class",
        UndoAction.created_at >= utcnow() - _window()).order_by(UndoAction.id.desc()).limit(1))


def _restore_class(dataset_id: int, payload: dict) -> tuple[str, int]:
    """The class again (the one of that name when it was added again meanwhile; its old id when free),
    given back to its images that are still unlabeled, or after a merge still in the class they were
    merged into. Returns (its name, images given back)."""
    saved = payload["label"]
    label = db.session.scalar(select(Label).where(Label.dataset_id == dataset_id, Label.name == saved["name"]))
    if label is None:
        free = db.session.get(Label, saved["id"]) is None
        label = Label(dataset_id=dataset_id, name=saved["name"], color=saved["color"], position=saved["position"],
                      **({"id": saved["id"]} if free else {}))
        db.session.add(label)
        db.session.flush()
    rows = [(image_id, (label.id, *values)) for image_id, *values in unpacked(payload)]
    merged_into = (payload.get("merged_into") or {}).get("id")
    still = Image.label_id.is_(None) if merged_into is None else or_(Image.label_id.is_(None),
                                                                      Image.label_id == merged_into)
    return label.name, _set_label_columns(dataset_id, rows, still)


def _set_label_columns(dataset_id: int, rows: list, *conditions) -> int:
    """Give images their label columns back, rows [(image_id, (LABEL_COLUMNS values))]: images sharing
    values go in one UPDATE per chunk of ids, only where `conditions` hold. Returns how many changed."""
    live = _live_links([dict(zip(LABEL_COLUMNS, values)) for _image_id, values in rows])
    groups: dict[tuple, list[int]] = {}
    for image_id, values in rows:
        groups.setdefault(tuple(live(dict(zip(LABEL_COLUMNS, values))).values()), []).append(image_id)
    changed = 0
    for values, ids in groups.items():
        for part in chunked(ids):
            changed += db.session.execute(
                update(Image).where(Image.dataset_id == dataset_id, Image.id.in_(part), *conditions)
                .values(**dict(zip(LABEL_COLUMNS, values)))).rowcount or 0
    return changed


# who uploaded and who labeled an image, which model suggested it
LINKS = {"uploaded_by_id": User, "labeled_by_id": User, "label_model_id": TrainingRun}


def _live_links(rows: list[dict]):
    """A function that gives a row (a dict with LINKS columns) back without the links to users or models
    removed since the action was recorded (a model deleted for good, an account deleted): writing them
    back would break their foreign keys."""
    live = {}
    for column, model in LINKS.items():
        wanted, live[column] = sorted({r[column] for r in rows if r.get(column) is not None}), set()
        for part in chunked(wanted):
            live[column].update(db.session.scalars(select(model.id).where(model.id.in_(part))))

    def keep_live(row: dict) -> dict:
        return {**row, **{c: None for c in LINKS if row.get(c) is not None and row[c] not in live[c]}}
    return keep_live


def _action_for(dataset_id: int, user_id: int, undo_id: int) -> UndoAction:
    action = db.session.get(UndoAction, undo_id)
    if (action is None or action.dataset_id != dataset_id or action.user_id != user_id
            or action.created_at < utcnow() - _window()):
        raise NotFound(GONE)
    return action


def can_undo(dataset_id: int, user_id: int, undo_id: int) -> bool:
    """Whether the user can still take back that action of the dataset (what `undo` accepts)."""
    try:
        _action_for(dataset_id, user_id, undo_id)
    except NotFound:
        return False
    return True


def _existing_labels(dataset_id: int) -> set[int]:
    return set(db.session.scalars(select(Label.id).where(Label.dataset_id == dataset_id)))


def _restore_labels(dataset_id: int, before: list) -> int:
    """Put the label columns back on the images that still exist (classes deleted since: unlabeled)."""
    labels = _existing_labels(dataset_id)
    gone = (None,) * len(LABEL_COLUMNS)
    _set_label_columns(dataset_id, [(image_id, gone if values[0] is not None and values[0] not in labels
                                     else tuple(values)) for image_id, *values in before])
    return len(before)


def _restorable_rows(action: UndoAction) -> list[dict]:
    """The trashed rows to insert again: not those whose image was uploaded again meanwhile; a taken id
    or a deleted class is let go (a new id, unlabeled)."""
    rows = [t.row for t in db.session.scalars(select(TrashedImage).where(TrashedImage.undo_id == action.id))]
    present, taken = set(), set()
    for part in chunked([r["sha256"] for r in rows]):
        present.update(db.session.scalars(select(Image.sha256).where(Image.dataset_id == action.dataset_id,
                                                                     Image.sha256.in_(part))))
    for part in chunked([r["id"] for r in rows]):
        taken.update(db.session.scalars(select(Image.id).where(Image.id.in_(part))))
    labels = _existing_labels(action.dataset_id)
    live = _live_links(rows)
    restored = []
    for row in rows:
        if row["sha256"] in present:
            continue
        row = live({**row, "created_at": datetime.fromisoformat(row["created_at"])})
        if row["id"] in taken:
            row.pop("id")
        if row["label_id"] is not None and row["label_id"] not in labels:
            row.update(dict.fromkeys(LABEL_COLUMNS))
        restored.append(row)
    return restored


ROWS_PER_INSERT = IN_CHUNK // len(ROW_COLUMNS)  # statements stay under IN_CHUNK values


def _restore_images(dataset_id: int, rows: list[dict]) -> int:
    """Insert the rows again, counting them against the owner's quota (QuotaExceeded: nothing changes)."""
    owner = quotas.owner_of(dataset_id)
    if not quotas.reserve_images(owner, len(rows), sum(r["size_bytes"] or 0 for r in rows)):
        db.session.rollback()
        raise QuotaExceeded(quotas.images_full_message(owner, len(rows)) + " The images stay deleted.")
    for same_shape in ([r for r in rows if "id" in r], [r for r in rows if "id" not in r]):
        for part in chunked(same_shape, ROWS_PER_INSERT):
            db.session.execute(insert(Image), part)
    return len(rows)


def undo(dataset_id: int, user_id: int, undo_id: int) -> str:
    """Take back one of the user's recent actions on this dataset; returns what happened, in words.
    The action is claimed by deleting its row first, so two clicks on Undo cannot restore twice."""
    action = _action_for(dataset_id, user_id, undo_id)
    kind, payload = action.kind, action.payload or []
    rows = _restorable_rows(action) if kind == "delete" else []
    db.session.execute(delete(TrashedImage).where(TrashedImage.undo_id == undo_id))
    if db.session.execute(delete(UndoAction).where(UndoAction.id == undo_id)).rowcount != 1:
        db.session.rollback()
        raise NotFound(GONE)
    if kind == "class":
        name, count = _restore_class(dataset_id, payload)
        text = ngettext("Undone: class “%(name)s” is back, with %(num)s image.",
                        "Undone: class “%(name)s” is back, with %(num)s images.", count, name=name)
    elif kind == "label":
        count = _restore_labels(dataset_id, unpacked(payload))
        text = ngettext("Undone: %(num)s image has its previous class again.",
                        "Undone: %(num)s images have their previous class again.", count)
    else:
        count = _restore_images(dataset_id, rows)
        text = ngettext("Undone: %(num)s image restored.", "Undone: %(num)s images restored.", count)
    db.session.commit()
    return text


def _drop(actions: list[UndoAction]) -> int:
    """Forget these actions for good: trashed images' hashes go to file removal. Returns rows dropped."""
    from app.blueprints.datasets.images.intake import remove_cached_features
    from app.blueprints.datasets.images.removal import mark_for_removal, schedule_sweep, sweep_shas

    ids = [a.id for a in actions]
    if not ids:
        return 0
    trashed = db.session.execute(select(TrashedImage.sha256, TrashedImage.row, UndoAction.dataset_id)
                                 .join(UndoAction, UndoAction.id == TrashedImage.undo_id)
                                 .where(TrashedImage.undo_id.in_(ids))).all()
    db.session.execute(delete(TrashedImage).where(TrashedImage.undo_id.in_(ids)))
    db.session.execute(delete(UndoAction).where(UndoAction.id.in_(ids)))
    mark_for_removal({sha for sha, _, _ in trashed})
    db.session.commit()  # from here the hashes are only referenced by images that still hold them
    by_dataset: dict[int, list[int]] = {}
    for _, row, dataset_id in trashed:
        by_dataset.setdefault(dataset_id, []).append(row["id"])
    for dataset_id, image_ids in by_dataset.items():
        remove_cached_features(dataset_id, image_ids)
    shas = {sha for sha, _, _ in trashed}
    if len(shas) <= current_app.config["DELETE_SYNC_MAX_FILES"]:
        sweep_shas(shas)
    else:
        schedule_sweep()
    return len(trashed)


def expire(now: datetime | None = None) -> int:
    """Forget actions older than UNDO_SECONDS (their trashed files are then removed); returns how many."""
    cutoff = (now or utcnow()) - _window()
    actions = list(db.session.scalars(select(UndoAction).where(UndoAction.created_at < cutoff).limit(500)))
    _drop(actions)
    if not actions:
        db.session.commit()  # end the read transaction
    return len(actions)


def forget_dataset(dataset_id: int) -> None:
    """The dataset is being purged: drop its undo actions now (their files join the purge's sweep)."""
    _drop(list(db.session.scalars(select(UndoAction).where(UndoAction.dataset_id == dataset_id))))


def forget_user(user_id: int) -> None:
    """The account is being removed: drop its undo actions now (their trashed files go the usual way)."""
    _drop(list(db.session.scalars(select(UndoAction).where(UndoAction.user_id == user_id))))


def held_by_trash(sha256s) -> set[str]:
    """The hashes among `sha256s` that trashed images still hold (their files must stay)."""
    held: set[str] = set()
    for part in chunked(sorted(set(sha256s))):
        held.update(db.session.scalars(select(TrashedImage.sha256).where(TrashedImage.sha256.in_(part))
                                       .group_by(TrashedImage.sha256)))
    return held

