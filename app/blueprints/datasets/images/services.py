"""The images of a dataset: the labeling grid (pages, filters), one image, bulk label / unlabel / delete."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import and_, delete, func, select, update

from app import quotas
from app.batching import chunked
from app.blueprints.datasets.classes import get_label
from app.blueprints.datasets.images import undo
from app.blueprints.datasets.images.removal import mark_for_removal, schedule_sweep, sweep_shas
from app.blueprints.datasets.services import class_counts
from app.blueprints.datasets.images.intake import remove_cached_features
from app.errors import NotFound, ValidationError
from app.extensions import db
from app.ids import parse_id
from app.keyset import Keyset
from app.models import FILENAME_KEY_LENGTH, Image, Label, filename_key

PER_PAGE = 48
MAX_SELECTION = 5000
MAX_QUERY = FILENAME_KEY_LENGTH  # a longer text matches no file name


@dataclass
class ImagePage:
    """One page of the labeling grid, newest first. Pages are found by key, never by OFFSET: `older` is
    the `before` cursor of the next page, `newer` the `after` cursor of the previous one (None at either
    end), and `anchor` the `before` cursor that shows this page again (after a bulk action). `page` is
    only a display number, carried along in the links."""
    images: list[Image]
    page: int
    pages: int
    total: int
    filter: str  # 'all', 'unlabeled' or a label id as text
    q: str = ""  # find by file name: the text searched for ("" = no search)
    newer: int | None = None
    older: int | None = None
    anchor: int | None = None
    # the class bar: [{"label", "count"}] in class order; with `q`, of the images that match
    counts: list[dict] = field(default_factory=list)
    unlabeled: int = 0


def _int_arg(values: Mapping, name: str) -> int | None:
    return parse_id(values.get(name), minimum=0)


def search_text(value) -> str:
    """The text to find in file names, as typed: trimmed, without NUL (no database stores it), at most
    MAX_QUERY characters. Empty: no search."""
    return str(value or "").replace("\x00", "").strip()[:MAX_QUERY]


@dataclass(frozen=True)
class Cursor:
    """Where a page of the grid starts: the images older than `before`, or the page just newer than
    `after`, or the first page; `page` is the number the pager shows for it."""

    before: int | None = None
    after: int | None = None
    page: int = 1


def grid_args(values: Mapping) -> dict:
    """image_page's keyword arguments from query-string or form values (junk is ignored)."""
    at = Cursor(_int_arg(values, "before"), _int_arg(values, "after"), _int_arg(values, "page") or 1)
    return {"filter_": values.get("filter") or "all", "at": at, "q": search_text(values.get("q"))}


def name_contains(q: str):
    """Condition on Image: the file name contains `q`, in any case. % and _ in `q` are plain characters."""
    return Image.filename_key.contains(filename_key(q), autoescape=True)


def _filtered(dataset_id: int, filter_: str):
    """(condition on Image, normalised filter) for 'all', 'unlabeled' or a class id of the dataset."""
    if filter_ == "unlabeled":
        return and_(Image.dataset_id == dataset_id, Image.label_id.is_(None)), filter_
    if filter_.isdigit():
        label_id = parse_id(filter_)
        if label_id is None:
            raise NotFound(_("This class does not exist in this dataset."))
        return and_(Image.dataset_id == dataset_id, Image.label_id == get_label(dataset_id, label_id).id), filter_
    return Image.dataset_id == dataset_id, "all"


def _exists(*conditions) -> bool:
    return db.session.scalar(select(Image.id).where(*conditions).limit(1)) is not None


def _fetch(where, order, limit: int, key) -> list[Image]:
    """Up to `limit` images matching `where`, in `order` (of `key`): the id, or for a search the id as an
    expression (id + 0), which no index sorts by, so the ids come from one read of the name index
    ix_images_dataset_label_name -- however rare, or however far down, the matches are -- instead of a walk
    down the id index reading table rows until enough match. Only the rows of those ids are read then."""
    if key is Image.id:
        return list(db.session.scalars(select(Image).where(where).order_by(order).limit(limit)))
    ids = list(db.session.scalars(select(Image.id).where(where).order_by(order).limit(limit)))
    found = {i.id: i for i in db.session.scalars(select(Image).where(Image.id.in_(ids)))} if ids else {}
    return [found[i] for i in ids if i in found]


