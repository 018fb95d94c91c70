import numpy as np
import pytest

from app.ml import classification_report


def test_hand_computed_case():
    classes = ["cat", "dog", "fox"]
    y_true = [0, 0, 1, 1, 1, 2]
    y_pred = [0, 1, 1, 1, 0, 1]
    probs = np.array([[.9, .1, 0], [.3, .6, .1], [.2, .7, .1], [.1, .8, .1], [.55, .45, 0], [.1, .5, .4]])
    r = classification_report(y_true, y_pred, probs, classes, image_ids=[10, 11, 12, 13, 14, 15])
    assert r["accuracy"] == pytest.approx(3 / 6)
    assert r["confusion_matrix"] == [[1, 1, 0], [1, 2, 0], [0, 1, 0]]
    cat, dog, fox = r["per_class"]
    assert (cat["precision"], cat["recall"], cat["support"]) == (pytest.approx(0.5), pytest.approx(0.5), 2)
    assert dog["precision"] == pytest.approx(2 / 4) and dog["recall"] == pytest.approx(2 / 3)
    assert dog["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert (fox["precision"], fox["recall"], fox["f1"], fox["support"]) == (0.0, 0.0, 0.0, 1)
    assert [m["image_id"] for m in r["misclassified"]] == [11, 14, 15]  # most confident first
    assert r["misclassified"][0] == {"image_id": 11, "true": "cat", "predicted": "dog", "confidence": 0.6}
