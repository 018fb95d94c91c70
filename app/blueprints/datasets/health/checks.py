"""Dataset health, the computing side: gather a dataset's images and models and ask app.ml.health what
is wrong with them. Imports torch (through app.ml.health): only the health job loads this module."""
from __future__ import annotations

from typing import Callable

from flask import current_app
from sqlalchemy import select

from app.access import shown_runs
from app.i18n import N_, stored_line
from app.blueprints.datasets.services import IMBALANCE_RATIO, RECOMMENDED_PER_CLASS, class_counts
from app.blueprints.training.samples import parts
from app.extensions import db
from app.ml import health as mlh
from app.ml.embeddings import ImageFiles
from app.models import Image, TrainingRun, utcnow
from app.filestore import image_key
from app.storage import get_storage

MAX_LISTED = 100          # findings of one kind kept in a report (the worst first)
MAX_LEAKS_LISTED = 50     # leaking image pairs listed per model


def check_dataset(dataset_id: int, progress: Callable[..., None] | None = None) -> dict:
    """Compute a health report of the dataset now (no queue, nothing stored): {"created", "findings", ...}."""
    progress = progress or (lambda *a, **k: None)
    images = list(db.session.scalars(select(Image).where(Image.dataset_id == dataset_id).order_by(Image.id)))
    progress(N_("Looking at every image (this is the slow part)"), 0.05, force=True)  # shown with |tr
    features = _features(dataset_id, images, lambda done, total: progress(
        stored_line(N_("Looking at every image: %(done)s of %(total)s"), done=done, total=total),
        0.05 + 0.8 * done / max(total, 1)))
    usable = [images[i] for i in features.ok]
    broken = [images[i] for i in sorted(set(range(len(images))) - set(features.ok))]
    vectors = features.vectors
    progress(N_("Comparing images and labels"), 0.9, force=True)
    findings = _file_findings(images, broken)
    findings += _duplicate_findings(usable, vectors)
    findings += _label_findings(usable, vectors)
    findings += _leak_findings(dataset_id, {img.sha256: vec for img, vec in zip(usable, vectors)})
    findings += _class_findings(dataset_id)
    return {"created": utcnow().isoformat(timespec="seconds") + "Z", "image_count": len(images),
            "findings": findings}


def _settings() -> tuple[str, int]:
    """(architecture, image size) of the features: quick mode's defaults, so its store is reused."""
    from app.ml.architectures import architecture_info

    arch = current_app.config.get("HEALTH_ARCHITECTURE") or mlh.DEFAULT_ARCHITECTURE
    return arch, current_app.config.get("HEALTH_IMAGE_SIZE") or architecture_info(arch).default_image_size


def _present(storage, images: list[Image]) -> list[int]:
    """Indexes of the images whose file is stored. A bucket is not asked image by image (a request
    each): there a missing file shows up when it is read, and is left out of the features the same way."""
    if storage.remote:
        return list(range(len(images)))
    return [k for k, img in enumerate(images) if storage.exists(image_key(img.sha256))]


def _features(dataset_id: int, images: list[Image], on_batch):
    """Backbone features of every image whose file exists and decodes (stored ones are not decoded
    again: a stored vector proves the file decoded); the others are missing from Features.ok."""
    import numpy as np

    from app.ml.embeddings import Features, FeatureSetup

    storage = get_storage()
    present = _present(storage, images)
    if not present:
        return Features(np.zeros((0, 0), dtype=np.float32), [])
    arch, size = _settings()
    setup = FeatureSetup(dataset_dir=storage.feature_dir(dataset_id), backbone_dir=storage.backbone_dir,
                         device=current_app.config.get("HEALTH_DEVICE"), threads=current_app.config["FEATURE_THREADS"])
    chosen = [images[k] for k in present]
    files = ImageFiles([storage.ref(image_key(i.sha256)) for i in chosen], [i.sha256 for i in chosen],
                       [i.id for i in chosen])
    found = mlh.embed_images(files, setup, arch, size, on_batch=on_batch)
    found.ok = [present[k] for k in found.ok]
    return found


