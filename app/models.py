"""Database models: columns, relationships and invariants only."""
from __future__ import annotations

import unicodedata
from datetime import datetime, timezone

from flask_login import UserMixin
from werkzeug.security import check_password_hash, generate_password_hash

from app.extensions import db


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


FILENAME_KEY_LENGTH = 255


def filename_key(name: str) -> str:
    """A file name as find-by-name compares it: NFC, case-folded (for every script, not only ASCII as
    SQLite's LIKE and lower() do), cut to the column's length."""
    return unicodedata.normalize("NFC", name or "").casefold()[:FILENAME_KEY_LENGTH]


def _filename_key_default(context) -> str:
    # Every insert (ORM, Core executemany, undo's restore of old trashed rows) fills it from `filename`.
    return filename_key(context.get_current_parameters().get("filename") or "")


class User(UserMixin, db.Model):
    __tablename__ = "users"
    id = db.Column(db.Integer, primary_key=True)
    username = db.Column(db.String(40), unique=True, nullable=False)
    password_hash = db.Column(db.String(255), nullable=False)
    is_admin = db.Column(db.Boolean, nullable=False, default=False)
    is_disabled = db.Column(db.Boolean, nullable=False, default=False)
    failed_logins = db.Column(db.Integer, nullable=False, default=0)
    locked_until = db.Column(db.DateTime, nullable=True)
    # Plain id (no FK): a deleted model simply stops being usable as the default.
    default_model_id = db.Column(db.Integer, nullable=True)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    # What the user's datasets hold (every image of the datasets they own, whoever uploaded it), kept up to
    # date in the same transaction as every insert and delete of images (app/quotas.py): quotas are
    # checked against these without counting 200,000 rows.
    image_count = db.Column(db.BigInteger, nullable=False, default=0, server_default="0")
    image_bytes = db.Column(db.BigInteger, nullable=False, default=0, server_default="0")
    # Per-user quota overrides set by an admin; NULL = the site default (0 = no limit).
    quota_storage_mb = db.Column(db.Integer, nullable=True)
    quota_images = db.Column(db.Integer, nullable=True)
    quota_datasets = db.Column(db.Integer, nullable=True)
    quota_models = db.Column(db.Integer, nullable=True)
    quota_active_runs = db.Column(db.Integer, nullable=True)
    # The language chosen with the switcher ('en', 'pt_BR', 'es'); NULL = follow the browser.
    locale = db.Column(db.String(10), nullable=True)
    # A one-time password reset link an admin created (auth/reset_links.py): only the SHA-256 of its
    # token is kept, and a new link replaces the previous one.
    reset_token_hash = db.Column(db.String(64), nullable=True, unique=True, index=True)
    reset_expires_at = db.Column(db.DateTime, nullable=True)
    # Set when the account is deleted (auth/deletion.py): from then on it is disabled and gone from every
    # list, and the worker's maintenance removes the row once the datasets it owned are purged.
    deleted_at = db.Column(db.DateTime, nullable=True)

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @property
    def is_active(self) -> bool:  # flask-login refuses sessions of disabled users
        return not self.is_disabled

    # The token of the browser session this object was loaded for (see auth/sessions.py); flask-login
    # stores get_id() in the session and the remember-me cookie, so both name that one session.
    session_token = None  # str, set per request; not a column

    def get_id(self) -> str:
        return f"{self.id}:{self.session_token}" if self.session_token else str(self.id)


class UserSession(db.Model):
    """One signed-in browser. The login cookie holds a random token whose hash is kept here; logging
    out deletes the row, so a copied session or remember-me cookie stops working at once."""
    __tablename__ = "user_sessions"
    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    token_hash = db.Column(db.String(64), unique=True, nullable=False)
    user_agent = db.Column(db.String(200), nullable=False, default="")
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    last_seen_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    expires_at = db.Column(db.DateTime, nullable=False)
    user = db.relationship("User")


