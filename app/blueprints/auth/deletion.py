"""Deleting an account (Admin -> Users, the account page, `flask delete-user`).

`delete_account` does at once all the person and the admin see: the account is disabled and marked
`deleted_at` (gone from every list), its sessions, API tokens and the shares it held end, and the datasets
it owns are either handed to another account or deleted through the datasets' own deletion (hidden at once,
their purge queued now: nobody is left to restore them). Its name is freed at once (the row is renamed to
one the sign-up form refuses), and the models it trained, and the log lines of runs it queued or cancelled,
say "a deleted user" at once: the purge below may wait hours behind a long training.

The row itself stays until those purges are done: deleting it earlier would cascade (ON DELETE) through
every image row of its datasets in one transaction. The worker's maintenance (`purge_deleted_accounts`)
then clears what still names the account - who uploaded or labeled an image, who started an import (and
who trained a model, for accounts deleted before that was done at once) - in short transactions,
drops its undo actions the usual way, and removes the row.
"""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field

from flask_babel import gettext as _
from sqlalchemy import delete, func, or_, select, update

from app import quotas
from app.access import shown_runs
from app.batching import chunked
from app.blueprints.auth.reset_links import cancel_reset_link
from app.blueprints.datasets import deletion as dataset_deletion, ownership
from app.blueprints.training.services import forget_user_in_logs
from app.blueprints.webhooks.services import delete_all_of as delete_webhooks_of
from app.errors import Conflict, QuotaExceeded, ValidationError
from app.extensions import db
from app.i18n import format_number, ngettext
from app.jobs import job_alive
from app.models import ApiToken, Dataset, DatasetShare, Image, Import, TrainingRun, User, UserSession, utcnow

log = logging.getLogger(__name__)
IMAGE_WINDOW = 2000  # image ids walked per transaction when the row's history columns are cleared


@dataclass(frozen=True)
class OwnedDataset:
    id: int
    name: str
    images: int
    bytes: int


@dataclass(frozen=True)
class AccountSummary:
    """What deleting an account touches (the confirmation pages and the command line show it)."""

    datasets: list[OwnedDataset]
    models: int  # models it (or a deleted account) trained on its datasets: they go with the datasets
    models_of_others: int  # models other people trained on its datasets: they go with the datasets too
    models_kept: int  # models it trained on other people's datasets: they stay, with no creator
    shares_out: int  # people its datasets are shared with (each counted once)
    shares_in: int  # datasets of others shared with it
    tokens: int
    busy: list[str] = field(default_factory=list)  # its datasets with a training or an import under way

    @property
    def images(self) -> int:
        return sum(d.images for d in self.datasets)

    @property
    def bytes(self) -> int:
        return sum(d.bytes for d in self.datasets)

    @property
    def size(self) -> str:
        return quotas.human_bytes(self.bytes)

    @property
    def others_lose(self) -> bool:
        """Other people lose models or access unless the datasets are given to someone."""
        return bool(self.models_of_others or self.shares_out)


def _owned(user_id: int) -> list[OwnedDataset]:
    rows = db.session.execute(
        select(Dataset.id, Dataset.name, func.count(Image.id), func.coalesce(func.sum(Image.size_bytes), 0))
        .outerjoin(Image, Image.dataset_id == Dataset.id)
        .where(Dataset.owner_id == user_id, Dataset.deleting.is_(False))
        .group_by(Dataset.id, Dataset.name).order_by(func.lower(Dataset.name), Dataset.id)).all()
    return [OwnedDataset(i, name, int(count), int(nbytes)) for i, name, count, nbytes in rows]


def _count(query) -> int:
    return db.session.scalar(query) or 0


def _busy(datasets: list[OwnedDataset]) -> list[str]:
    ids, busy = [d.id for d in datasets], set()
    for part in chunked(ids):
        busy.update(db.session.scalars(select(TrainingRun.dataset_id).where(
            TrainingRun.dataset_id.in_(part), TrainingRun.status.in_(quotas.ACTIVE_STATUSES))))
        busy.update(db.session.scalars(select(Import.dataset_id).where(
            Import.dataset_id.in_(part), Import.status.in_(Import.ACTIVE))))
    return [d.name for d in datasets if d.id in busy]


