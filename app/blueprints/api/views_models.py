"""API: trained models and who uses which by default (the services of the 'Try it' page), and the caller."""
from app.blueprints.api import bp, present
from app.blueprints.api.contract import Op, operation
from app.blueprints.api.schemas.runs import DefaultModelIn, MeOut, ModelListOut, ModelOut, ModelPatchIn
from app.blueprints.predict import services as predict_services
from app.blueprints.training import services as training_services

TAG = "Models"


@bp.get("/v1/models")
@operation(Op("Trained models on the datasets you can see, newest first", TAG, out=ModelListOut))
def list_models(user, data):
    site_default = predict_services.instance_default_id()
    runs = [r for r in training_services.list_runs(user) if r.status == "succeeded"]
    return {"models": [present.model(r, user, site_default) for r in runs]}


@bp.patch("/v1/models/<int:run_id>")
@operation(Op("Make a model public or private (editors), your default, or the site's default (admins)", TAG,
              body=ModelPatchIn, out=ModelOut, errors=(409, 422)))
def update_model(user, data, run_id: int):
    run = predict_services.get_usable_run(user, run_id)
    if "public" in data:
        run = predict_services.set_public(user, run_id, data["public"])
    if "default" in data and (data["default"] or user.default_model_id == run_id):  # false: only ours
        predict_services.set_user_default(user, run_id if data["default"] else None)
    if "site_default" in data and (data["site_default"] or predict_services.instance_default_id() == run_id
                                   or not user.is_admin):
        predict_services.set_instance_default(user, run_id if data["site_default"] else None)
    return present.model(run, user, predict_services.instance_default_id())


@bp.get("/v1/me")
@operation(Op("Who the token belongs to, and your default model", TAG, out=MeOut))
def get_me(user, data):
    return present.me(user)


@bp.put("/v1/me/default-model")
@operation(Op("The model POST /predict uses when you name none (null: none)", TAG, body=DefaultModelIn,
              out=MeOut, errors=(409,)))
def set_default_model(user, data):
    predict_services.set_user_default(user, data["model_id"])
    return present.me(user)