class ApiToken(db.Model):
    __tablename__ = "api_tokens"
    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    name = db.Column(db.String(80), nullable=False)
    token_hash = db.Column(db.String(64), unique=True, nullable=False)
    prefix = db.Column(db.String(12), nullable=False)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    last_used_at = db.Column(db.DateTime, nullable=True)
    revoked_at = db.Column(db.DateTime, nullable=True)
    user = db.relationship("User")


class Dataset(db.Model):
    __tablename__ = "datasets"
    id = db.Column(db.Integer, primary_key=True)
    owner_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    name = db.Column(db.String(120), nullable=False)
    description = db.Column(db.Text, nullable=False, default="")
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow, onupdate=utcnow)
    # Set when its owner deletes it: from then on nobody sees it, and a job removes its rows and files.
    deleting = db.Column(db.Boolean, nullable=False, default=False, server_default=db.false())
    owner = db.relationship("User")
    labels = db.relationship(
        "Label", back_populates="dataset", order_by="(Label.position, Label.id)",
        cascade="all, delete-orphan", passive_deletes=True,
    )
    shares = db.relationship("DatasetShare", back_populates="dataset", cascade="all, delete-orphan", passive_deletes=True)


class DatasetShare(db.Model):
    __tablename__ = "dataset_shares"
    __table_args__ = (db.UniqueConstraint("dataset_id", "user_id", name="uq_dataset_shares_dataset_user"),)
    ROLES = ("viewer", "editor")
    id = db.Column(db.Integer, primary_key=True)
    dataset_id = db.Column(db.Integer, db.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False, index=True)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    role = db.Column(db.String(10), nullable=False, default="viewer")
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    dataset = db.relationship("Dataset", back_populates="shares")
    user = db.relationship("User")


class Label(db.Model):
    """A class of a dataset (called 'label' in code to avoid the Python keyword)."""
    __tablename__ = "labels"
    __table_args__ = (db.UniqueConstraint("dataset_id", "name", name="uq_labels_dataset_name"),)
    id = db.Column(db.Integer, primary_key=True)
    dataset_id = db.Column(db.Integer, db.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False, index=True)
    name = db.Column(db.String(80), nullable=False)
    color = db.Column(db.String(7), nullable=False, default="#4f7cff")
    position = db.Column(db.Integer, nullable=False, default=0)
    dataset = db.relationship("Dataset", back_populates="labels")


class Image(db.Model):
    """One image of a dataset; its bytes live content-addressed (sha256) under STORAGE_DIR."""
    __tablename__ = "images"
    __table_args__ = (
        db.UniqueConstraint("dataset_id", "sha256", name="uq_images_dataset_sha256"),
        # The labeling grid pages by key, newest first, per dataset and per class (or unlabeled):
        # these serve its WHERE + ORDER BY id without sorting, and the per-class counts.
        db.Index("ix_images_dataset_id", "dataset_id", "id"),
        db.Index("ix_images_dataset_label_id", "dataset_id", "label_id", "id"),
        # Find by file name: a substring match reads this covering index (per dataset, per class or
        # unlabeled; id in it, so PostgreSQL can answer from the index alone too) instead of every
        # table row -- a tenth of the time at 200,000 images in SQLite (bench/grid_search.py).
        db.Index("ix_images_dataset_label_name", "dataset_id", "label_id", "filename_key", "id"),
    )
    id = db.Column(db.Integer, primary_key=True)
    dataset_id = db.Column(db.Integer, db.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False)
    sha256 = db.Column(db.String(64), nullable=False, index=True)
    label_id = db.Column(db.Integer, db.ForeignKey("labels.id", ondelete="SET NULL"), nullable=True)
    filename = db.Column(db.String(255), nullable=False, default="")
    # filename_key(filename), set on insert (file names never change afterwards).
    filename_key = db.Column(db.String(FILENAME_KEY_LENGTH), nullable=False, default=_filename_key_default)
    width = db.Column(db.Integer, nullable=False, default=0)
    height = db.Column(db.Integer, nullable=False, default=0)
    size_bytes = db.Column(db.Integer, nullable=False, default=0)
    format = db.Column(db.String(10), nullable=False, default="")
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    uploaded_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    # Where the current label came from: 'user', 'import' (zip folder) or 'suggestion'.
    label_source = db.Column(db.String(12), nullable=True)
    labeled_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    label_model_id = db.Column(db.Integer, db.ForeignKey("training_runs.id", ondelete="SET NULL"), nullable=True)
    label = db.relationship("Label")


