"""Dataset loaders on tiny files in the real formats, downloads, protocols and the offline suite."""

import bz2
import gzip
import hashlib
import struct
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import TensorDataset

from adapt import InputError, SourceOnly, data
from adapt.data import DatasetNotFoundError, DownloadError, custom_task, moons_shift
from adapt.data.digits import load_digits_domain, read_idx
from adapt.data.download import download_verified, fetch, mark_complete
from adapt.models import MLP


# ------------------------------------------------------------------ fixtures in the real formats
def write_idx(path, array):
    codes = {np.uint8: 0x08}
    header = bytes([0, 0, codes[array.dtype.type], array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


@pytest.fixture
def digits_root(tmp_path):
    rng = np.random.default_rng(0)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", 20), ("t10k", 10)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))
    for name, n in (("usps.bz2", 20), ("usps.t.bz2", 10)):
        lines = []
        for i in range(n):
            values = rng.uniform(-1, 1, 256)
            lines.append(f"{i % 10 + 1} " + " ".join(f"{j + 1}:{v:.6f}" for j, v in enumerate(values)))
        with bz2.open(tmp_path / name, "wt") as f:
            f.write("\n".join(lines) + "\n")
    from scipy.io import savemat

    for name, n in (("train_32x32.mat", 20), ("test_32x32.mat", 10)):
        labels = (np.arange(n) % 10).reshape(-1, 1)
        labels[labels == 0] = 10  # SVHN stores digit 0 as 10
        savemat(tmp_path / name, {"X": rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8), "y": labels})
    mnistm = tmp_path / "mnist_m"
    for split, n in (("train", 20), ("test", 10)):
        (mnistm / f"mnist_m_{split}").mkdir(parents=True)
        lines = []
        for i in range(n):
            name = f"{i:08d}.png"
            Image.fromarray(rng.integers(0, 256, (28, 28, 3), dtype=np.uint8)).save(mnistm / f"mnist_m_{split}" / name)
            lines.append(f"{name} {i % 10}")
        (mnistm / f"mnist_m_{split}_labels.txt").write_text("\n".join(lines) + "\n")
    mark_complete("mnistm", tmp_path)
    return tmp_path


def write_image(path, rng, fmt):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)).save(path, format=fmt)


@pytest.fixture
def office_root(tmp_path):
    from adapt.data.catalog.office31 import CLASSES as OFFICE31_CLASSES

    rng = np.random.default_rng(0)
    for domain in ("amazon", "webcam"):
        for c in OFFICE31_CLASSES[:3]:
            for k in range(2):
                ext, fmt = ("jpg", "JPEG") if k == 0 else ("png", "PNG")
                write_image(tmp_path / "office31" / domain / "images" / c / f"frame_{k}.{ext}", rng, fmt)
    mark_complete("office31", tmp_path)  # arranged by hand, complete
    return tmp_path


