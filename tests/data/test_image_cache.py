"""Decoded, cached images augmented on the device (adapt/data/cache.py) against the per-image path."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torchvision import transforms as T
from torchvision.transforms.v2 import functional as TF

from adapt import data
from adapt.data.cache import CachedImages, DeviceAugment, cache_images, crop_boxes, reference_transform
from adapt.data.download import mark_complete
from adapt.data.images import ImageList, scan_folder
from adapt.errors import InputError
from adapt.methods import DANN
from adapt.train.data import CachedBatches, as_domain

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def write_images(root, classes=("a", "b", "c"), per_class=4, seed=0):
    rng = np.random.default_rng(seed)
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            shape = (30 + 5 * k, 40, 3)  # odd sizes and aspect ratios
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(root / c / f"{k}.jpg")
    return ImageList(*scan_folder(root))


def test_eval_view_equals_the_per_image_pil_path(tmp_path):
    images = write_images(tmp_path)
    cached = cache_images(images, size=64, crop=48, progress=False).with_view("eval")
    reference = reference_transform("eval", 64, 48)
    for i in range(len(images)):
        x, y = cached[i]
        assert y == images.samples[i][1]
        torch.testing.assert_close(x, reference(images[i][0]), atol=1e-5, rtol=0)  # float rounding only


def test_train_crop_matches_torchvision_resized_crop_for_the_same_box(tmp_path):
    cached = cache_images(write_images(tmp_path), size=64, crop=48, progress=False)
    pixels = cached.images[:6]
    boxes = crop_boxes(6, 64, 64, torch.Generator().manual_seed(1))
    flips = torch.tensor([False, True] * 3)
    out = DeviceAugment(48).train_view(pixels, boxes=boxes, flips=flips)
    for k in range(6):
        top, left, h, w = boxes[k].tolist()
        ref = TF.resized_crop(pixels[k], top, left, h, w, [48, 48], antialias=True)  # transforms.v2, one image
        ref = TF.normalize(TF.to_dtype(ref.flip(-1) if flips[k] else ref, scale=True), MEAN, STD)
        torch.testing.assert_close(out[k], ref, atol=1e-5, rtol=0)


def test_train_view_is_close_to_the_pil_path_for_the_same_box(tmp_path):
    images = write_images(tmp_path)
    cached = cache_images(images, size=64, crop=48, progress=False)
    top, left, h, w = 5, 9, 40, 33
    ours = DeviceAugment(48).train_view(cached.images[:1], boxes=torch.tensor([[top, left, h, w]]),
                                        flips=torch.tensor([False]))[0]  # fmt: skip
    pil = T.Resize((64, 64))(images[0][0]).crop((left, top, left + w, top + h)).resize((48, 48), Image.BILINEAR)
    reference = T.Normalize(MEAN, STD)(T.ToTensor()(pil))
    assert (ours - reference).abs().mean() < 0.03  # tensor vs PIL bilinear: about one gray level


def test_crop_boxes_are_drawn_as_random_resized_crop_draws_them():
    n = 20000
    ours = crop_boxes(n, 64, 80, torch.Generator().manual_seed(0)).float()
    torch.manual_seed(0)
    theirs = torch.tensor([T.RandomResizedCrop.get_params(torch.empty(3, 64, 80), [0.08, 1.0], [3 / 4, 4 / 3])
                           for _ in range(n)]).float()  # fmt: skip
    assert ((ours[:, 0] >= 0) & (ours[:, 1] >= 0)).all()
    assert ((ours[:, 0] + ours[:, 2] <= 64) & (ours[:, 1] + ours[:, 3] <= 80)).all()
    for stat in (
        lambda b: b[:, 2] * b[:, 3] / (64 * 80),
        lambda b: b[:, 3] / b[:, 2],
        lambda b: b[:, 0],
        lambda b: b[:, 1],
    ):
        a, b = stat(ours), stat(theirs)
        assert abs(a.mean() - b.mean()) < 0.03 * b.mean() and abs(a.std() - b.std()) < 0.05 * b.std()


def test_crop_boxes_fall_back_to_the_center_when_nothing_fits():
    boxes = crop_boxes(5, 10, 40, torch.Generator().manual_seed(0), scale=(2.0, 2.0))  # no draw can fit
    expected = list(T.RandomResizedCrop.get_params(torch.empty(3, 10, 40), [2.0, 2.0], [3 / 4, 4 / 3]))
    assert boxes.tolist() == [expected] * 5 == [[0, 13, 10, 13]] * 5  # the widest 4/3 box, centered


def test_file_cache_is_reused_and_keyed_by_files_and_size(tmp_path, monkeypatch):
    images = write_images(tmp_path / "imgs")
    first = cache_images(images, size=32, crop=24, cache_dir=tmp_path / "cache", progress=False)
    files = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(files) == 1 and files[0].endswith(".npy")  # no partial file left behind

    def no_decoding(path):
        raise AssertionError(f"decoded {path} again")

    monkeypatch.setattr("adapt.data.images.load_image", no_decoding)
    again = cache_images(images, size=32, crop=24, cache_dir=tmp_path / "cache", progress=False)
    assert torch.equal(first.images, again.images)
    monkeypatch.undo()
    cache_images(images, size=40, crop=24, cache_dir=tmp_path / "cache", progress=False)  # another size
    path = images.samples[0][0]
    os.utime(path, ns=(0, 10**9))  # a changed file
    cache_images(images, size=32, crop=24, cache_dir=tmp_path / "cache", progress=False)
    assert len(list((tmp_path / "cache").iterdir())) == 3


@pytest.mark.bad_input
def test_bad_inputs_get_named_errors(tmp_path):
    images = write_images(tmp_path / "imgs")
    with pytest.raises(TypeError, match="needs an ImageList"):
        cache_images(torch.zeros(3, 3, 8, 8))
    with pytest.raises(ValueError, match=r"crop \(64\) must not exceed the cached size \(32\)"):
        cache_images(images, size=32, crop=64)
    missing = ImageList([(str(tmp_path / "gone.jpg"), 0)], ["a"])
    with pytest.raises(FileNotFoundError, match=r"gone\.jpg"):
        cache_images(missing, progress=False)
    with pytest.raises(ValueError, match="uint8"):
        CachedImages(torch.zeros(2, 3, 8, 8), None, ["a"])
    unlabeled = cache_images(images, size=32, crop=24, progress=False).unlabeled()
    with pytest.raises(InputError, match="carry no labels"):
        as_domain(unlabeled, "source", labeled=True, num_classes=3)
    with pytest.raises(InputError, match=r"labels must lie in \[0, 2\)"):
        as_domain(cache_images(images, size=32, crop=24, progress=False), "source", labeled=True, num_classes=2)


def test_stream_state_resumes_the_same_batches(tmp_path):
    cached = cache_images(write_images(tmp_path), size=32, crop=24, progress=False)
    domain = as_domain(cached, "source", labeled=True, num_classes=3)
    generator = torch.Generator().manual_seed(0)
    stream = CachedBatches(domain, 5, generator, torch.device("cpu"))
    next(stream)
    state, rng = stream.state_dict(), generator.get_state()
    expected = [next(stream) for _ in range(4)]  # crosses an epoch boundary (12 images, batches of 5)
    stream.load_state_dict(state)
    generator.set_state(rng)
    for (x, y, i), (x2, y2, i2) in zip(expected, (next(stream) for _ in range(4))):
        assert torch.equal(x, x2) and torch.equal(y, y2) and torch.equal(i, i2)
    assert expected[0][0].shape == (5, 3, 24, 24) and expected[0][0].dtype == torch.float32


@pytest.fixture
def office_root(tmp_path):
    from adapt.data.catalog.office31 import CLASSES

    for seed, domain in enumerate(("amazon", "webcam")):
        write_images(tmp_path / "office31" / domain / "images", CLASSES[:3], per_class=3, seed=seed)
    mark_complete("office31", tmp_path)
    return tmp_path


def small_cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 8, stride=8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


@pytest.mark.parametrize("cache", ["memory", "folder"])
def test_office_task_trains_from_cached_images(office_root, tmp_path, cache):
    option = "memory" if cache == "memory" else str(tmp_path / "cache")
    task = data.task("office31", "amazon", "webcam", root=office_root, image_cache=option)
    assert isinstance(task.source_train, CachedImages) and task.source_train.view == "train"
    assert isinstance(task.target_train, CachedImages) and task.target_train.targets is None  # no labels
    assert task.target_test.view == "eval" and len(task.target_test) == 9
    histories = []
    for _ in range(2):
        torch.manual_seed(0)
        model = DANN(small_cnn(), 31, discriminator_hidden=(8,))
        histories.append(model.fit(task.source_train, task.target_train, steps=3, batch_size=4, seed=0,
                                   verbose=False, log_every=1))  # fmt: skip
    assert np.isfinite(histories[0]["total"]).all()
    assert histories[0].drop(columns="seconds").equals(histories[1].drop(columns="seconds"))  # same seed, same run
    assert model.predict(task.target_test).shape == (9,)
    per_image = data.task("office31", "amazon", "webcam", root=office_root)
    assert len(per_image.target_test) == len(task.target_test)


def test_shards_of_a_cached_stream_are_the_one_process_batch(tmp_path):
    """Two ranks' views interleave back into the batch (and the crops) of one process."""
    from adapt.train.distributed import Shard

    cached = cache_images(write_images(tmp_path), size=32, crop=24, progress=False)
    domain = as_domain(cached, "source", labeled=True, num_classes=3)
    stream = lambda shard: CachedBatches(domain, 6, torch.Generator().manual_seed(3), torch.device("cpu"), shard)  # noqa: E731
    whole, ranks = stream(None), [stream(Shard(r, 2)) for r in range(2)]
    for _ in range(3):
        x, y, i = next(whole)
        parts = [next(r) for r in ranks]
        torch.testing.assert_close(x[0::2], parts[0][0]), torch.testing.assert_close(x[1::2], parts[1][0])
        assert torch.equal(y[1::2], parts[1][1]) and torch.equal(i[0::2], parts[0][2])


@pytest.mark.gpu
def test_cached_batches_on_cuda_equal_the_cpu_batches(tmp_path):
    cached = cache_images(write_images(tmp_path), size=32, crop=24, progress=False)
    domain = as_domain(cached, "source", labeled=True, num_classes=3)
    cpu, cuda = (CachedBatches(domain, 5, torch.Generator().manual_seed(0), torch.device(d)) for d in ("cpu", "cuda"))
    for _ in range(3):
        (x, y, _), (xc, yc, _) = next(cpu), next(cuda)
        assert xc.device.type == "cuda" and torch.equal(y, yc.cpu())
        torch.testing.assert_close(x, xc.cpu(), atol=2 / 255 / 0.225, rtol=0)  # kernels may round differently