class TrainingRun(db.Model):
    """A training run; once succeeded it is a model people can evaluate, use and download."""
    __tablename__ = "training_runs"
    STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
    FINISHED = ("succeeded", "failed", "cancelled")
    id = db.Column(db.Integer, primary_key=True)
    dataset_id = db.Column(db.Integer, db.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False, index=True)
    # Indexed: quotas count a user's models and active runs, and the fair queue picks per user.
    created_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"), nullable=True,
                              index=True)
    name = db.Column(db.String(120), nullable=False)
    architecture = db.Column(db.String(40), nullable=False)
    mode = db.Column(db.String(20), nullable=False)
    options = db.Column(db.JSON, nullable=False, default=dict)
    status = db.Column(db.String(12), nullable=False, default="queued", index=True)
    job_id = db.Column(db.String(64), nullable=True)
    worker_name = db.Column(db.String(120), nullable=True)
    cancel_requested = db.Column(db.Boolean, nullable=False, default=False)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    started_at = db.Column(db.DateTime, nullable=True)
    finished_at = db.Column(db.DateTime, nullable=True)
    heartbeat_at = db.Column(db.DateTime, nullable=True)
    progress = db.Column(db.JSON, nullable=False, default=dict)
    history = db.Column(db.JSON, nullable=False, default=list)
    metrics = db.Column(db.JSON, nullable=False, default=dict)
    # Frozen at queue time, small (the run row is read by every progress poll): {"classes": [...],
    # "counts": [[train, val, test] per class], "taken_at": ...}. The sample list is in run_samples.
    snapshot = db.Column(db.JSON, nullable=False, default=dict)
    classes = db.Column(db.JSON, nullable=False, default=list)
    log = db.Column(db.JSON, nullable=False, default=list)
    error = db.Column(db.Text, nullable=True)
    artifact_dir = db.Column(db.String(500), nullable=True)
    is_public = db.Column(db.Boolean, nullable=False, default=False)
    threshold = db.Column(db.Float, nullable=True)
    # Written once when training succeeds; deferred so that polls and lists never read them.
    # [{image_id, true, predicted, confidence}] for every test image (class indices).
    test_predictions = db.deferred(db.Column(db.JSON, nullable=True))
    # The same for every validation image: thresholds are chosen on these, never on the test images.
    val_predictions = db.deferred(db.Column(db.JSON, nullable=True))
    # {"total": n, "split": "val", "grid": [[answered, correct] for thresholds 0, 0.001, ..., 1]}
    # (thresholds.curve_grid); older runs' curves have no "split": they were made on the test images.
    threshold_curve = db.deferred(db.Column(db.JSON, nullable=True))
    # "Train more": the run whose checkpoint this one continues (same frozen samples, epochs numbered on).
    continued_from_id = db.Column(db.Integer, db.ForeignKey("training_runs.id", ondelete="SET NULL"), nullable=True)
    # Deleted moments ago: hidden from everyone (app.access) while it can still be restored, then purged
    # (training/deletion.py). deleted_at is indexed for the worker's search of runs past the undo window.
    deleting = db.Column(db.Boolean, nullable=False, default=False, server_default=db.false())
    deleted_at = db.Column(db.DateTime, nullable=True, index=True)
    dataset = db.relationship("Dataset")
    created_by = db.relationship("User")
    continued_from = db.relationship("TrainingRun", remote_side=[id])

    @property
    def finished(self) -> bool:
        return self.status in self.FINISHED