def _rows(where, before: int | None, after: int | None, per_page: int,
          key=Image.id) -> tuple[list[Image], bool, bool]:
    """(images newest first, newer ones exist, older ones exist) for one keyset step."""
    keyset = Keyset(lambda condition, order, limit: _fetch(condition, order, limit, key), _exists, key,
                    restart_past_end=True)
    return keyset.step(where, before, after, per_page)


def _total(filter_: str, counts: list[dict], unlabeled: int) -> int:
    """The images the grid shows, from the class bar's counts (of the search's matches when there is one)."""
    if filter_ == "all":
        return sum(c["count"] for c in counts) + unlabeled
    return unlabeled if filter_ == "unlabeled" else sum(c["count"] for c in counts if str(c["label"].id) == filter_)


def search_counts(dataset_id: int, q: str) -> tuple[list[dict], int]:
    """class_counts of the images whose file name contains `q`: ([{"label", "count"}] in class order, every
    class, unlabeled). One grouped read of the covering index ix_images_dataset_label_name for the whole
    dataset, in its order (no sort); the grid's total is taken from it, so a search costs no other count."""
    rows = dict(db.session.execute(
        select(Image.label_id, func.count()).where(Image.dataset_id == dataset_id, name_contains(q))
        .group_by(Image.label_id)).all())
    labels = db.session.scalars(select(Label).where(Label.dataset_id == dataset_id).order_by(Label.position, Label.id))
    return [{"label": lab, "count": rows.get(lab.id, 0)} for lab in labels], rows.get(None, 0)


