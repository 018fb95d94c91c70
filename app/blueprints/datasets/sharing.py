"""Sharing a dataset with other users as viewer (see, train) or editor (also upload, label)."""
from __future__ import annotations

from sqlalchemy import select
from flask_babel import gettext as _

from app.blueprints.auth.services import find_user
from app.errors import NotFound, ValidationError
from app.extensions import db
from app.models import Dataset, DatasetShare


def list_shares(dataset_id: int) -> list[DatasetShare]:
    return list(db.session.scalars(
        select(DatasetShare).where(DatasetShare.dataset_id == dataset_id).order_by(DatasetShare.id)))


def share_dataset(dataset: Dataset, username: str, role: str) -> DatasetShare:
    """Share with a user by username; sharing again changes their role."""
    if role not in DatasetShare.ROLES:
        raise ValidationError(_("Choose 'viewer' or 'editor'."))
    user = find_user(username)
    if user is None:
        raise ValidationError(_("There is no user called “%(name)s”.", name=(username or "").strip()))
    if user.id == dataset.owner_id:
        raise ValidationError(_("You own this dataset already; no need to share it with yourself."))
    share = db.session.scalar(select(DatasetShare).where(
        DatasetShare.dataset_id == dataset.id, DatasetShare.user_id == user.id))
    if share is None:
        share = DatasetShare(dataset_id=dataset.id, user_id=user.id)
        db.session.add(share)
    share.role = role
    db.session.commit()
    return share


def revoke_share(dataset_id: int, share_id: int) -> str:
    """Stop sharing with one user; returns their username."""
    share = db.session.get(DatasetShare, share_id)
    if share is None or share.dataset_id != dataset_id:
        raise NotFound(_("This person does not have access to the dataset."))
    username = share.user.username
    db.session.delete(share)
    db.session.commit()
    return username