def account_summary(user: User) -> AccountSummary:
    """The account's datasets (with their images), models, shares and API tokens."""
    datasets = _owned(user.id)
    owned = select(Dataset.id).where(Dataset.owner_id == user.id, Dataset.deleting.is_(False))
    models = select(func.count(TrainingRun.id)).where(shown_runs(), TrainingRun.status == "succeeded")
    on_owned, others = models.where(TrainingRun.dataset_id.in_(owned)), TrainingRun.created_by_id != user.id
    return AccountSummary(
        datasets=datasets,
        models=_count(on_owned.where(or_(TrainingRun.created_by_id.is_(None), ~others))),
        models_of_others=_count(on_owned.where(others)),
        models_kept=_count(models.where(TrainingRun.created_by_id == user.id, TrainingRun.dataset_id.not_in(owned))),
        shares_out=_count(select(func.count(func.distinct(DatasetShare.user_id)))
                          .where(DatasetShare.dataset_id.in_(owned))),
        shares_in=_count(select(func.count(DatasetShare.id)).where(DatasetShare.user_id == user.id)),
        tokens=_count(select(func.count(ApiToken.id)).where(ApiToken.user_id == user.id,
                                                             ApiToken.revoked_at.is_(None))),
        busy=_busy(datasets),
    )


def summary_lines(summary: AccountSummary, receiver: str | None = None, choosing: bool = False) -> list[str]:
    """What deleting the account does, a sentence each (the confirmation pages, `flask delete-user`): its
    datasets go to `receiver`, or are deleted - unless the admin gives them away on the page (`choosing`)."""
    lines = [_datasets_line(summary, receiver, choosing)]
    if summary.models:
        lines.append(ngettext("%(num)s model trained by this account on these datasets.",
                              "%(num)s models trained by this account on these datasets.", summary.models))
    lines += _others_lines(summary, kept=receiver is not None)
    if summary.models_kept:
        lines.append(ngettext(
            "%(num)s model trained on other people's datasets: it stays, shown as trained by a deleted user.",
            "%(num)s models trained on other people's datasets: they stay, shown as trained by a deleted user.",
            summary.models_kept))
    if summary.shares_in:
        lines.append(ngettext(
            "%(num)s dataset of other people is shared with this account: that access ends.",
            "%(num)s datasets of other people are shared with this account: that access ends.", summary.shares_in))
    if summary.tokens:
        lines.append(ngettext("%(num)s API token: it stops working.", "%(num)s API tokens: they stop working.",
                              summary.tokens))
    lines.append(_("Every browser signed in to the account is logged out."))
    return lines


def _datasets_line(summary: AccountSummary, receiver: str | None, choosing: bool) -> str:
    count = len(summary.datasets)
    owned = ngettext("%(num)s dataset owned, with %(images)s (%(size)s).",
                     "%(num)s datasets owned, with %(images)s (%(size)s).", count,
                     images=ownership.images_text(summary.images), size=summary.size)
    if not count:
        return owned
    if receiver is not None:
        fate = ngettext("It goes to %(name)s, with its models and shares.",
                        "They go to %(name)s, with their models and shares.", count, name=receiver)
    elif choosing:
        fate = ngettext(
            "It is deleted, with its images, classes and models, unless you give it to another account below.",
            "They are deleted, with their images, classes and models, unless you give them to another account "
            "below.", count)
    else:
        fate = ngettext("It is deleted, with its images, classes and models.",
                        "They are deleted, with their images, classes and models.", count)
    return f"{owned} {fate}"


def _others_lines(summary: AccountSummary, kept: bool) -> list[str]:
    """Other people's models on the datasets, and their access: `kept` when the datasets are given away."""
    lines = []
    if summary.models_of_others:
        lines.append(ngettext("%(num)s model another person trained on these datasets stays with them.",
                              "%(num)s models other people trained on these datasets stay with them.",
                              summary.models_of_others) if kept else
                     ngettext("%(num)s model another person trained on these datasets is deleted too.",
                              "%(num)s models other people trained on these datasets are deleted too.",
                              summary.models_of_others))
    if summary.shares_out:
        lines.append(ngettext("%(num)s person has access to these datasets through a share: it stays.",
                              "%(num)s people have access to these datasets through shares: they stay.",
                              summary.shares_out) if kept else
                     ngettext("%(num)s person has access to these datasets through a share: that access ends.",
                              "%(num)s people have access to these datasets through shares: that access ends.",
                              summary.shares_out))
    return lines