class Import(db.Model):
    """A background import of images into a dataset: an uploaded zip, a large batch of uploaded files
    ('files') or a folder on the server ('folder'); or of labels for its images from a CSV ('labels').
    Its counters are the progress the pages poll."""
    __tablename__ = "imports"
    KINDS = ("zip", "files", "folder", "labels")
    STATUSES = ("queued", "running", "finished", "failed", "cancelled")
    ACTIVE = ("queued", "running")
    MAX_ERRORS = 50  # the first errors are kept with their file names; later ones are only counted
    id = db.Column(db.Integer, primary_key=True)
    dataset_id = db.Column(db.Integer, db.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False, index=True)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    kind = db.Column(db.String(10), nullable=False)
    source_name = db.Column(db.String(255), nullable=False, default="")  # the zip's name or the folder
    status = db.Column(db.String(12), nullable=False, default="queued", index=True)
    total = db.Column(db.Integer, nullable=False, default=0)
    processed = db.Column(db.Integer, nullable=False, default=0)
    added = db.Column(db.Integer, nullable=False, default=0)
    duplicates = db.Column(db.Integer, nullable=False, default=0)
    error_count = db.Column(db.Integer, nullable=False, default=0)
    errors = db.Column(db.JSON, nullable=False, default=list)  # [{"filename", "message"}], at most MAX_ERRORS
    message = db.Column(db.Text, nullable=True)  # why it stopped early (failed or cancelled), in English
    message_line = db.Column(db.JSON, nullable=True)  # the same as an app.i18n stored line (shown translated)
    cancel_requested = db.Column(db.Boolean, nullable=False, default=False)
    job_id = db.Column(db.String(64), nullable=True)
    upload_path = db.Column(db.String(500), nullable=True)  # STORAGE_DIR/uploads/<id>/, removed at the end
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    started_at = db.Column(db.DateTime, nullable=True)
    finished_at = db.Column(db.DateTime, nullable=True)
    heartbeat_at = db.Column(db.DateTime, nullable=True)
    # kind 'labels': the undo of the labels it set (its page offers "Undo these labels" while it lasts)
    undo_action_id = db.Column(db.Integer, db.ForeignKey("undo_actions.id", ondelete="SET NULL"), nullable=True)
    user = db.relationship("User")

    @property
    def active(self) -> bool:
        return self.status in self.ACTIVE


class PendingFileRemoval(db.Model):
    """A stored file (by content hash) whose image rows were deleted: a job removes the file, its thumbnail
    and cached features once no image references the hash any more. Written in the same transaction as
    the delete, so a crash never leaves files behind for good."""
    __tablename__ = "pending_file_removals"
    id = db.Column(db.Integer, primary_key=True)
    sha256 = db.Column(db.String(64), nullable=False, index=True)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)


class UndoAction(db.Model):
    """A labeling or deleting action on the labeling grid, or a deleted class, that its user can take
    back for a while (UNDO_SECONDS). kind 'label': payload holds each image's label columns from before;
    kind 'delete': the deleted rows wait in trashed_images, their files kept until the action expires;
    kind 'class': payload {"label": its columns, "images": [[image_id, label_source, labeled_by_id,
    label_model_id], ...]}."""
    __tablename__ = "undo_actions"
    KINDS = ("label", "delete", "class")
    id = db.Column(db.Integer, primary_key=True)
    dataset_id = db.Column(db.Integer, db.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False, index=True)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    kind = db.Column(db.String(10), nullable=False)
    count = db.Column(db.Integer, nullable=False, default=0)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow, index=True)
    # kind 'label': [[image_id, label_id, label_source, labeled_by_id, label_model_id], ...]
    payload = db.Column(db.JSON, nullable=True)


class TrashedImage(db.Model):
    """A deleted image row kept for its UndoAction; its hash still counts as referenced, so its files stay."""
    __tablename__ = "trashed_images"
    id = db.Column(db.Integer, primary_key=True)
    undo_id = db.Column(db.Integer, db.ForeignKey("undo_actions.id", ondelete="CASCADE"), nullable=False,
                        index=True)
    sha256 = db.Column(db.String(64), nullable=False, index=True)
    row = db.Column(db.JSON, nullable=False)  # the image's columns (created_at as ISO text)