# ------------------------------------------------------------------ digits
@pytest.mark.bad_input
def test_idx_reader_rejects_bad_magic(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad")


@pytest.mark.parametrize("domain", ["mnist", "usps", "svhn", "mnistm"])
@pytest.mark.parametrize("protocol, shape", [("lenet", (1, 28, 28)), ("dtn", (3, 32, 32))])
def test_digit_domains_load_from_real_formats(digits_root, domain, protocol, shape):
    ds = load_digits_domain(domain, digits_root, train=True, protocol=protocol)
    x, y = ds.tensors
    assert x.shape == (20, *shape) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    assert y.tolist() == [i % 10 for i in range(20)]  # SVHN's label 10 became 0


def test_digits_task_uses_official_test_split(digits_root):
    task = data.task("digits", "mnist", "usps", root=digits_root)
    assert task.protocol == "inductive" and task.input_shape == (1, 28, 28)
    assert len(task.source_train) == 20 and len(task.target_train) == 20 and len(task.target_test) == 10
    assert len(task.target_train.tensors) == 1  # inputs only
    assert data.task("digits", "svhn", "mnist", root=digits_root).input_shape == (3, 32, 32)


@pytest.mark.bad_input
def test_missing_digits_name_layout_and_download_option(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"(?s)mnist not found.*MNIST/raw.*download=True"):
        data.task("digits", "mnist", "usps", root=tmp_path)


# ------------------------------------------------------------------ image folders and lists
def test_office31_folder_layout_transductive(office_root):
    task = data.task("office31", "amazon", "webcam", root=office_root)
    assert task.protocol == "transductive" and task.num_classes == 31
    assert len(task.source_train) == 6 and len(task.target_train) == len(task.target_test) == 6
    x = task.target_train[0]
    assert isinstance(x, torch.Tensor) and x.shape == (3, 224, 224)  # unlabeled view: no label
    x, y = task.target_test[0]
    assert x.shape == (3, 224, 224) and 0 <= y < 3


@pytest.mark.bad_input
def test_missing_image_root_names_layout(tmp_path):
    with pytest.raises(
        DatasetNotFoundError, match=r"(?s)office31 domain 'amazon' not found.*images/<class>.*download=True"
    ):
        data.task("office31", "amazon", "webcam", root=tmp_path)


@pytest.mark.bad_input
def test_corrupt_image_error_names_the_file(office_root):
    bad = office_root / "office31" / "webcam" / "images" / "bike" / "frame_9.jpg"
    bad.write_bytes(b"not a jpeg")
    task = data.task("office31", "amazon", "webcam", root=office_root)
    paths = [p for p, _ in task.target_test.samples]
    with pytest.raises(ValueError, match=r"cannot read image .*frame_9\.jpg"):
        task.target_test[paths.index(str(bad))]


def test_visda_and_domainnet_image_lists(tmp_path):
    rng = np.random.default_rng(0)
    for split in ("train", "validation"):
        base = tmp_path / "visda2017" / split
        lines = []
        for label, c in enumerate(["aeroplane", "bicycle"]):
            write_image(base / c / "a.jpg", rng, "JPEG")
            lines.append(f"{c}/a.jpg {label}")
        (base / "image_list.txt").write_text("\n".join(lines))
    task = data.task("visda2017", "train", "validation", root=tmp_path)
    assert task.num_classes == 12 and len(task.target_test) == 2

    base = tmp_path / "domainnet"
    for domain in ("clipart", "real"):
        for split, n in (("train", 3), ("test", 2)):
            lines = []
            for i in range(n):
                rel = f"{domain}/cls{i % 2}/{split}{i}.png"
                write_image(base / rel, rng, "PNG")
                lines.append(f"{rel} {i % 2}")
            (base / f"{domain}_{split}.txt").write_text("\n".join(lines))
            (base / f"{domain}126_{split}.txt").write_text("\n".join(lines))
    mark_complete("domainnet126", tmp_path)  # arranged by hand; DomainNet-126 has a verified download
    for name in ("domainnet", "domainnet126"):
        task = data.task(name, "clipart", "real", root=tmp_path)
        assert task.protocol == "inductive"
        assert len(task.source_train) == 3 and len(task.target_train) == 3 and len(task.target_test) == 2
        assert task.classes[:2] == ["cls0", "cls1"]


@pytest.mark.bad_input
def test_bad_list_line_is_named(tmp_path):
    base = tmp_path / "visda2017" / "train"
    base.mkdir(parents=True)
    (base / "image_list.txt").write_text("a.jpg notalabel\n")
    (tmp_path / "visda2017" / "validation").mkdir()
    with pytest.raises(ValueError, match=r"image_list.txt:1: expected '<path> <integer label>'"):
        data.task("visda2017", "train", "validation", root=tmp_path)


# ------------------------------------------------------------------ downloads
@pytest.mark.bad_input
def test_checksum_mismatch_leaves_no_file(tmp_path):
    payload = tmp_path / "remote.bin"
    payload.write_bytes(b"hello")
    dest = tmp_path / "out" / "file.bin"
    with pytest.raises(
        DownloadError, match=r"(?s)checksum mismatch for file://.*expected md5 0{32}, got .*layout here"
    ):
        download_verified(payload.as_uri(), dest, md5="0" * 32, layout="layout here")
    assert not dest.exists() and list(dest.parent.iterdir()) == []
    good = download_verified(payload.as_uri(), dest, md5=hashlib.md5(b"hello").hexdigest())
    assert good.read_bytes() == b"hello"


def test_failed_download_names_url(tmp_path):
    with pytest.raises(DownloadError, match=r"download of file://.*missing.tar failed"):
        download_verified((tmp_path / "missing.tar").as_uri(), tmp_path / "x.tar", md5="0" * 32)
    assert not (tmp_path / "x.tar").exists()


def test_fetch_from_mirror_unpacks_and_verifies(tmp_path, office_root, monkeypatch):
    from adapt.data import sources

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    archive = mirror / "office31.tar.gz"
    with tarfile.open(archive, "w:gz") as t:
        t.add(office_root / "office31", arcname="office31")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    monkeypatch.setitem(
        sources.SOURCES, "office31", sources.Source("https://dead.link/x", "office31.tar.gz", md5, "office31")
    )
    root = tmp_path / "data"
    monkeypatch.setenv("ADAPT_DATA_MIRROR", mirror.as_uri())
    monkeypatch.setenv("ADAPT_ALLOW_FILE_MIRROR", "1")
    task = data.task("office31", "amazon", "webcam", root=root, download=True)
    assert len(task.source_train) == 6 and not (root / "office31.tar.gz").exists()


def test_sources_without_checksum_are_not_downloaded(tmp_path):
    with pytest.raises(DownloadError, match="no checksum is recorded for visda2017-train"):
        fetch("visda2017-train", tmp_path, "layout")


# ------------------------------------------------------------------ protocols and custom data
def test_inductive_split_is_stratified_disjoint_and_unlabeled():
    task = data.task("optdigits", "optdigits", "optdigits-m", protocol="inductive", seed=3, test_fraction=0.3)
    train_x = task.target_train.tensors[0]
    test_x, test_y = task.target_test.tensors
    assert len(task.target_train.tensors) == 1
    assert len(train_x) + len(test_x) == 898
    joined = torch.cat([train_x.flatten(1), test_x.flatten(1)])
    assert torch.unique(joined, dim=0).shape[0] == len(joined)  # disjoint
    counts = np.bincount(test_y.numpy(), minlength=10)
    assert counts.min() >= 25 and counts.max() <= 29  # 30 % of ~90 per class


def test_custom_task_from_folders_arrays_and_datasets(tmp_path):
    rng = np.random.default_rng(0)
    for domain in ("day", "night"):
        for c in ("cat", "dog"):
            for k in range(3):
                write_image(tmp_path / domain / c / f"{k}.jpg", rng, "JPEG")
    task = data.custom_task(tmp_path / "day", tmp_path / "night", image_size=32)
    assert task.classes == ["cat", "dog"] and task.input_shape == (3, 32, 32)
    assert task.target_train[0].shape == (3, 32, 32)
    xs, ys = np.random.rand(10, 4).astype(np.float32), np.arange(10) % 2
    task = data.custom_task((xs, ys), (xs + 1, ys), protocol="inductive", test_fraction=0.4)
    assert task.input_shape == (4,) and len(task.target_test) == 4
    task = data.custom_task(
        TensorDataset(torch.randn(8, 3), torch.arange(8) % 2), TensorDataset(torch.randn(6, 3), torch.arange(6) % 2)
    )
    assert task.num_classes == 2
    with pytest.raises(DatasetNotFoundError, match=r"source folder .*nowhere does not exist"):
        data.custom_task(tmp_path / "nowhere", tmp_path / "night")


@pytest.mark.bad_input
def test_task_errors_list_valid_names():
    with pytest.raises(ValueError, match="unknown benchmark 'office32'; available: blobs-conditional"):
        data.task("office32", "a", "b")
    with pytest.raises(ValueError, match="unknown office31 source domain 'amazn'; choose one of amazon, dslr, webcam"):
        data.task("office31", "amazn", "webcam", root=".")
    with pytest.raises(ValueError, match="same domain"):
        data.task("rotated-optdigits", "0", "0")


# ------------------------------------------------------------------ offline suite
OFFLINE = [
    ("moons", "source", "rotated"),
    ("blobs-covariate", "source", "target"),
    ("blobs-label", "source", "target"),
    ("blobs-conditional", "source", "target"),
    ("blobs-subspace", "source", "target"),
    ("optdigits", "optdigits", "optdigits-m"),
    ("rotated-optdigits", "0", "45"),
]


@pytest.mark.parametrize("benchmark, source, target", OFFLINE)
def test_offline_tasks_are_deterministic_per_seed(benchmark, source, target):
    a, b, c = (data.task(benchmark, source, target, seed=s) for s in (0, 0, 1))
    for x, y in zip(a.source_train.tensors, b.source_train.tensors):
        assert torch.equal(x, y)
    assert torch.equal(a.target_test.tensors[0], b.target_test.tensors[0])
    assert not torch.equal(a.target_test.tensors[0], c.target_test.tensors[0])
    assert tuple(a.source_train.tensors[0].shape[1:]) == a.input_shape


def test_offline_class_balance():
    t = data.task("moons", "source", "rotated")
    assert np.bincount(t.source_train.tensors[1].numpy()).tolist() == [150, 150]
    assert np.bincount(t.target_test.tensors[1].numpy()).tolist() == [150, 150]
    t = data.task("blobs-label", "source", "target")
    assert np.bincount(t.source_train.tensors[1].numpy()).tolist() == [100, 100, 100]
    target_counts = np.bincount(t.target_test.tensors[1].numpy())
    assert target_counts[0] > 3 * target_counts[1] > 9 * target_counts[2] / 1.5  # falling target prior
    t = data.task("rotated-optdigits", "0", "45")
    counts = np.bincount(t.source_train.tensors[1].numpy())
    assert counts.max() - counts.min() <= 2


@pytest.mark.slow
@pytest.mark.parametrize("benchmark, source, target", [o for o in OFFLINE if o[0] != "blobs-label"])
def test_offline_shift_is_real(benchmark, source, target):
    task = data.task(benchmark, source, target, source_holdout=0.3)
    model = SourceOnly(MLP(int(np.prod(task.input_shape)), (64,)), task.num_classes)
    model.fit(task.source_train, task.target_train, steps=300, lr=0.05, verbose=False, device="cpu")
    source_acc = model.score(*task.source_val.tensors)
    target_acc = model.score(*task.target_test.tensors)
    assert target_acc < source_acc - 0.02, (source_acc, target_acc)


def test_show_writes_pngs(tmp_path, office_root):
    for task in (
        data.task("optdigits", "optdigits", "optdigits-m"),
        data.task("moons", "source", "rotated"),
        data.task("office31", "amazon", "webcam", root=office_root),
    ):
        path = data.show(task, tmp_path / f"{task.benchmark}.png", per_domain=4)
        assert Image.open(path).size[0] > 200


def test_make_mnistm_from_mnist_and_photos(digits_root, tmp_path):
    from adapt.data.digits import make_mnistm, read_mnist

    photos = tmp_path / "photos"
    photos.mkdir()
    color = np.array([200, 100, 0], dtype=np.uint8)
    Image.fromarray(np.broadcast_to(color, (40, 40, 3)).copy()).save(photos / "solid.png")  # one flat photo
    out = make_mnistm(digits_root, photos, tmp_path / "built", seed=0)
    ds = load_digits_domain("mnistm", tmp_path / "built", train=True, protocol="dtn")
    mnist_digits, mnist_labels = read_mnist(digits_root, train=True)
    assert ds.tensors[0].shape == (20, 3, 32, 32) and ds.tensors[1].tolist() == mnist_labels.tolist()
    # with a flat photo every patch is that colour, so each pixel must be |colour - digit| per channel
    first = np.asarray(Image.open(out / "mnist_m_train" / "00000000.png")).astype(int)
    expected = np.abs(color.astype(int)[None, None, :] - mnist_digits[0].astype(int)[:, :, None])
    assert np.abs(first - expected).max() <= 1
    with pytest.raises(FileExistsError, match="already exists"):
        make_mnistm(digits_root, photos, tmp_path / "built")
    with pytest.raises(DatasetNotFoundError, match="no photos found"):
        make_mnistm(digits_root, tmp_path / "empty", tmp_path / "other")


@pytest.mark.parametrize("target", ["array", "tensor", "pair_with_none", "dataset_of_inputs"])
def test_custom_task_accepts_an_unlabeled_target(target):
    xs, ys, xt, _ = moons_shift()
    given = {
        "array": xt,
        "tensor": torch.as_tensor(xt),
        "pair_with_none": (xt, None),
        "dataset_of_inputs": [torch.as_tensor(x, dtype=torch.float32) for x in xt],
    }[target]
    if target == "dataset_of_inputs":
        rows = given

        class Inputs(torch.utils.data.Dataset):
            def __len__(self):
                return len(rows)

            def __getitem__(self, i):
                return rows[i]  # x alone, no label

        given = Inputs()
    task = custom_task((xs, ys), given)
    assert task.target_test is None and len(task.target_train) == len(xt) and task.classes == ["0", "1"]
    assert "unlabeled" in repr(task)
    model = SourceOnly(MLP(2, (8,)), 2)
    model.fit(task.source_train, task.target_train, steps=5, verbose=False)
    assert model.predict(task.target_train).shape == (len(xt),)


@pytest.mark.bad_input
def test_custom_task_names_what_is_wrong():
    xs, ys, xt, _ = moons_shift()
    with pytest.raises(InputError, match="source must be labeled"):
        custom_task(xs, xt)
    with pytest.raises(InputError, match=r"target: pass a class-folder path.*inputs x alone.*got dict"):
        custom_task((xs, ys), {"x": xt})
    with pytest.raises(InputError, match=r"source labels must be 300 integers.*shape \(5,\)"):
        custom_task((xs, ys[:5]), xt)
    with pytest.raises(ValueError, match="unlabeled target supports only the transductive protocol"):
        custom_task((xs, ys), xt, protocol="inductive")


def test_show_draws_an_unlabeled_target(tmp_path):
    pytest.importorskip("seaborn")
    from adapt.data import show

    xs, ys, xt, _ = moons_shift()
    assert show(custom_task((xs, ys), xt), tmp_path / "moons.png").stat().st_size > 0
