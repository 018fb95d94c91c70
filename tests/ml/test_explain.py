"""Occlusion sensitivity (app/ml/explain.py): the tiles that decide the answer light up, and only those."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from app.ml import explain
from tests.predict.conftest import CLASSES, trained_artifacts  # noqa: F401  (a real tiny model, trained once)

SIZE = 32
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
GREY = tuple(int(round(m * 255)) for m in MEAN)  # the normalisation mean as a colour: adds nothing


class QuadrantModel:
    """Predictor-like: class 0 looks only at the red of the top-left quadrant, class 1 only at the blue of
    the bottom-right one, class 2 at nothing (a constant logit)."""

    classes = ["top-left red", "bottom-right blue", "neither"]

    def __init__(self):
        self.calls: list[int] = []
        self._scale = (1.0 / (255.0 * np.asarray(STD))).reshape(1, 3, 1, 1).astype(np.float32)
        self._offset = (-np.asarray(MEAN) / np.asarray(STD)).reshape(1, 3, 1, 1).astype(np.float32)

    def normalize(self, crops):
        return (np.asarray(crops) * self._scale + self._offset).astype(np.float32)

    def probabilities(self, batch, max_batch: int = 32):
        self.calls.append(len(batch))
        half = SIZE // 2
        logits = np.stack([3 * batch[:, 0, :half, :half].mean(axis=(1, 2)),
                           3 * batch[:, 2, half:, half:].mean(axis=(1, 2)),
                           np.zeros(len(batch), dtype=np.float32)], axis=1)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)


def quadrant_crop(red_top_left: bool = True, blue_bottom_right: bool = False) -> np.ndarray:
    """uint8 [3,SIZE,SIZE]: mean grey, with a red top-left and/or a blue bottom-right quadrant."""
    pixels = np.empty((SIZE, SIZE, 3), dtype=np.uint8)
    pixels[:] = GREY
    half = SIZE // 2
    if red_top_left:
        pixels[:half, :half] = (250, 10, 10)
    if blue_bottom_right:
        pixels[half:, half:] = (10, 10, 250)
    return pixels.transpose(2, 0, 1).copy()


def top_tiles(grid: np.ndarray, n: int) -> list[tuple[int, int]]:
    order = np.argsort(-grid, axis=None, kind="stable")[:n]
    return [tuple(int(i) for i in np.unravel_index(k, grid.shape)) for k in order]


def test_only_the_region_the_class_looks_at_matters():
    result = explain.occlusion(QuadrantModel(), quadrant_crop(), tiles=8, patch=2)
    assert result.target == 0 and result.grid.shape == (8, 8)
    assert result.grid.max() == 1.0 and result.grid.min() == 0.0
    assert all(r < 4 and c < 4 for r, c in top_tiles(result.grid, 9))
    # tiles no occluding patch of the top-left quadrant ever covered: nothing at all
    assert not result.grid[5:, :].any() and not result.grid[:, 5:].any()
    assert result.probability == pytest.approx(QuadrantModel().probabilities(
        QuadrantModel().normalize(quadrant_crop()[None]))[0, 0])


def test_the_asked_class_is_explained_not_the_predicted_one():
    crop = quadrant_crop(red_top_left=True, blue_bottom_right=True)
    model = QuadrantModel()
    predicted = int(np.argmax(model.probabilities(model.normalize(crop[None]))[0]))
    assert explain.occlusion(model, crop).target == predicted
    red, blue = explain.occlusion(model, crop, target=0), explain.occlusion(model, crop, target=1)
    assert red.target == 0 and all(r < 4 and c < 4 for r, c in top_tiles(red.grid, 9))
    assert blue.target == 1 and all(r >= 4 and c >= 4 for r, c in top_tiles(blue.grid, 9))
    with pytest.raises(ValueError):
        explain.occlusion(model, crop, target=3)


def test_same_input_same_answer_and_the_cost_is_as_documented():
    model = QuadrantModel()
    first = explain.occlusion(model, quadrant_crop(), tiles=7, patch=2)
    assert first.forwards == explain.forwards_needed(7, 2) == 37
    assert sum(model.calls) == 37 and max(model.calls) <= explain.MAX_CHUNK
    second = explain.occlusion(model, quadrant_crop(), tiles=7, patch=2)
    assert np.array_equal(first.grid, second.grid) and np.array_equal(first.drops, second.drops)


def test_a_grid_that_does_not_fit_is_refused():
    with pytest.raises(ValueError):
        explain.occlusion(QuadrantModel(), quadrant_crop(), tiles=4, patch=5)


def test_nothing_mattered_gives_an_empty_map_not_a_division_by_zero():
    result = explain.occlusion(QuadrantModel(), quadrant_crop(red_top_left=False), target=2)
    assert not result.grid.any()


def test_the_real_predictor_on_an_exported_model_looks_at_the_colour(trained_artifacts):  # noqa: F811
    """The colour model trained by tests/predict (small_cnn, through ONNX Runtime as served): a red square
    in the top-left of a mean-grey picture; hiding the square is what lowers 'red'."""
    from app.ml.inference import Predictor

    predictor = Predictor.load(trained_artifacts, backend="onnx", device="cpu")
    img = Image.new("RGB", (64, 64), tuple(int(round(m * 255)) for m in predictor.mean))
    img.paste((220, 30, 30), (8, 8, 30, 30))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    crop = predictor.prepare(buf.getvalue())
    red = CLASSES.index("red")
    result = explain.occlusion(predictor, crop, target=red)
    assert result.target == red and result.grid.shape == (8, 8)
    assert all(r < 4 and c < 4 for r, c in top_tiles(result.grid, 4)), result.grid.round(2)
    assert result.grid[4:, 4:].max() < 0.2, result.grid.round(2)
    again = explain.occlusion(predictor, crop, target=red)
    assert np.array_equal(result.grid, again.grid)


def test_the_crop_box_is_the_centre_of_the_short_side():
    assert explain.crop_fractions(400, 400, 224) == pytest.approx(
        {"left": 0.0625, "top": 0.0625, "width": 0.875, "height": 0.875}, abs=0.005)
    wide = explain.crop_fractions(800, 400, 224)
    assert wide["height"] == pytest.approx(0.875, abs=0.005)
    assert wide["left"] == pytest.approx((1 - wide["width"]) / 2, abs=0.005)