class RunSample(db.Model):
    """One image of a run's frozen sample list: written when the run is queued, read by its worker.

    position numbers the samples 0..n-1 (the engine's sample indices); part is 'train', 'val' or
    'test'. image_id is no foreign key: the list stays as it was trained even when images are deleted.
    """
    __tablename__ = "run_samples"
    PARTS = ("train", "val", "test")
    run_id = db.Column(db.Integer, db.ForeignKey("training_runs.id", ondelete="CASCADE"), primary_key=True,
                       autoincrement=False)
    position = db.Column(db.Integer, primary_key=True, autoincrement=False)
    image_id = db.Column(db.Integer, nullable=False)
    class_index = db.Column(db.Integer, nullable=False)
    sha256 = db.Column(db.String(64), nullable=False)
    part = db.Column(db.String(5), nullable=False)


# A started run's list as frozen in the "Start training" request: (image id, class id) of every labelled
# image, written by one INSERT ... SELECT; the training job turns them into run_samples and removes them
# (training/samples.py). No primary key and no index on purpose: rows live from a run's start to its
# training's start, are read once a run at a time, and an index would triple the request's writing.
run_frozen_images = db.Table(
    "run_frozen_images",
    db.Column("run_id", db.Integer, db.ForeignKey("training_runs.id", ondelete="CASCADE"), nullable=False),
    db.Column("image_id", db.Integer, nullable=False),
    db.Column("label_id", db.Integer, nullable=False),  # no foreign key: the class may be deleted meanwhile
)


class Setting(db.Model):
    """Instance-wide settings (e.g. the default model for anonymous /predict)."""
    __tablename__ = "settings"
    key = db.Column(db.String(80), primary_key=True)
    value = db.Column(db.JSON, nullable=True)


class Evaluation(db.Model):
    """A trained model tested on the labeled images of a dataset (another one, or its own dataset's images
    added since training): nothing is trained. Classes are matched by name, ignoring case; the job writes
    `counts` (what was evaluated and what was left out, and why), `metrics` and the worst mistakes.
    Polled every second while it runs: the big frozen results are deferred."""
    __tablename__ = "evaluations"
    __table_args__ = (db.Index("ix_evaluations_run_id", "run_id", "id"),)  # a model's evaluations, newest first
    STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
    FINISHED = ("succeeded", "failed", "cancelled")
    id = db.Column(db.Integer, primary_key=True)
    run_id = db.Column(db.Integer, db.ForeignKey("training_runs.id", ondelete="CASCADE"), nullable=False)
    dataset_id = db.Column(db.Integer, db.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False, index=True)
    created_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    status = db.Column(db.String(12), nullable=False, default="queued")
    job_id = db.Column(db.String(64), nullable=True)
    cancel_requested = db.Column(db.Boolean, nullable=False, default=False)
    progress = db.Column(db.JSON, nullable=False, default=dict)  # {"done", "total"}
    # {"evaluated", "unlabeled", "unknown_class", "learned", "unreadable", "unknown_classes": [names]}
    counts = db.Column(db.JSON, nullable=False, default=dict)
    error = db.Column(db.JSON, nullable=True)  # why it failed: an app.i18n stored line
    # app.ml.evaluate.Tally.report(): accuracy (+ Wilson interval), confusion matrix, per class
    metrics = db.deferred(db.Column(db.JSON, nullable=True))
    # the most confident mistakes [{image_id, true, predicted, confidence}], at most MISTAKES_KEPT
    misclassified = db.deferred(db.Column(db.JSON, nullable=True))
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    started_at = db.Column(db.DateTime, nullable=True)
    finished_at = db.Column(db.DateTime, nullable=True)
    run = db.relationship("TrainingRun")
    dataset = db.relationship("Dataset")
    created_by = db.relationship("User")

    @property
    def finished(self) -> bool:
        return self.status in self.FINISHED
