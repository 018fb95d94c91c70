"""The app's file storage: the store STORAGE_URL names (app/filestore: a local folder or an S3 bucket),
built once per app, and the responses that send stored files to a browser. With a bucket, the installed
pretrained weights live in it too (app/filestore/weights_shelf.py)."""
from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

from flask import Flask, Response, current_app, redirect, send_file
from werkzeug.http import dump_options_header

from app.filestore import Store, StorageError, make_store

__all__ = ["Store", "StorageError", "attachment_headers", "check_storage", "download_response", "get_storage",
           "init_storage"]

STREAM_CHUNK = 1 << 20


def build_store(config) -> Store:
    """The store the configuration names (nothing is contacted here)."""
    options = {"endpoint_url": config.get("S3_ENDPOINT_URL") or None, "region": config.get("S3_REGION") or None,
               "access_key": config.get("S3_ACCESS_KEY_ID") or None,
               "secret_key": config.get("S3_SECRET_ACCESS_KEY") or None,
               "public_endpoint_url": config.get("S3_PUBLIC_ENDPOINT_URL") or None}
    return make_store(config.get("STORAGE_URL") or "", config["STORAGE_DIR"],
                      cache_bytes=int(config.get("STORAGE_CACHE_MB", 10240)) * 2**20, s3_options=options)


def init_storage(app: Flask) -> None:
    """Build the app's store (a bad STORAGE_URL fails here, with its message) and let app.ml read
    images by reference from it."""
    from app.filestore.weights_shelf import StoreShelf
    from app.ml.files import set_resolver
    from app.ml.networks import set_weights_shelf

    store = build_store(app.config)
    app.extensions["storage"] = store
    set_resolver(getattr(store, "resolve_ref", None))
    set_weights_shelf(StoreShelf(store) if store.remote else None)


def get_storage() -> Store:
    return current_app.extensions["storage"]


def check_storage(app: Flask) -> None:
    """Contact the store once (web and worker start-up): StorageError with a plain message when the
    bucket is missing or the credentials are refused, instead of failures at the first upload."""
    app.extensions["storage"].check()
    _seed_weights(app)


def _seed_weights(app: Flask) -> None:
    """The first machine started with a bucket puts the weights its own folder holds (the Docker image
    brings some) into it, once: from then on the bucket alone says what is installed, so a network an
    admin removes stays removed."""
    import logging

    from app.ml.errors import WeightsError
    from app.ml.networks import weights_shelf
    from app.ml.weights import share_folder

    shelf = weights_shelf()
    if shelf is None or shelf.seeded():
        return
    try:
        shared = share_folder(shelf)
    except WeightsError as exc:
        logging.getLogger(__name__).warning("weights not put in the bucket: %s", exc)
        return
    shelf.mark_seeded()
    if shared:
        logging.getLogger(__name__).info("weights put in the bucket from %s: %s", app.config["WEIGHTS_DIR"],
                                         ", ".join(shared))


def download_response(key: str, download_name: str, mimetype: str) -> Response:
    """A stored file as an attachment: from disk (local), as a redirect to a short-lived URL of the
    bucket (STORAGE_PRESIGNED_DOWNLOADS), or streamed from the bucket chunk by chunk."""
    store, config = get_storage(), current_app.config
    if not store.remote:
        response = send_file(store.local_path(key), mimetype=mimetype, as_attachment=True, download_name=download_name)
        response.headers.update(attachment_headers(download_name))  # the same ASCII name as from a bucket
        return response
    if config.get("STORAGE_PRESIGNED_DOWNLOADS"):
        url = store.download_url(key, download_name, config["STORAGE_PRESIGNED_SECONDS"])
        if url:
            return redirect(url, 302)
    size = store.size(key)
    body = store.open(key)

    def chunks():
        try:
            while chunk := body.read(STREAM_CHUNK):
                yield chunk
        finally:
            body.close()

    response = Response(chunks(), mimetype=mimetype, direct_passthrough=True,
                        headers=attachment_headers(download_name))
    response.headers["Content-Length"] = str(size)
    return response


def attachment_headers(download_name: str) -> dict[str, str]:
    """Content-Disposition for a download, as send_file writes it: a name that is not ASCII goes in
    filename* (UTF-8, RFC 6266) with an ASCII approximation in filename for old clients."""
    try:
        download_name.encode("ascii")
    except UnicodeEncodeError:
        simple = unicodedata.normalize("NFKD", download_name).encode("ascii", "ignore").decode("ascii")
        simple = re.sub(r"-{2,}", "-", simple).lstrip("-") or "download"
        quoted = quote(download_name, safe="!#$&+-.^_`|~")
        names = {"filename": simple, "filename*": f"UTF-8''{quoted}"}
    else:
        names = {"filename": download_name}
    return {"Content-Disposition": dump_options_header("attachment", names)}
