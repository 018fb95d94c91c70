"""API: networks, training runs (start with the form's options, follow, cancel, retry, delete, restore) and
their results and files (the services of the training pages)."""
from app.blueprints.api import bp, present
from app.blueprints.api.contract import Op, operation
from app.blueprints.api.schemas.runs import (
    DOWNLOAD_KIND, HistoryOut, MetricsOut, NetworkListOut, RunIn, RunListOut, RunOut, RunQuery,
)
from app.blueprints.predict.services import require_ready
from app.blueprints.training import downloads, services
from app.blueprints.training.forms import default_name

TAG = "Training"
START_HELP = ("The same options as the Train form's Advanced fold, checked the same way (TrainOptions): a "
              "value out of range, or options that do not go together, answer 422 with the reason. The run "
              "trains on the dataset's labeled images as they are now.")
DELETE_HELP = ("The run is gone at once for everyone (a 404 everywhere, left out of every list, refused by "
               "/predict). For a short while (the server's DATASET_UNDO_SECONDS, 120 s by default) whoever could "
               "delete it can bring it back with POST /api/v1/runs/{run_id}/restore; then it is removed with "
               "its files for good.")
RESTORE_HELP = ("Undoes DELETE /api/v1/runs/{run_id} within its undo window, for whoever could delete the run "
                "(its creator, the dataset's editors and owner). After the window, or for anyone else: 404. "
                "The model counts against its creator's model quota again: 403 `quota_exceeded` when that is "
                "full (it stays deleted).")
FILES = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
         "application/json": {"schema": {"type": "object"}}}


@bp.get("/v1/networks")
@operation(Op("The networks you can train, installed or not", TAG, out=NetworkListOut))
def list_networks(user, data):
    from app.ml.networks import list_architectures

    return {"networks": list_architectures()}


@bp.get("/v1/runs")
@operation(Op("Training runs on the datasets you can see, newest first", TAG, query=RunQuery, out=RunListOut))
def list_runs(user, data):
    runs = services.list_runs(user, "date", data.get("dataset"))
    return {"runs": [present.run_summary(r) for r in runs if data.get("status") in (None, r.status)]}


@bp.post("/v1/datasets/<int:dataset_id>/runs")
@operation(Op("Start training a model on the dataset (viewers may)", TAG, body=RunIn, out=RunOut, status=201,
              errors=(422, 503), description=START_HELP))
def start_run(user, data, dataset_id: int):
    dataset = services.dataset_for_training(user, dataset_id)
    name = data.get("name") or default_name(dataset.name, data["mode"])
    architecture = data.get("architecture") or services.default_architecture(dataset.id)
    run = services.start_run(user, dataset.id, name, architecture, data["mode"], data["options"])
    return present.run_detail(run)


@bp.get("/v1/runs/<int:run_id>")
@operation(Op("A run: status, live progress, place in the queue, test accuracy", TAG, out=RunOut))
def get_run(user, data, run_id: int):
    return present.run_detail(services.view_run(user, run_id))


@bp.post("/v1/runs/<int:run_id>/cancel")
@operation(Op("Cancel a run: a queued one at once, a running one after its current step", TAG, out=RunOut,
              errors=(409,)))
def cancel_run(user, data, run_id: int):
    return present.run_detail(services.cancel_run(user, run_id))


@bp.post("/v1/runs/<int:run_id>/retry")
@operation(Op("Train a failed or cancelled run again, on the same images", TAG, out=RunOut, status=201,
              errors=(409, 422, 503)))
def retry_run(user, data, run_id: int):
    return present.run_detail(services.retry_run(user, run_id))


@bp.delete("/v1/runs/<int:run_id>")
@operation(Op("Delete a finished run and its files (can be undone for a short while)", TAG, status=204,
              errors=(409,), description=DELETE_HELP))
def delete_run(user, data, run_id: int):
    services.delete_run(user, run_id)


@bp.post("/v1/runs/<int:run_id>/restore")
@operation(Op("Bring back a run deleted moments ago", TAG, out=RunOut, description=RESTORE_HELP))
def restore_run(user, data, run_id: int):
    return present.run_detail(services.restore_run(user, run_id))


@bp.get("/v1/runs/<int:run_id>/metrics")
@operation(Op("Test results: accuracy, per class, confusion matrix, mistakes", TAG, out=MetricsOut,
              errors=(409,)))
def run_metrics(user, data, run_id: int):
    run = services.view_run(user, run_id)
    if run.status != "succeeded":
        require_ready(run)  # 409 not_ready, naming the run's state
    return present.metrics(run)


@bp.get("/v1/runs/<int:run_id>/history")
@operation(Op("Per-epoch curves (grow while the run trains)", TAG, out=HistoryOut))
def run_history(user, data, run_id: int):
    return {"history": services.view_run(user, run_id).history or []}


@bp.get("/v1/runs/<int:run_id>/files/<kind>")
@operation(Op("Download a trained model's file", TAG, files=FILES, path={"kind": DOWNLOAD_KIND}))
def download_file(user, data, run_id: int, kind: str):
    return downloads.response(user, run_id, kind)