def transfer_targets(user: User) -> list[User]:
    """The accounts that may receive this account's datasets: enabled ones, by name."""
    return list(db.session.scalars(select(User).where(
        User.id != user.id, User.is_disabled.is_(False), User.deleted_at.is_(None))
        .order_by(func.lower(User.username))))


def _check_deletable(user: User) -> None:
    if user.deleted_at is not None:
        raise Conflict(_("This account is being deleted already."))
    if user.is_admin and not user.is_disabled:
        others = _count(select(func.count(User.id)).where(
            User.id != user.id, User.is_admin.is_(True), User.is_disabled.is_(False), User.deleted_at.is_(None)))
        if not others:
            raise Conflict(_("%(name)s is the last enabled admin. Make another account an admin first, then "
                             "delete this one.", name=user.username))


def _check_receiver(user: User, receiver: User, summary: AccountSummary) -> None:
    if receiver.id == user.id or receiver.is_disabled or receiver.deleted_at is not None:
        raise ValidationError(_("The datasets can only go to another enabled account."))
    full = ownership.datasets_room(receiver, len(summary.datasets))
    if full:
        limit, owned = full
        raise QuotaExceeded(_(
            "%(receiver)s cannot take the datasets of %(name)s (%(count)s): the dataset quota of %(receiver)s is "
            "%(limit)s and they own %(owned)s. Raise their limits on Admin -> Users, or delete the datasets instead.",
            receiver=receiver.username, count=_datasets(len(summary.datasets)), name=user.username,
            limit=format_number(limit), owned=format_number(owned)))


def _datasets(count: int) -> str:
    return ngettext("%(num)s dataset", "%(num)s datasets", count)


def _images_refused(user: User, receiver: User, summary: AccountSummary) -> QuotaExceeded:
    room = ownership.room_text(receiver)
    return QuotaExceeded(_(
        "%(receiver)s cannot take the datasets of %(name)s: they hold %(count)s (%(size)s), and the quota of "
        "%(receiver)s has room left for %(room)s (%(space)s). Raise their limits on Admin -> Users, or delete "
        "the datasets instead.", receiver=receiver.username, name=user.username,
        count=ownership.images_text(summary.images), size=quotas.human_bytes(summary.bytes), room=room[0],
        space=room[1]))


def _hand_over(user: User, receiver: User, summary: AccountSummary) -> None:
    """The datasets become the receiver's, counted against its quota (not committed)."""
    ids = [d.id for d in summary.datasets]
    if not ownership.hand_over(user.id, receiver.id, ids, summary.images, summary.bytes):
        error = _images_refused(user, receiver, summary)
        db.session.rollback()
        raise error


def _end_access(user: User) -> None:
    """Shares held, API tokens, webhooks (and their deliveries), signed-in browsers and a reset link all end
    (not committed)."""
    for model in (DatasetShare, ApiToken, UserSession):
        db.session.execute(delete(model).where(model.user_id == user.id))
    delete_webhooks_of(user.id)
    cancel_reset_link(user)
    user.is_disabled, user.deleted_at = True, utcnow()


def _forget_name(user: User) -> None:
    """The name is free for a new account, and no run names the account (as creator or in its log), from
    now on rather than once the row is purged (not committed). Runs are few: one UPDATE."""
    db.session.execute(update(TrainingRun).where(TrainingRun.created_by_id == user.id).values(created_by_id=None))
    forget_user_in_logs(user.username)
    # '~' is outside what sign-up accepts, and the random part keeps it from being guessed for a share
    user.username = f"deleted~{user.id}~{secrets.token_hex(6)}"