def image_page(dataset_id: int, filter_: str = "all", at: Cursor = Cursor(), per_page: int = PER_PAGE,
               q: str = "") -> ImagePage:
    """One page of a dataset's images, newest first, filtered by class id / 'unlabeled' / 'all' and, with
    `q`, to the file names that contain it (any case), starting where `at` says. Without `q` every page costs
    the same: an index range read of per_page + 1 rows and one grouped index count (no sort, no OFFSET). With
    `q` every page reads the name index twice, whatever the matches: the dataset's part once to count the
    matches per class (the class bar then counts within the search), the class's part once for the page's
    ids (sorted there); a search that finds nothing reads it once."""
    where, filter_ = _filtered(dataset_id, filter_)
    q = search_text(q)
    if q:
        where = and_(where, name_contains(q))
    # one grouped count serves the class bar and the total: of the matches, with a search
    counts, unlabeled = search_counts(dataset_id, q) if q else class_counts(dataset_id)
    total = _total(filter_, counts, unlabeled)
    key = Image.id + 0 if q else Image.id  # a search takes its page from the name index: see _fetch
    images, newer, older = _rows(where, at.before, at.after, per_page, key) if total or not q else ([], False, False)
    pages = max(1, -(-total // per_page))
    page = min(max(2, at.page), pages) if newer else 1
    return ImagePage(images, page, pages, total, filter_, q,
                     newer=images[0].id if newer else None, older=images[-1].id if older else None,
                     anchor=images[0].id + 1 if newer else None, counts=counts, unlabeled=unlabeled)


def get_image(dataset_id: int, image_id: int) -> Image:
    """An image of this dataset (404 for any other)."""
    image = db.session.get(Image, image_id)
    if image is None or image.dataset_id != dataset_id:
        raise NotFound(_("This image does not exist in this dataset."))
    return image


class NotInDataset(NotFound):
    """Some of the image ids given are not images of the dataset (deleted meanwhile, or never in it). Said
    here in the pages' words; the API catches it and says it in its own (a script reloads no page)."""

    def __init__(self):
        super().__init__(_("Some selected images are not in this dataset. Reload the page and try again."))


def parse_ids(values) -> list[int]:
    """Image ids from form values; rejects junk and oversized selections."""
    try:
        ids = sorted({int(v) for v in values})
    except (TypeError, ValueError):
        raise ValidationError(_("The selection was not understood. Reload the page and try again.")) from None
    if not ids:
        raise ValidationError(_("Select one or more images first."))
    if len(ids) > MAX_SELECTION:
        raise ValidationError(_("Select at most %(num)s images at once.", num=MAX_SELECTION))
    if any(parse_id(i) is None for i in ids):  # beyond any database id: these images cannot exist
        raise NotInDataset()
    return ids


def _check_owned(dataset_id: int, ids: list[int]) -> None:
    found = sum(db.session.scalar(select(func.count(Image.id)).where(Image.dataset_id == dataset_id,
                                                                     Image.id.in_(part))) or 0
                for part in chunked(ids))
    if found != len(ids):
        raise NotInDataset()


def set_labels(dataset_id: int, image_ids: list[int], label_id: int | None, user_id: int) -> int:
    """Give the images class `label_id` (None clears it), 500 per statement, in one transaction; all must
    belong to the dataset."""
    _check_owned(dataset_id, image_ids)
    _write_labels(dataset_id, image_ids, label_id, user_id)
    db.session.commit()
    return len(image_ids)


def label_undoably(dataset_id: int, image_ids: list[int], label_id: int | None, user_id: int) -> tuple[int, int]:
    """set_labels that the user can take back for a while: returns (count, undo id)."""
    _check_owned(dataset_id, image_ids)
    undo.expire()
    action = undo.record_labels(dataset_id, user_id, image_ids)
    _write_labels(dataset_id, image_ids, label_id, user_id)
    db.session.commit()
    return len(image_ids), action.id


def _write_labels(dataset_id: int, image_ids: list[int], label_id: int | None, user_id: int) -> None:
    if label_id is None:
        values = {"label_id": None, "label_source": None, "labeled_by_id": None, "label_model_id": None}
    else:
        values = {"label_id": get_label(dataset_id, label_id).id, "label_source": "user",
                  "labeled_by_id": user_id, "label_model_id": None}
    for part in chunked(image_ids):
        db.session.execute(update(Image).where(Image.dataset_id == dataset_id, Image.id.in_(part)).values(**values))


def delete_images(dataset_id: int, image_ids: list[int]) -> int:
    """Delete images: their rows at once (500 per statement, one transaction), then the files no other
    image uses -- now for a few, by a background job for many (DELETE_SYNC_MAX_FILES)."""
    _check_owned(dataset_id, image_ids)
    shas: set[str] = set()
    freed = 0
    for part in chunked(image_ids):
        for sha, size in db.session.execute(select(Image.sha256, Image.size_bytes).where(Image.id.in_(part))):
            shas.add(sha)
            freed += size or 0
        db.session.execute(delete(Image).where(Image.dataset_id == dataset_id, Image.id.in_(part)))
    mark_for_removal(shas)
    quotas.release_images(quotas.owner_of(dataset_id), len(image_ids), freed)
    db.session.commit()
    if len(shas) <= current_app.config["DELETE_SYNC_MAX_FILES"]:
        sweep_shas(shas)
    else:
        schedule_sweep()
    remove_cached_features(dataset_id, image_ids)  # the dataset's feature stores forget them
    return len(image_ids)


def delete_undoably(dataset_id: int, image_ids: list[int], user_id: int) -> tuple[int, int]:
    """Delete images so that the user can take it back for a while: the rows go to the trash (quota room
    given back now), their files stay until the undo expires. Returns (count, undo id)."""
    _check_owned(dataset_id, image_ids)
    undo.expire()
    action, freed = undo.trash_rows(dataset_id, user_id, image_ids)
    quotas.release_images(quotas.owner_of(dataset_id), len(image_ids), freed)
    db.session.commit()
    return len(image_ids), action.id
