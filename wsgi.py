"""Gunicorn entry point: `gunicorn wsgi:app`."""
import sys

from app import create_app
from app.storage import StorageError, check_storage

BOOT_ERROR = 3  # gunicorn's "worker failed to boot": the server stops instead of restarting the worker

try:
    app = create_app()
    check_storage(app)  # a missing bucket or refused credentials stop the server here, not at the first upload
except StorageError as err:
    print(f"web server not started: {err}", file=sys.stderr, flush=True)
    raise SystemExit(BOOT_ERROR) from None
