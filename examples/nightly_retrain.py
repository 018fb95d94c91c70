"""Nightly: add the day's camera images, retrain, and promote the new model if it is better.

    STUDIO_TOKEN=ics_... python nightly_retrain.py --url http://studio:8000 --dataset 4 --images /data/2024-05-01

--images is a folder with one sub-folder per class (red/, blue/, ...), like the zips the studio imports.
The new model trains with the settings of your current default model (the one POST /predict uses when you
name none), or with --architecture/--mode/--options the first night. It becomes your default when its
test accuracy beats the current default's by at least --min-gain. (Both are measured on their own test
images, so a small gain may be noise: that is what --min-gain is for.)

Needs only `requests`. Exit status: 0 promoted or kept, 1 when something failed (the reason is printed).
"""
from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import sys
import time
import zipfile
from pathlib import Path

import requests

FINISHED = {"finished", "failed", "cancelled", "succeeded"}


class Studio:
    """A few lines around requests: base URL, token, JSON errors raised with their message."""

    def __init__(self, url: str, token: str):
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, **kwargs) -> dict:
        response = self.session.request(method, self.url + path, timeout=300, **kwargs)
        if response.status_code >= 400:
            error = response.json() if response.headers.get("Content-Type", "").startswith("application/json") else {}
            raise SystemExit(f"{method} {path}: {response.status_code} {error.get('code')}: "
                             f"{error.get('error', response.text[:200])}")
        return response.json() if response.content else {}

    def wait(self, path: str, every: float, timeout: float, show) -> dict:
        """GET path until its status is final; show(document) after each poll."""
        deadline = time.monotonic() + timeout
        while True:
            doc = self.call("GET", path)
            show(doc)
            if doc["status"] in FINISHED:
                return doc
            if time.monotonic() > deadline:
                raise SystemExit(f"gave up waiting for {path} after {timeout:.0f} s")
            time.sleep(every)


def zip_folder(folder: Path) -> bytes:
    """The folder (one sub-folder per class) as a zip, in memory."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    return buf.getvalue()


def add_images(studio: Studio, dataset: int, folder: Path, args) -> None:
    answer = studio.call("POST", f"/api/v1/datasets/{dataset}/images",
                         files=[("files", (f"{folder.name}.zip", zip_folder(folder), "application/zip"))])
    for result in answer["results"]:  # a zip refused as a whole says why here
        print(f"  {result['filename']}: {result['status']} {result['message']}")
    if not answer["imports"]:
        raise SystemExit("the images were not imported")
    done = studio.wait(answer["imports"][0]["status_url"], args.poll, args.timeout,
                       lambda d: print(f"  import: {d['status']} {d['processed']}/{d['total']}"))
    if done["status"] != "finished":
        raise SystemExit(f"the import {done['status']}: {done['message']}")
    print(f"added {done['added']} images ({done['duplicates']} already there, {done['error_count']} unusable)")


def current_default(studio: Studio) -> dict | None:
    model_id = studio.call("GET", "/api/v1/me")["default_model_id"]
    return studio.call("GET", f"/api/v1/runs/{model_id}") if model_id else None


def settings(current: dict | None, args) -> dict:
    if current is not None:
        options = {k: v for k, v in current["options"].items() if k not in ("architecture", "mode")}
        return {"architecture": current["architecture"], "mode": current["mode"], "options": options}
    return {"architecture": args.architecture, "mode": args.mode, "options": json.loads(args.options)}


def train(studio: Studio, dataset: int, current: dict | None, args) -> dict:
    name = f"nightly {datetime.date.today().isoformat()}"
    run = studio.call("POST", f"/api/v1/datasets/{dataset}/runs", json={"name": name, **settings(current, args)})
    print(f"training run {run['id']} ({run['architecture']}, {run['mode']})")
    return studio.wait(f"/api/v1/runs/{run['id']}", args.poll, args.timeout,
                       lambda r: print(f"  {r['status']} {r['progress']['fraction']:.0%}"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=os.environ.get("STUDIO_URL", "http://127.0.0.1:5000"))
    parser.add_argument("--dataset", type=int, required=True)
    parser.add_argument("--images", type=Path, required=True, help="folder with one sub-folder per class")
    parser.add_argument("--min-gain", type=float, default=0.0, help="accuracy gain needed to promote (0.01 = 1 point)")
    parser.add_argument("--architecture", default="efficientnet_lite0", help="first night only")
    parser.add_argument("--mode", default="quick", help="first night only")
    parser.add_argument("--options", default="{}", help="JSON, first night only, e.g. '{\"epochs\": 20}'")
    parser.add_argument("--poll", type=float, default=2.0)
    parser.add_argument("--timeout", type=float, default=6 * 3600)
    args = parser.parse_args(argv)
    studio = Studio(args.url, os.environ["STUDIO_TOKEN"])

    add_images(studio, args.dataset, args.images, args)
    current = current_default(studio)
    run = train(studio, args.dataset, current, args)
    if run["status"] != "succeeded":
        print(f"training {run['status']}: {run['error'] or ''}")
        return 1
    before = current["accuracy"] if current else None
    print(f"new model {run['id']}: test accuracy {run['accuracy']:.3f}"
          + (f" (current default {current['id']}: {before:.3f})" if current else " (no default model yet)"))
    if before is not None and run["accuracy"] < before + args.min_gain:
        print(f"kept model {current['id']} as the default")
        return 0
    studio.call("PUT", "/api/v1/me/default-model", json={"model_id": run["id"]})
    print(f"promoted model {run['id']}: POST /predict now uses it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
