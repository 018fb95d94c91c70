"""Handing datasets over to another account: one dataset from its sharing page (the owner), or all of an
account's datasets when the account is deleted (app/blueprints/auth/deletion.py).

The receiver's quotas must take them (datasets, images, bytes): the images' room moves from the giver's
counters to the receiver's in the same transaction as the owner column.
"""
from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import delete, select, update

from app import quotas
from app.batching import chunked
from app.blueprints.auth.services import find_user
from app.blueprints.datasets.deletion import image_totals
from app.errors import QuotaExceeded, ValidationError
from app.extensions import db
from app.i18n import ngettext
from app.models import Dataset, DatasetShare, User


def hand_over(giver_id: int, receiver_id: int, dataset_ids: list[int], images: int, nbytes: int) -> bool:
    """The datasets become the receiver's, their images counted against its quota, and a share the receiver
    had on them goes (it owns them now). False, and nothing changed, when the images do not fit its quota.
    Not committed."""
    if not quotas.reserve_images(receiver_id, images, nbytes):
        return False
    quotas.release_images(giver_id, images, nbytes)
    for part in chunked(dataset_ids):
        db.session.execute(update(Dataset).where(Dataset.id.in_(part)).values(owner_id=receiver_id)
                           .execution_options(synchronize_session=False))
        db.session.execute(delete(DatasetShare).where(DatasetShare.dataset_id.in_(part),
                                                      DatasetShare.user_id == receiver_id))
    return True


def datasets_room(receiver: User, count: int) -> tuple[int, int] | None:
    """(quota, datasets owned) when the receiver's dataset quota cannot take `count` more, else None."""
    limit = quotas.limits_for(receiver).datasets
    owned = quotas.count_datasets(receiver.id)
    return (limit, owned) if limit and owned + count > limit else None


def images_text(count: int) -> str:
    return ngettext("%(num)s image", "%(num)s images", count)


def room_text(receiver: User) -> tuple[str, str]:
    """The receiver's room left for images, in words: (images, bytes)."""
    images, nbytes = quotas.image_room(receiver.id)
    return (_("no limit") if images is None else images_text(images),
            _("no limit") if nbytes is None else quotas.human_bytes(nbytes))


def give_dataset(dataset: Dataset, username: str) -> User:
    """The dataset's owner hands it to the account named `username`; the giver keeps editing it (an editor
    share). ValidationError / QuotaExceeded, with nothing changed, when that account cannot take it."""
    receiver = find_user(username)
    if receiver is None or receiver.deleted_at is not None:
        raise ValidationError(_("There is no user called “%(name)s”.", name=(username or "").strip()))
    if receiver.is_disabled:
        raise ValidationError(_("The account %(name)s is disabled: it cannot own datasets until an administrator "
                                "enables it again.", name=receiver.username))
    giver_id = dataset.owner_id
    if receiver.id == giver_id:
        raise ValidationError(_("You own this dataset already."))
    if datasets_room(receiver, 1):
        raise QuotaExceeded(_("%(name)s has no room for another dataset in their quota. An administrator can "
                              "raise it.", name=receiver.username))
    images, nbytes = image_totals(dataset.id)
    if not hand_over(giver_id, receiver.id, [dataset.id], images, nbytes):
        db.session.rollback()
        room, space = room_text(receiver)
        raise QuotaExceeded(_("%(name)s cannot take this dataset: it holds %(count)s (%(size)s), and their quota "
                              "has room left for %(room)s (%(space)s). An administrator can raise it.",
                              name=receiver.username, count=images_text(images),
                              size=quotas.human_bytes(nbytes), room=room, space=space))
    _keep_editing(dataset.id, giver_id)
    db.session.commit()
    return receiver


def _keep_editing(dataset_id: int, user_id: int) -> None:
    share = db.session.scalar(select(DatasetShare).where(DatasetShare.dataset_id == dataset_id,
                                                         DatasetShare.user_id == user_id))
    if share is None:
        db.session.add(DatasetShare(dataset_id=dataset_id, user_id=user_id, role="editor"))
    else:
        share.role = "editor"
