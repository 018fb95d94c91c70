"""Who may see or change what — the one place every dataset and model route goes through.

Anything a user may not see is a 404 (NotFound), indistinguishable from a missing row. A dataset or a
model being deleted (restorable for a while, then removed in the background) is gone for everyone: every
query of runs adds `shown_runs()`.
"""
from __future__ import annotations

from sqlalchemy import func, or_, select
from flask_babel import gettext as _

from app.batching import chunked
from app.errors import DomainError, NotFound
from app.extensions import db
from app.models import Dataset, DatasetShare, TrainingRun, User

RANK = {"viewer": 1, "editor": 2, "owner": 3}


class NotAllowed(DomainError):
    """The user can see the thing but not do this to it."""

    status = 403
    code = "forbidden"


def dataset_role(user: User | None, dataset: Dataset) -> str | None:
    """'owner', 'editor', 'viewer', or None when the user may not see the dataset."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    if dataset.owner_id == user.id:
        return "owner"
    share = db.session.scalar(
        select(DatasetShare).where(DatasetShare.dataset_id == dataset.id, DatasetShare.user_id == user.id)
    )
    return share.role if share else None


def get_dataset_for(user: User | None, dataset_id: int, need: str = "viewer") -> Dataset:
    """The dataset if `user` holds at least role `need` ('viewer', 'editor', 'owner')."""
    dataset = db.session.get(Dataset, dataset_id)
    role = dataset_role(user, dataset) if dataset is not None and not dataset.deleting else None
    if role is None:
        raise NotFound(_("This dataset does not exist, or you do not have access to it."))
    if RANK[role] < RANK[need]:
        raise NotAllowed(_not_allowed_message(dataset, role, need))
    return dataset


def _not_allowed_message(dataset: Dataset, role: str, need: str) -> str:
    """What a user with too small a role can do about it, precisely."""
    owner = dataset.owner.username if dataset.owner is not None else "its owner"
    if need == "editor":
        return _("You can view this dataset but not change it: it is shared with you as a viewer. Ask its owner, "
                 "%(owner)s, to make you an editor (on the dataset's Sharing page).", owner=owner)
    if role == "editor":
        return _("Only the dataset's owner, %(owner)s, can do this (sharing, renaming or deleting it); you are an "
                 "editor. Ask %(owner)s to do it.", owner=owner)
    return _("Only the dataset's owner, %(owner)s, can do this (sharing, renaming or deleting it); you are a "
             "viewer. Ask %(owner)s to do it.", owner=owner)


def visible_datasets_query(user: User):
    """Datasets the user owns or that are shared with them (not those being deleted)."""
    shared = select(DatasetShare.dataset_id).where(DatasetShare.user_id == user.id)
    return select(Dataset).where(or_(Dataset.owner_id == user.id, Dataset.id.in_(shared)),
                                 Dataset.deleting.is_(False))


def visible_datasets_by_name(user: User) -> list[Dataset]:
    """The datasets the user can see, by name (a form's list to pick one from)."""
    return list(db.session.scalars(visible_datasets_query(user).order_by(func.lower(Dataset.name), Dataset.id)))


def shown_runs():
    """The condition every query of runs/models adds: runs deleted moments ago are gone for everyone."""
    return TrainingRun.deleting.is_(False)


def visible_runs_query(user: User):
    """Runs/models on the datasets the user can see, those being deleted left out."""
    visible = visible_datasets_query(user).with_only_columns(Dataset.id)
    return select(TrainingRun).where(TrainingRun.dataset_id.in_(visible), shown_runs())


def get_run_for(user: User | None, run_id: int, need: str = "viewer") -> TrainingRun:
    """A training run/model is visible to whoever can see its dataset (role `need` on the dataset), unless
    it is being deleted."""
    run = db.session.get(TrainingRun, run_id)
    if run is None or run.deleting:
        raise NotFound(_("This model does not exist, or you do not have access to it."))
    try:
        get_dataset_for(user, run.dataset_id, need)
    except NotFound:
        raise NotFound(_("This model does not exist, or you do not have access to it.")) from None
    return run


def roles_for(user: User, dataset_ids: list[int]) -> dict[int, str]:
    """The user's role on each of these datasets they can see (one query for the shared ones)."""
    roles = {}
    for part in chunked(list(dataset_ids)):
        owned = db.session.execute(select(Dataset.id, Dataset.owner_id).where(Dataset.id.in_(part))).all()
        roles.update({i: "owner" for i, owner in owned if owner == user.id})
        roles.update(dict(db.session.execute(select(DatasetShare.dataset_id, DatasetShare.role).where(
            DatasetShare.dataset_id.in_(part), DatasetShare.user_id == user.id)).all()))
    return roles
