"""Configuration: one place, environment variables with safe local defaults."""
from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path


class ConfigError(RuntimeError):
    """A required production setting is missing."""


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def _env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def load_secret_key(instance_path: str) -> str:
    """Return SECRET_KEY from the environment, or one generated once and kept in instance/."""
    key = os.environ.get("SECRET_KEY")
    if key:
        return key
    path = Path(instance_path) / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # O_EXCL: two processes starting together must not write two different keys.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
        except FileExistsError:
            pass
    return path.read_text().strip()


def _check_production() -> bool:
    production = os.environ.get("APP_ENV", "development") == "production"
    if production:
        missing = [n for n in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL") if not os.environ.get(n)]
        if missing:
            raise ConfigError(
                "APP_ENV=production needs these environment variables: " + ", ".join(missing)
            )
    return production


def _database_url(instance_path: str) -> str:
    database_url = os.environ.get("DATABASE_URL") or "sqlite:///" + os.path.join(
        instance_path, "studio.sqlite3"
    )
    if database_url.startswith("postgres://"):
        database_url = "postgresql://" + database_url[len("postgres://"):]
    return database_url


def _upload_settings() -> dict:
    return {
        "MAX_CONTENT_LENGTH": _env_int("MAX_CONTENT_LENGTH", 512 * 1024 * 1024),
        "MAX_IMAGE_PIXELS": _env_int("MAX_IMAGE_PIXELS", 40_000_000),
        "MAX_ZIP_FILES": _env_int("MAX_ZIP_FILES", 20_000),
        "MAX_ZIP_UNCOMPRESSED": _env_int("MAX_ZIP_UNCOMPRESSED", 4 * 1024 * 1024 * 1024),
        # The largest single image file (also each zip entry: a bigger one is refused without reading it).
        "MAX_IMAGE_BYTES": _env_int("MAX_IMAGE_BYTES", 100 * 1024 * 1024),
        # A request body up to this size keeps its uploaded files in memory (a phone photo in POST /predict
        # is not written to a temporary file and read back); bigger bodies go to temporary files.
        "FORM_FILES_IN_MEMORY_BYTES": _env_int("FORM_FILES_IN_MEMORY_BYTES", 64 * 1024 * 1024),
        # The upload route alone accepts requests up to this size (a zip, streamed to disk, imported by a job).
        "MAX_UPLOAD_BYTES": _env_int("MAX_UPLOAD_BYTES", 4 * 1024 * 1024 * 1024),
        # More loose images than this in one request are imported in the background, like a zip.
        "SYNC_UPLOAD_MAX_FILES": _env_int("SYNC_UPLOAD_MAX_FILES", 150),
        # A CSV of labels (in a zip, or for a dataset's images) is refused past this size. Labeling a
        # dataset's images from one runs at once up to both SYNC limits, else in the background.
        "LABELS_CSV_MAX_BYTES": _env_int("LABELS_CSV_MAX_BYTES", 50 * 1024 * 1024),
        "LABELS_SYNC_MAX_ROWS": _env_int("LABELS_SYNC_MAX_ROWS", 500),
        "LABELS_SYNC_MAX_IMAGES": _env_int("LABELS_SYNC_MAX_IMAGES", 20_000),
        # What the browser sends per request when many loose images are chosen.
        "UPLOAD_BATCH_FILES": _env_int("UPLOAD_BATCH_FILES", 100),
        "UPLOAD_BATCH_MB": _env_int("UPLOAD_BATCH_MB", 50),
    }


def _serving_settings() -> dict:
    return {
        "PREDICT_MAX_FILES": _env_int("PREDICT_MAX_FILES", 256),
        "PREDICT_MAX_BATCH": _env_int("PREDICT_MAX_BATCH", 32),
        # Pixels one /predict request may make the server decode (after JPEG draft scaling; identical
        # files count once). Past it the remaining files get an error entry instead of an answer.
        "PREDICT_MAX_REQUEST_PIXELS": _env_int("PREDICT_MAX_REQUEST_PIXELS", 200_000_000),
        "MODEL_CACHE_SIZE": _env_int("MODEL_CACHE_SIZE", 4),
        # After each model load, move the process's long-lived objects out of the garbage collector's
        # full walks (app.serving.settle_heap). Off only in the test process, where each walk is long.
        "PREDICT_FREEZE_HEAP": _env_bool("PREDICT_FREEZE_HEAP", True),
        "PREDICT_DEVICE": os.environ.get("PREDICT_DEVICE", ""),  # '' = GPU when present, else CPU
        # On a GPU: 'fp32', or 'bf16' (kept only where it agrees with fp32). Measured on an H200, bf16 gave
        # nothing (the CPU decoding feeds the GPU 4x slower than an fp32 forward runs) and moved answers.
        "PREDICT_PRECISION": os.environ.get("PREDICT_PRECISION", "fp32"),
        # ONNX Runtime threads per web process (0 = all cores); lower it when running several workers.
        "PREDICT_THREADS": _env_int("PREDICT_THREADS", 0),
    }


def _job_settings() -> dict:
    return {
        "RQ_QUEUE": os.environ.get("RQ_QUEUE", "studio"),
        "TRAIN_JOB_TIMEOUT": _env_int("TRAIN_JOB_TIMEOUT", 24 * 3600),
        "HEALTH_JOB_TIMEOUT": _env_int("HEALTH_JOB_TIMEOUT", 2 * 3600),
        "SUGGEST_JOB_TIMEOUT": _env_int("SUGGEST_JOB_TIMEOUT", 3600),
        # Testing a model on a dataset ("Evaluate on a dataset"): 200,000 images on a CPU take hours.
        "EVALUATE_JOB_TIMEOUT": _env_int("EVALUATE_JOB_TIMEOUT", 12 * 3600),
        "IMPORT_JOB_TIMEOUT": _env_int("IMPORT_JOB_TIMEOUT", 6 * 3600),
        # An import commits its rows (and progress) every IMPORT_BATCH_SIZE images or every second;
        # a running import whose progress has not moved for IMPORT_STALE_SECONDS counts as dead.
        "IMPORT_BATCH_SIZE": _env_int("IMPORT_BATCH_SIZE", 200),
        "IMPORT_STALE_SECONDS": _env_int("IMPORT_STALE_SECONDS", 120),
        # Threads an import decodes and thumbnails images on (Pillow releases the GIL while it works).
        "IMPORT_THREADS": _env_int("IMPORT_THREADS", min(4, os.cpu_count() or 1)),
        # How long an import keeps retrying a write that meets a busy database before it fails.
        "IMPORT_DB_RETRY_SECONDS": _env_int("IMPORT_DB_RETRY_SECONDS", 120),
        "DELETE_JOB_TIMEOUT": _env_int("DELETE_JOB_TIMEOUT", 6 * 3600),
        # Deleting more images than this at once leaves their files to a background job.
        "DELETE_SYNC_MAX_FILES": _env_int("DELETE_SYNC_MAX_FILES", 200),
        # How long a labeling or deleting action on the grid can be undone (the page offers it ~10 s);
        # deleted images' files stay that long.
        "UNDO_SECONDS": _env_int("UNDO_SECONDS", 120),
        # How long a deleted dataset or model can be brought back (hidden meanwhile); then a worker removes it.
        "DATASET_UNDO_SECONDS": _env_int("DATASET_UNDO_SECONDS", 120),
        # Downloading (or checking an uploaded) pretrained weights file: Admin -> Networks.
        "NETWORK_JOB_TIMEOUT": _env_int("NETWORK_JOB_TIMEOUT", 3600),
        # How long RQ keeps a finished or failed job's record (training: TRAIN_RESULT_TTL below).
        "JOB_RESULT_TTL": _env_int("JOB_RESULT_TTL", 24 * 3600),
        # Memory a training job may keep decoded images in (~270 KB each at 224 px); beyond it the
        # remaining images are decoded again every epoch.
        "TRAIN_IMAGE_CACHE_MB": _env_int("TRAIN_IMAGE_CACHE_MB", 4096),
        # How long a finished training job's RQ record is kept, and after how many seconds without a
        # heartbeat a running run counts as dead (its worker was killed).
        "TRAIN_RESULT_TTL": _env_int("TRAIN_RESULT_TTL", 7 * 24 * 3600),
        "TRAIN_STALE_SECONDS": _env_int("TRAIN_STALE_SECONDS", 60),
        # How long a training job keeps retrying a database write that meets a busy (SQLite: locked) or
        # unreachable database before giving up: claiming its run and storing the result. Progress writes
        # give up sooner and are simply written with the next progress update.
        "TRAIN_DB_RETRY_SECONDS": _env_int("TRAIN_DB_RETRY_SECONDS", 600),
        # Threads a job uses to decode images and run the backbone with ONNX Runtime in feature passes
        # (quick mode, health check, suggestions); 0 = every core the worker may use. With several
        # workers on one machine, set it to cores / workers.
        "FEATURE_THREADS": _env_int("FEATURE_THREADS", 0),
        # worker.py imports torch & co. once before it forks jobs (each job then starts seconds sooner).
        "WORKER_PRELOAD_ML": _env_bool("WORKER_PRELOAD_ML", True),
    }


def _webhook_settings(production: bool) -> dict:
    """Webhooks (app/blueprints/webhooks): deliveries run on their own queue, <RQ_QUEUE>-webhooks."""
    return {
        # Hosts that resolve to loopback, private or link-local addresses reach the server's own network
        # (databases, cloud metadata): refused in production unless allowed, allowed in development.
        "WEBHOOKS_ALLOW_PRIVATE": _env_bool("WEBHOOKS_ALLOW_PRIVATE", not production),
        "WEBHOOK_TIMEOUT_S": float(os.environ.get("WEBHOOK_TIMEOUT_S", "10")),
        "WEBHOOK_ATTEMPTS": max(1, _env_int("WEBHOOK_ATTEMPTS", 5)),
        # Seconds before each retry (the last value repeats): RQ's scheduler (the worker runs it) waits them.
        "WEBHOOK_RETRY_INTERVALS": [int(s) for s in
                                    os.environ.get("WEBHOOK_RETRY_INTERVALS", "10,60,300,1800").split(",")],
        "WEBHOOK_DISABLE_AFTER": _env_int("WEBHOOK_DISABLE_AFTER", 20),  # failed attempts in a row
        "WEBHOOKS_PER_USER": _env_int("WEBHOOKS_PER_USER", 20),
        "WEBHOOK_JOB_TIMEOUT": _env_int("WEBHOOK_JOB_TIMEOUT", 60),
    }


def _health_settings() -> dict:
    # Dataset health check: the network that embeds images, and the cosine similarity above which two
    # images count as near-duplicates.
    return {
        "HEALTH_ARCHITECTURE": os.environ.get("HEALTH_ARCHITECTURE", "efficientnet_lite0"),
        "HEALTH_IMAGE_SIZE": _env_int("HEALTH_IMAGE_SIZE", 0) or None,
        "HEALTH_DUPLICATE_SIMILARITY": float(os.environ.get("HEALTH_DUPLICATE_SIMILARITY", "0.95")),
    }


def _storage_settings(instance_path: str) -> dict:
    """Where stored files live: STORAGE_DIR (default), or an S3-compatible bucket named by STORAGE_URL
    (s3://bucket/prefix) with STORAGE_DIR then holding this machine's cache and work files only."""
    return {
        "STORAGE_DIR": os.environ.get("STORAGE_DIR") or os.path.join(instance_path, "storage"),
        "STORAGE_URL": os.environ.get("STORAGE_URL", ""),
        # S3_ENDPOINT_URL for MinIO & co. (empty: AWS, or AWS_ENDPOINT_URL); credentials and region from
        # S3_* or else boto3's usual chain (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION...).
        "S3_ENDPOINT_URL": os.environ.get("S3_ENDPOINT_URL", ""),
        "S3_REGION": os.environ.get("S3_REGION", ""),
        "S3_ACCESS_KEY_ID": os.environ.get("S3_ACCESS_KEY_ID", ""),
        "S3_SECRET_ACCESS_KEY": os.environ.get("S3_SECRET_ACCESS_KEY", ""),
        # The endpoint browsers reach for presigned downloads, when it differs (e.g. MinIO behind a proxy).
        "S3_PUBLIC_ENDPOINT_URL": os.environ.get("S3_PUBLIC_ENDPOINT_URL", ""),
        # Local copies of images and models read from the bucket, least recently used evicted first.
        "STORAGE_CACHE_MB": _env_int("STORAGE_CACHE_MB", 10 * 1024),
        # Model and image downloads redirect to a URL of the bucket valid this long instead of passing
        # through the web process (S3 only).
        "STORAGE_PRESIGNED_DOWNLOADS": _env_bool("STORAGE_PRESIGNED_DOWNLOADS"),
        "STORAGE_PRESIGNED_SECONDS": _env_int("STORAGE_PRESIGNED_SECONDS", 300),
    }


def _account_settings(production: bool) -> dict:
    return {
        "MIN_PASSWORD_LENGTH": _env_int("MIN_PASSWORD_LENGTH", 8),
        "LOGIN_MAX_FAILURES": _env_int("LOGIN_MAX_FAILURES", 5),
        "LOGIN_LOCK_SECONDS": _env_int("LOGIN_LOCK_SECONDS", 300),
        "PASSWORD_RESET_HOURS": max(1, _env_int("PASSWORD_RESET_HOURS", 24)),  # how long a reset link works (1 h at least)
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _env_bool("SESSION_COOKIE_SECURE", production),
        # The remember-me cookie names one server-side session (auth/sessions.py) and expires with it.
        "REMEMBER_COOKIE_DURATION": timedelta(days=_env_int("REMEMBER_DAYS", 14)),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": _env_bool("SESSION_COOKIE_SECURE", production),
        "WTF_CSRF_TIME_LIMIT": None,
    }


def _limit_settings() -> dict:
    """Rate limits (Flask-Limiter, kept in the app's Redis), quotas and the fair training queue.

    A limit is a Flask-Limiter string such as "20 per minute;200 per hour"; an empty one switches that
    limit off. Quotas: 0 means no limit (admins change the defaults and single users on Admin -> Users)."""
    return {
        "RATELIMIT_ENABLED": _env_bool("RATELIMIT_ENABLED", True),
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI", ""),  # '' = the app's Redis
        "RATELIMIT_STRATEGY": os.environ.get("RATELIMIT_STRATEGY", "fixed-window"),
        "RATELIMIT_KEY_PREFIX": "studio-limits",
        # When Redis does not answer, requests pass (and the error is logged) rather than fail.
        "RATELIMIT_SWALLOW_ERRORS": _env_bool("RATELIMIT_SWALLOW_ERRORS", True),
        "RATELIMIT_HEADERS_ENABLED": False,  # Retry-After is sent with every 429 (app/rate_limits.py)
        # Per client IP, POST only.
        "RATELIMIT_LOGIN": os.environ.get("RATELIMIT_LOGIN", "30 per minute;300 per hour"),
        "RATELIMIT_REGISTER": os.environ.get("RATELIMIT_REGISTER", "10 per hour;50 per day"),
        "RATELIMIT_TOKENS": os.environ.get("RATELIMIT_TOKENS", "30 per hour"),
        # Images (not requests) per minute: per account (token or session) and per IP for anonymous calls.
        "RATELIMIT_PREDICT": os.environ.get("RATELIMIT_PREDICT", "3000 per minute"),
        "RATELIMIT_PREDICT_ANONYMOUS": os.environ.get("RATELIMIT_PREDICT_ANONYMOUS", "300 per minute"),
        # Upload requests per account (the browser sends UPLOAD_BATCH_FILES images per request).
        "RATELIMIT_UPLOAD": os.environ.get("RATELIMIT_UPLOAD", "120 per minute;3000 per hour"),
        # Reverse proxies in front of the app whose X-Forwarded-For/-Proto are trusted (0: none, the
        # client IP is the connection's address and nobody can choose it with a header).
        "TRUSTED_PROXIES": _env_int("TRUSTED_PROXIES", 0),
        # Per-user quota defaults (0 = no limit); an admin changes them on Admin -> Limits.
        "QUOTA_STORAGE_MB": _env_int("QUOTA_STORAGE_MB", 50 * 1024),
        "QUOTA_IMAGES": _env_int("QUOTA_IMAGES", 250_000),
        "QUOTA_DATASETS": _env_int("QUOTA_DATASETS", 100),
        "QUOTA_MODELS": _env_int("QUOTA_MODELS", 200),
        # Training runs one user may have queued or running at once.
        "QUOTA_ACTIVE_RUNS": _env_int("QUOTA_ACTIVE_RUNS", 3),
    }


def build_config(instance_path: str) -> dict:
    """Read every setting from the environment; raise ConfigError for unsafe production setups."""
    production = _check_production()
    return {
        "APP_ENV": "production" if production else "development",
        "SECRET_KEY": load_secret_key(instance_path),
        "SQLALCHEMY_DATABASE_URI": _database_url(instance_path),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        # SQLite only: how long a write waits for another writer's transaction before failing.
        "SQLITE_BUSY_TIMEOUT": float(os.environ.get("SQLITE_BUSY_TIMEOUT", "30")),
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
        # Pretrained weights files (Admin -> Networks, `flask weights`); shared by web and workers.
        "WEIGHTS_DIR": os.environ.get("WEIGHTS_DIR") or os.path.join(instance_path, "weights"),
        "ALLOW_REMOTE_SHUTDOWN": _env_bool("ALLOW_REMOTE_SHUTDOWN"),
        # Written by gunicorn.conf.py at start; read by `flask shutdown`.
        "SERVER_PID_FILE": os.environ.get("SERVER_PID_FILE") or os.path.join(instance_path, "gunicorn.pid"),
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
        **_upload_settings(), **_serving_settings(), **_job_settings(), **_health_settings(),
        **_account_settings(production), **_limit_settings(), **_storage_settings(instance_path),
        **_webhook_settings(production),
    }