def delete_account(user: User, acting_user: User | None, transfer_to: User | None = None) -> AccountSummary:
    """Delete `user` (see the module doc): its datasets go to `transfer_to`, or are deleted. Refused, with
    nothing changed, for the last enabled admin, a receiver whose quotas are too small, or (when deleting)
    datasets with a training or an import under way. Returns what the account held."""
    _check_deletable(user)
    name, summary = user.username, account_summary(user)
    if transfer_to is not None:
        _check_receiver(user, transfer_to, summary)
    elif summary.busy:
        raise Conflict(_("A training or an import is under way in %(names)s. Cancel it first, then delete the "
                         "account.", names=", ".join(f"“{name}”" for name in summary.busy)))
    try:
        if transfer_to is not None:
            _hand_over(user, transfer_to, summary)
        else:
            for dataset in db.session.scalars(select(Dataset).where(
                    Dataset.owner_id == user.id, Dataset.deleting.is_(False))).all():
                dataset_deletion.hide_dataset(dataset)
        _end_access(user)
        _forget_name(user)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    _queue_purges(user.id)
    log.info("user=%s (%s) deleted by %s: %d datasets with %d images %s, %d models on others' datasets kept",
             user.id, name, f"user={acting_user.id}" if acting_user else "the command line",
             len(summary.datasets), summary.images,
             f"transferred to user={transfer_to.id}" if transfer_to else "deleted", summary.models_kept)
    return summary


def _queue_purges(user_id: int) -> None:
    """Every deleted dataset of the account is purged now: no one can restore it any more."""
    ids = list(db.session.scalars(select(Dataset.id).where(Dataset.owner_id == user_id, Dataset.deleting.is_(True))))
    db.session.commit()  # end the read transaction
    for dataset_id in ids:
        if not job_alive(dataset_deletion.delete_job_id(dataset_id)):
            dataset_deletion.queue_purge(dataset_id)


def delete_own_account(user: User, password: str) -> AccountSummary:
    """The account page: the user deletes their account and datasets, confirming with their password."""
    if not user.check_password(password or ""):
        raise ValidationError(_("Your password is not right. Nothing was deleted."))
    return delete_account(user, user)


# --- the worker's maintenance ----------------------------------------------------------------------

def purge_deleted_accounts() -> int:
    """Remove the rows of deleted accounts whose datasets are purged; returns how many were removed."""
    from app.blueprints.datasets.images.undo import forget_user

    ids = list(db.session.scalars(select(User.id).where(User.deleted_at.is_not(None))))
    db.session.commit()  # end the read transaction
    removed = 0
    for user_id in ids:
        if db.session.scalar(select(Dataset.id).where(Dataset.owner_id == user_id).limit(1)) is not None:
            continue  # a purge still to come would otherwise cascade through its images
        _clear_history(user_id)
        forget_user(user_id)  # its trashed images' files go the usual way, not with an ON DELETE
        db.session.execute(delete(User).where(User.id == user_id))
        db.session.commit()
        log.info("user=%s: deleted account removed", user_id)
        removed += 1
    return removed


def _clear_history(user_id: int) -> None:
    """Columns that name the account (ON DELETE SET NULL would do it in one long transaction)."""
    db.session.execute(update(TrainingRun).where(TrainingRun.created_by_id == user_id).values(created_by_id=None))
    db.session.execute(update(Import).where(Import.user_id == user_id).values(user_id=None))
    db.session.commit()
    datasets = list(db.session.scalars(select(Image.dataset_id).where(
        or_(Image.uploaded_by_id == user_id, Image.labeled_by_id == user_id)).distinct()))
    for dataset_id in datasets:
        _clear_images(dataset_id, user_id)


def _clear_images(dataset_id: int, user_id: int) -> None:
    """Walk the dataset's images by id (its index), IMAGE_WINDOW per transaction."""
    last = 0
    while True:
        ids = list(db.session.scalars(select(Image.id).where(Image.dataset_id == dataset_id, Image.id > last)
                                      .order_by(Image.id).limit(IMAGE_WINDOW)))
        if not ids:
            return
        window = (Image.dataset_id == dataset_id, Image.id > last, Image.id <= ids[-1])
        for column in (Image.uploaded_by_id, Image.labeled_by_id):
            db.session.execute(update(Image).where(*window, column == user_id).values({column.key: None}))
        db.session.commit()
        last = ids[-1]
