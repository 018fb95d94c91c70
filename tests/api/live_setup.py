"""Seed a live test server's database (run as a script in the server's environment): a user with an API
token, and with --seed a dataset (2 classes, a few images) and a succeeded model made from the trained
files given, set as the user's default. Prints {"token", "dataset_id", "run_id"} as JSON."""
from __future__ import annotations

import argparse
import json


def seed(username: str, artifacts: str | None) -> dict:
    from app.blueprints.auth.services import register_user
    from app.blueprints.datasets.classes import add_class
    from app.blueprints.datasets.images.uploads import add_image_bytes
    from app.blueprints.datasets.services import create_dataset
    from app.blueprints.predict.tokens import create_token
    from app.extensions import db
    from app.models import TrainingRun
    from tests.conftest import image_bytes, store_run_files

    user = register_user(username, "correct horse battery")
    doc = {"token": create_token(user.id, "tests")[1]}
    if artifacts:
        dataset = create_dataset(user.id, "Seeded")
        for k, name in enumerate(("red", "blue")):
            add_class(dataset.id, name)
            for i in range(3):
                add_image_bytes(dataset.id, user.id, f"{name}{i}.png", image_bytes((200 * (1 - k), 40, 200 * k),
                                                                                   noise=10 * k + i + 1))
        run = TrainingRun(dataset_id=dataset.id, created_by_id=user.id, name="seeded", architecture="small_cnn",
                          mode="scratch", status="succeeded", classes=["red", "green", "blue"], options={},
                          metrics={"accuracy": 0.9, "confusion_matrix": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]})
        db.session.add(run)
        db.session.flush()
        store_run_files(run, artifacts)
        user.default_model_id = run.id
        db.session.commit()
        doc.update(dataset_id=dataset.id, run_id=run.id, **_more(dataset, user))
    return doc


def _more(dataset, owner) -> dict:
    """Ids of a class, an image, a share, an import and a webhook of the dataset, for the fuzzer's path
    parameters."""
    from app.blueprints.auth.services import register_user
    from app.blueprints.webhooks.services import create_webhook
    from app.blueprints.datasets.sharing import share_dataset
    from app.extensions import db
    from app.models import Image, Import

    register_user(owner.username + "-friend", "correct horse battery")
    share = share_dataset(dataset, owner.username + "-friend", "viewer")
    imp = Import(dataset_id=dataset.id, user_id=owner.id, kind="zip", source_name="day.zip", status="finished",
                 total=0, errors=[])
    db.session.add(imp)
    db.session.commit()
    image = db.session.query(Image).filter_by(dataset_id=dataset.id).first()
    webhook, _ = create_webhook(owner, "https://example.com/hook", ["run.finished"], dataset.id)
    return {"class_id": dataset.labels[0].id, "image_id": image.id, "share_id": share.id, "import_id": imp.id,
            "webhook_id": webhook.id}


def main() -> None:
    from app import create_app

    parser = argparse.ArgumentParser()
    parser.add_argument("username")
    parser.add_argument("--artifacts")
    args = parser.parse_args()
    with create_app().app_context():
        print(json.dumps(seed(args.username, args.artifacts)))


if __name__ == "__main__":
    main()
