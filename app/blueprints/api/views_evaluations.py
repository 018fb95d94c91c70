"""API: test a trained model on a dataset's labeled images, and read the result (the services of the model
page's "Evaluate on a dataset")."""
from app.blueprints.api import bp
from app.blueprints.api.contract import Op, operation
from app.blueprints.api.schemas.evaluations import EvaluationIn, EvaluationOut
from app.blueprints.training import evaluations
from app.models import Evaluation

TAG = "Training"
START_HELP = ("Runs in the background: poll GET /api/v1/runs/{run_id}/evaluations/{evaluation_id} until `finished`. "
              "You need to see both the model's dataset and this one. Classes are matched by name, ignoring case; "
              "unlabeled images, images of classes the model does not know and images it was trained or validated "
              "on are left out and counted. 422 when no image can be tested (no class matches, or none is labeled), "
              "nothing queued; 409 when the model has not finished training.")


def evaluation_doc(evaluation: Evaluation) -> dict:
    """An evaluation as the API shows it (its metrics once it has succeeded)."""
    counts = evaluation.counts or {}
    metrics = (evaluation.metrics or {}) if evaluation.status == "succeeded" else {}
    error = evaluation.error.get("message") if isinstance(evaluation.error, dict) else evaluation.error
    return {"id": evaluation.id, "run_id": evaluation.run_id, "dataset_id": evaluation.dataset_id,
            "status": evaluation.status, "finished": evaluation.finished,
            "progress": {"done": int((evaluation.progress or {}).get("done") or 0),
                         "total": int((evaluation.progress or {}).get("total") or 0)},
            "counts": {key: counts.get(key, 0) for key in ("evaluated", "unlabeled", "unknown_class", "learned",
                                                           "unreadable")}
            | {"unknown_classes": counts.get("unknown_classes") or [], "exact": evaluations.counted(counts)},
            "error": error, "accuracy": metrics.get("accuracy"), "accuracy_ci95": metrics.get("accuracy_ci95"),
            "classes": list(evaluation.run.classes or []), "confusion_matrix": metrics.get("confusion_matrix"),
            "per_class": metrics.get("per_class"),
            "misclassified": evaluation.misclassified if metrics else None,
            "created_at": evaluation.created_at, "started_at": evaluation.started_at,
            "finished_at": evaluation.finished_at}


@bp.post("/v1/runs/<int:run_id>/evaluations")
@operation(Op("Test a trained model on a dataset's labeled images (nothing is trained)", TAG, body=EvaluationIn,
              out=EvaluationOut, status=202, errors=(409, 422, 503), description=START_HELP))
def start_evaluation(user, data, run_id: int):
    return evaluation_doc(evaluations.request_evaluation(user, run_id, data["dataset_id"]))


@bp.get("/v1/runs/<int:run_id>/evaluations/<int:evaluation_id>")
@operation(Op("An evaluation: status, progress, what was left out and why, then accuracy, confusion matrix, "
              "per class, mistakes", TAG, out=EvaluationOut))
def get_evaluation(user, data, run_id: int, evaluation_id: int):
    return evaluation_doc(evaluations.get_evaluation_for(user, run_id, evaluation_id))
