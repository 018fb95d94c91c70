"""API: datasets, their sharing and their classes (the services of the dataset pages)."""
from app.access import get_dataset_for
from app.blueprints.api import bp, present
from app.blueprints.api.contract import Op, operation
from app.blueprints.api.schemas.common import CountOut
from app.blueprints.api.schemas.datasets import (
    ClassIn, ClassListOut, ClassOut, ClassPatchIn, DatasetDetailOut, DatasetIn, DatasetListOut, DatasetPatchIn,
    DeletedOut, MergeIn, MergeOut, OwnerIn, ShareIn, ShareListOut, ShareOut,
)
from app.blueprints.datasets import classes as class_service
from app.blueprints.datasets import deletion, ownership, services, sharing

TAG, CLASSES = "Datasets", "Classes"


@bp.get("/v1/datasets")
@operation(Op("List the datasets you own or that are shared with you", TAG, out=DatasetListOut))
def list_datasets(user, data):
    return present.dataset_list(user, services.list_datasets_for(user))


@bp.post("/v1/datasets")
@operation(Op("Create a dataset", TAG, body=DatasetIn, out=DatasetDetailOut, status=201, errors=(422,)))
def create_dataset(user, data):
    dataset = services.create_dataset(user.id, data["name"], data["description"])
    return present.dataset_detail(user, dataset)


@bp.get("/v1/datasets/<int:dataset_id>")
@operation(Op("A dataset: its classes, counts, warnings and imports", TAG, out=DatasetDetailOut))
def get_dataset(user, data, dataset_id: int):
    return present.dataset_detail(user, get_dataset_for(user, dataset_id))


@bp.patch("/v1/datasets/<int:dataset_id>")
@operation(Op("Rename or re-describe a dataset (owner)", TAG, body=DatasetPatchIn, out=DatasetDetailOut,
              errors=(422,)))
def update_dataset(user, data, dataset_id: int):
    dataset = get_dataset_for(user, dataset_id, "owner")
    services.update_dataset(dataset, data.get("name", dataset.name), data.get("description", dataset.description))
    return present.dataset_detail(user, dataset)


@bp.delete("/v1/datasets/<int:dataset_id>")
@operation(Op("Delete a dataset (owner): gone at once, its files are removed in the background", TAG,
              out=DeletedOut, status=202, errors=(409,)))
def delete_dataset(user, data, dataset_id: int):
    deletion.delete_dataset(get_dataset_for(user, dataset_id, "owner"))
    return {"id": dataset_id, "status": "deleting"}


@bp.get("/v1/datasets/<int:dataset_id>/shares")
@operation(Op("Who the dataset is shared with (owner)", TAG, out=ShareListOut))
def list_shares(user, data, dataset_id: int):
    return {"shares": sharing.list_shares(get_dataset_for(user, dataset_id, "owner").id)}


@bp.post("/v1/datasets/<int:dataset_id>/shares")
@operation(Op("Share with a user as viewer or editor; sharing again changes the role (owner)", TAG,
              body=ShareIn, out=ShareOut, errors=(422,)))
def share_dataset(user, data, dataset_id: int):
    return sharing.share_dataset(get_dataset_for(user, dataset_id, "owner"), data["username"], data["role"])


@bp.delete("/v1/datasets/<int:dataset_id>/shares/<int:share_id>")
@operation(Op("Stop sharing with one user (owner)", TAG, status=204))
def revoke_share(user, data, dataset_id: int, share_id: int):
    sharing.revoke_share(get_dataset_for(user, dataset_id, "owner").id, share_id)


@bp.post("/v1/datasets/<int:dataset_id>/owner")
@operation(Op("Hand the dataset over to another account (owner); you keep editing it", TAG, body=OwnerIn,
              out=DatasetDetailOut, errors=(403, 422)))
def give_dataset(user, data, dataset_id: int):
    dataset = get_dataset_for(user, dataset_id, "owner")
    ownership.give_dataset(dataset, data["username"])
    return present.dataset_detail(user, dataset)


@bp.get("/v1/datasets/<int:dataset_id>/classes")
@operation(Op("The classes, in order, with their image counts", CLASSES, out=ClassListOut))
def list_classes(user, data, dataset_id: int):
    counts, unlabeled = services.class_counts(get_dataset_for(user, dataset_id).id)
    return {"classes": present.classes(counts), "unlabeled": unlabeled}


@bp.post("/v1/datasets/<int:dataset_id>/classes")
@operation(Op("Add a class (editor)", CLASSES, body=ClassIn, out=ClassOut, status=201, errors=(409, 422)))
def add_class(user, data, dataset_id: int):
    label = class_service.add_class(get_dataset_for(user, dataset_id, "editor").id, data["name"], data.get("color"))
    return present.classes([{"label": label, "count": 0}])[0]


@bp.patch("/v1/datasets/<int:dataset_id>/classes/<int:class_id>")
@operation(Op("Rename, recolour or move a class (editor)", CLASSES, body=ClassPatchIn, out=ClassOut,
              errors=(409, 422)))
def update_class(user, data, dataset_id: int, class_id: int):
    dataset = get_dataset_for(user, dataset_id, "editor")
    label = class_service.get_label(dataset.id, class_id)
    if "move" in data:
        class_service.move_class(dataset.id, class_id, data["move"])
    label = class_service.update_class(dataset.id, class_id, data.get("name", label.name), data.get("color"))
    counts, _ = services.class_counts(dataset.id)
    return next(c for c in present.classes(counts) if c["id"] == label.id)


@bp.post("/v1/datasets/<int:dataset_id>/classes/<int:class_id>/merge")
@operation(Op("Merge a class into another: its images move there, then it is deleted (editor)", CLASSES,
              body=MergeIn, out=MergeOut, errors=(422,)))
def merge_class(user, data, dataset_id: int, class_id: int):
    dataset = get_dataset_for(user, dataset_id, "editor")
    merged = class_service.merge_class(dataset.id, class_id, data["into"])
    counts, _ = services.class_counts(dataset.id)
    return {"moved": merged.moved, "into": next(c for c in present.classes(counts) if c["id"] == data["into"])}


@bp.delete("/v1/datasets/<int:dataset_id>/classes/<int:class_id>")
@operation(Op("Delete a class; its images stay, unlabeled (editor)", CLASSES, out=CountOut))
def delete_class(user, data, dataset_id: int, class_id: int):
    count, _undo = class_service.delete_class(get_dataset_for(user, dataset_id, "editor").id, class_id)
    return {"count": count}
