import numpy as np
import pytest
import torch

from app.ml import check_trainable, stratified_split
from app.ml.data import Augmenter


def _labels():
    return [0] * 20 + [1] * 10 + [2] * 2 + [3] * 1


def test_split_is_stratified_disjoint_and_complete():
    labels = _labels()
    s = stratified_split(labels, 0.2, 0.2, seed=1)
    everything = s["train"] + s["val"] + s["test"]
    assert sorted(everything) == list(range(len(labels)))
    count = lambda part, c: sum(labels[i] == c for i in s[part])  # noqa: E731
    assert (count("train", 0), count("val", 0), count("test", 0)) == (12, 4, 4)
    assert (count("train", 1), count("val", 1), count("test", 1)) == (6, 2, 2)
    assert (count("train", 2), count("val", 2), count("test", 2)) == (1, 1, 0)  # 2 images: train + val
    assert (count("train", 3), count("val", 3), count("test", 3)) == (1, 0, 0)  # 1 image: train


def test_split_is_seeded():
    labels = _labels()
    assert stratified_split(labels, 0.2, 0.2, seed=3) == stratified_split(labels, 0.2, 0.2, seed=3)
    assert stratified_split(labels, 0.2, 0.2, seed=3) != stratified_split(labels, 0.2, 0.2, seed=4)


def test_three_images_fill_every_part():
    s = stratified_split([0, 0, 0, 1, 1, 1], 0.1, 0.1, seed=0)
    assert all(len(s[p]) == 2 for p in ("train", "val", "test"))


def test_check_trainable_messages():
    assert check_trainable({"a": 10, "b": 10}) == []
    problems = check_trainable({"a": 10, "b": 2, "c": 0})
    assert len(problems) == 1 and "'b' has only 2 images" in problems[0]
    assert "two classes" in check_trainable({"a": 5, "b": 0})[0]


def test_training_gaps_are_the_one_rule_and_follow_the_shares():
    from app.ml.trainable import min_images_per_class, training_gaps

    assert min_images_per_class() == 3 and min_images_per_class(0.2, 0) == 2 and min_images_per_class(0, 0) == 1
    assert [g.kind for g in training_gaps({"a": 1})] == ["classes", "few"]
    assert [g.kind for g in training_gaps({"a": 4, "b": 0})] == ["labeled"]
    assert training_gaps({"a": 2, "b": 2}, 0.2, 0) == []
    assert training_gaps({"a": 2, "b": 5})[0].few == (("a", 2),)


def test_augmenter_is_deterministic_and_sized():
    image = torch.randint(0, 255, (3, 50, 70), dtype=torch.uint8)
    a = [Augmenter(32, seed=5)(image) for _ in range(1)] + [Augmenter(32, seed=5)(image)]
    assert torch.equal(a[0], a[1]) and a[0].shape == (3, 32, 32) and a[0].dtype == torch.uint8
    plain = Augmenter(32, seed=5, random_resized_crop=False, hflip=False)(image)
    assert plain.shape == (3, 32, 32)


def test_decoded_image_cache_keeps_images_up_to_its_limit(toy_set):
    from app.ml.data import DecodedImageCache

    samples, _ = toy_set
    paths = [s.path for s in samples[:4]]
    one = DecodedImageCache(paths, 32).get(0)
    size = one.numel() * one.element_size()
    cache = DecodedImageCache(paths, 32, max_bytes=2 * size)
    assert list(cache.decode_all(range(4))) == [0, 1, 2, 3]
    assert [i in cache for i in range(4)] == [True, True, False, False] and cache.bytes == 2 * size
    first, again = cache.get(3), cache.get(3)
    assert torch.equal(first, again) and first is not again and 3 not in cache  # decoded again, same pixels


@pytest.mark.parametrize("size", [(97, 61), (61, 97), (300, 200), (40, 40)])
def test_eval_crop_is_the_model_card_recipe(size):
    """One resize of the crop's box == torchvision Resize(size/0.875) + CenterCrop on the whole image."""
    from PIL import Image
    from torchvision.transforms import v2

    from app.ml.data import eval_crop_pil, eval_resize_size, pil_to_uint8

    rng = np.random.default_rng(sum(size))
    y, x = np.mgrid[0:size[1], 0:size[0]]
    smooth = np.stack([x * 255 // size[0], y * 255 // size[1], (x * y) % 256], -1)
    pixels = np.clip(smooth + rng.integers(-20, 21, smooth.shape), 0, 255).astype(np.uint8)
    img = Image.fromarray(pixels)
    card = v2.Compose([v2.Resize(eval_resize_size(32), antialias=True), v2.CenterCrop(32)])
    ours = eval_crop_pil(img, 32)
    assert ours.shape == (3, 32, 32) and ours.dtype == torch.uint8
    assert (ours.int() - card(pil_to_uint8(img)).int()).abs().max() <= 1


@pytest.mark.parametrize("hflip", [True, False])
def test_random_crops_off_trains_on_the_evaluation_crop(toy_set, hflip):
    """'Random crops' off: six passes over each image give its evaluation crop every time (mirrored
    at random only when 'Mirror' is on), read through the cache and augmenter training uses."""
    from app.ml.data import Augmenter, load_eval_crop, training_image_cache

    samples, _ = toy_set
    paths = [s.path for s in samples[:3]]  # 40x32 JPEG and PNG files
    cache = training_image_cache(paths, 32, random_resized_crop=False)
    augment = Augmenter(32, seed=1, random_resized_crop=False, hflip=hflip)
    flips = 0
    for index, path in enumerate(paths):
        crop = load_eval_crop(path, 32)
        for _ in range(6):
            view = augment(cache.get(index))
            flipped = torch.equal(view, crop.flip(-1)) and not torch.equal(view, crop)
            assert torch.equal(view, crop) or (hflip and flipped)
            flips += flipped
    assert (flips > 0) == hflip
    on = training_image_cache(paths, 32, random_resized_crop=True)
    views = {tuple(Augmenter(32, seed=s)(on.get(0)).flatten()[:64].tolist()) for s in range(6)}
    assert len(views) > 1  # with random crops on the views do differ


def _big_jpeg() -> bytes:
    import io

    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(3).integers(0, 256, (600, 800, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=95)
    assert out.tell() > 4 * 64 * 1024  # several of Pillow's default read blocks
    return out.getvalue()


def test_a_photo_reaches_the_decoder_in_one_piece():
    """Pillow feeds its decoder 64 KiB blocks and takes the GIL back between them, which other busy
    threads turn into long waits; decode_in_one_call hands over the whole file, same pixels."""
    import numpy as np
    from PIL import Image

    from app.ml.data import decode_in_one_call
    from app.ml.inference import decode_image

    blob = _big_jpeg()
    from tests.conftest import CountedReads

    default, whole = CountedReads(blob), CountedReads(blob)
    with Image.open(default) as plain:
        default.reads = 0  # count the decoding, not the header
        plain.load()
        expected = np.asarray(plain.convert("RGB"))
    with Image.open(whole) as img:
        decode_in_one_call(img, len(blob))
        whole.reads = 0
        img.load()
        assert np.array_equal(np.asarray(img.convert("RGB")), expected)
    assert default.reads > 4 and whole.reads <= 2
    assert np.array_equal(np.asarray(decode_image(blob)), expected)
