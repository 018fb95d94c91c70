"""What every page of one dataset shares: the template context for its layout (datasets/_page.html with
the header and tabs of datasets/_nav.html) and the link to the training page."""
from flask import current_app, url_for
from flask_login import current_user

from app.access import dataset_role


def page_context(dataset, class_counts: tuple | None = None) -> dict:
    """What every dataset page needs to show the right controls for the current user's role.
    class_counts: the dataset's (class counts, unlabeled) when the page has them already (a grouped count
    over every image: ~25 ms at 200,000)."""
    from app.blueprints.datasets.readiness import missing_for_training

    role = dataset_role(current_user, dataset)
    return {"dataset": dataset, "role": role, "can_edit": role in ("owner", "editor"), "is_owner": role == "owner",
            "train_missing": missing_for_training(dataset.id, class_counts)}


def train_url(dataset_id: int) -> str:
    """Link to the training page, which another feature provides (fallback: a plain path)."""
    if "training.new_run" in current_app.view_functions:
        return url_for("training.new_run", dataset_id=dataset_id)
    return f"/datasets/{dataset_id}/train"