def _file_findings(images: list[Image], broken: list[Image]) -> list[dict]:
    found = [{"key": f"corrupt:{img.sha256}", "kind": "corrupt", "images": [img.id]} for img in broken]
    tiny = [images[i] for i in mlh.small_images([(i.width, i.height) for i in images])]
    found += [{"key": f"tiny:{img.sha256}", "kind": "tiny", "images": [img.id], "size": [img.width, img.height],
               "min_side": mlh.MIN_SIDE} for img in tiny if img not in broken]
    return found[:MAX_LISTED]


def _duplicate_findings(images: list[Image], vectors) -> list[dict]:
    if len(images) < 2:
        return []
    groups = mlh.near_duplicate_groups(vectors, current_app.config.get("HEALTH_DUPLICATE_SIMILARITY",
                                                                       mlh.DUPLICATE_SIMILARITY))
    return [{"key": "duplicate:" + ",".join(sorted(images[i].sha256[:16] for i in g["members"])),
             "kind": "duplicate", "images": [images[i].id for i in g["members"]], "similarity": g["similarity"]}
            for g in groups[:MAX_LISTED]]


def _label_findings(images: list[Image], vectors) -> list[dict]:
    labelled = [(k, img) for k, img in enumerate(images) if img.label_id is not None]
    label_ids = sorted({img.label_id for _, img in labelled})
    if len(label_ids) < 2 or len(labelled) < 2 * mlh.FOLDS:
        return []  # too little to learn from: every verdict would be noise
    index = {label_id: c for c, label_id in enumerate(label_ids)}
    labels = [index[img.label_id] for _, img in labelled]
    probs = mlh.out_of_fold_probs(vectors[[k for k, _ in labelled]], labels, len(label_ids))
    found = []
    for issue in mlh.likely_label_errors(probs, labels)[:MAX_LISTED]:
        img = labelled[issue.index][1]
        found.append({"key": f"label:{img.sha256}:{img.label_id}>{label_ids[issue.suggested]}",
                      "kind": "label_error", "images": [img.id], "given_label_id": img.label_id,
                      "suggested_label_id": label_ids[issue.suggested], "confidence": issue.confidence})
    return found


def _leak_findings(dataset_id: int, vectors: dict) -> list[dict]:
    runs = db.session.scalars(select(TrainingRun).where(
        TrainingRun.dataset_id == dataset_id, TrainingRun.status == "succeeded", shown_runs())
        .order_by(TrainingRun.id)).all()
    found = []
    for run in runs:
        part = parts(run.id, ("train", "test"))
        leaks = mlh.split_leaks(part["train"], part["test"], vectors,
                                current_app.config.get("HEALTH_DUPLICATE_SIMILARITY", mlh.DUPLICATE_SIMILARITY))
        if leaks:
            pairs = [[leak["test"][0], leak["train"][0], leak["how"], leak["similarity"]] for leak in leaks]
            found.append({"key": f"leak:{run.id}", "kind": "leakage", "run_id": run.id, "run_name": run.name,
                          "test_count": len(part["test"]), "leak_count": len(leaks),
                          "pairs": pairs[:MAX_LEAKS_LISTED],
                          "images": sorted({i for p in pairs[:MAX_LEAKS_LISTED] for i in p[:2]})})
    return found


def _class_findings(dataset_id: int) -> list[dict]:
    classes, _ = class_counts(dataset_id)
    counts = {c["label"].name: c["count"] for c in classes}
    ids = {c["label"].name: c["label"].id for c in classes}
    found = []
    for item in mlh.class_size_findings(counts, RECOMMENDED_PER_CLASS, IMBALANCE_RATIO):
        if item["kind"] == "small_class":
            found.append({**item, "key": f"small:{ids[item['class']]}",
                          "label_id": ids[item["class"]], "min_images": RECOMMENDED_PER_CLASS, "images": []})
        else:
            found.append({**item, "key": f"imbalance:{item['largest']}:{item['smallest']}", "images": [],
                          "label_ids": [ids[item["largest"]], ids[item["smallest"]]]})
    return found
