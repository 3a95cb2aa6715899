"""CIFAR-10-C and ImageNet-C loaders on small files in the released formats: the clean CIFAR-10 source in
torchvision's pickled batches, the corruption arrays in severity blocks, the ImageNet-C folders, the
verified download through a mirror, and errors that name the file and the layout."""

import hashlib
import pickle
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from adapt import data
from adapt.data import DatasetNotFoundError
from adapt.data.catalog.cifar10_c import MEAN, STD
from adapt.data.download import mark_complete

PER_SEVERITY = 4


def write_cifar10(root, n=6):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": [i % 10 for i in range(n)]}
        (folder / name).write_bytes(pickle.dumps(batch))


def write_cifar10_c(folder, corruptions=("gaussian_noise", "fog")):
    folder.mkdir(parents=True)
    for c in corruptions:
        # every image of severity s is filled with the value 10 * s + (its index within the block)
        values = np.concatenate([10 * s + np.arange(PER_SEVERITY) for s in range(1, 6)]).astype(np.uint8)
        np.save(folder / f"{c}.npy", np.broadcast_to(values[:, None, None, None], (5 * PER_SEVERITY, 32, 32, 3)).copy())
    np.save(folder / "labels.npy", np.tile(np.arange(PER_SEVERITY) % 10, 5).astype(np.uint8))


@pytest.fixture
def cifar_root(tmp_path):
    write_cifar10(tmp_path)
    write_cifar10_c(tmp_path / "CIFAR-10-C")
    mark_complete("cifar10-c", tmp_path)  # arranged by hand, complete
    return tmp_path


def test_cifar10_c_reads_the_clean_source_and_one_severity_block(cifar_root):
    task = data.task("cifar10-c", "clean", "fog-3", root=cifar_root)
    assert task.num_classes == 10 and task.input_shape == (3, 32, 32)
    assert len(task.source_train) == 30 and len(task.target_test) == PER_SEVERITY
    x, y = task.target_test[:]
    raw = x * torch.tensor(STD)[:, None, None] + torch.tensor(MEAN)[:, None, None]  # back to [0, 1]
    expected = (30 + torch.arange(PER_SEVERITY)).float() / 255  # severity 3's block
    torch.testing.assert_close(raw[:, :, 0, 0], expected[:, None].expand(-1, 3), rtol=0, atol=1e-5)
    assert y.tolist() == list(range(PER_SEVERITY))
    batch = pickle.loads((cifar_root / "cifar-10-batches-py" / "data_batch_1").read_bytes())
    first = task.source_train[0][0] * torch.tensor(STD)[:, None, None] + torch.tensor(MEAN)[:, None, None]
    # torchvision's layout: 1024 red values, then green, then blue, row-major
    torch.testing.assert_close(first[0].flatten() * 255, torch.tensor(batch[b"data"][0][:1024]).float(), atol=1e-3,
                               rtol=0)  # fmt: skip
    reverse = data.task("cifar10-c", "fog-5", "clean", root=cifar_root)
    assert len(reverse.target_test) == 6  # clean as a target: the test batch


@pytest.mark.bad_input
def test_cifar10_c_errors_name_the_file_and_the_layout(tmp_path, cifar_root):
    with pytest.raises(DatasetNotFoundError, match=r"missing .*data_batch_1(.|\n)*Expected layout(.|\n)*CIFAR-10-C"):
        data.task("cifar10-c", "clean", "fog-5", root=tmp_path / "empty")
    with pytest.raises(DatasetNotFoundError, match=r"missing .*snow.npy"):
        data.task("cifar10-c", "clean", "snow-5", root=cifar_root)
    np.save(cifar_root / "CIFAR-10-C" / "fog.npy", np.zeros((10, 32, 32), np.uint8))
    with pytest.raises(ValueError, match=r"fog.npy: expected \(N, 32, 32, 3\) uint8"):
        data.task("cifar10-c", "clean", "fog-5", root=cifar_root)
    with pytest.raises(ValueError, match="unknown"):
        data.task("cifar10-c", "clean", "fog-6", root=cifar_root)
    (cifar_root / "cifar-10-batches-py" / "data_batch_2").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="data_batch_2 is not a CIFAR-10 batch"):
        data.task("cifar10-c", "clean", "gaussian_noise-5", root=cifar_root)


def test_cifar10_c_downloads_through_a_mirror_with_its_checksum(tmp_path, monkeypatch):
    from adapt.data import sources

    staged = tmp_path / "staged"
    write_cifar10_c(staged / "CIFAR-10-C")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    archive = mirror / "CIFAR-10-C.tar"
    with tarfile.open(archive, "w") as t:
        t.add(staged / "CIFAR-10-C", arcname="CIFAR-10-C")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    assert sources.SOURCES["cifar10-c"].md5 == "56bf5dcef84df0e2308c6dcbcbbd8499"  # as Zenodo lists it
    monkeypatch.setitem(sources.SOURCES, "cifar10-c", sources.Source("https://dead.link/x", "CIFAR-10-C.tar", md5,
                                                                    "CIFAR-10-C"))  # fmt: skip
    root = tmp_path / "data"
    write_cifar10(root)  # torchvision fetches CIFAR-10 itself; here it is already there
    monkeypatch.setenv("ADAPT_DATA_MIRROR", mirror.as_uri())
    monkeypatch.setenv("ADAPT_ALLOW_FILE_MIRROR", "1")
    with pytest.raises(DatasetNotFoundError, match="download=True"):
        data.task("cifar10-c", "clean", "gaussian_noise-5", root=root)
    task = data.task("cifar10-c", "clean", "gaussian_noise-5", root=root, download=True)
    assert len(task.target_test) == PER_SEVERITY and not (root / "CIFAR-10-C.tar").exists()
    monkeypatch.setitem(sources.SOURCES, "cifar10-c", sources.Source("https://dead.link/x", "CIFAR-10-C.tar",
                                                                    "0" * 32, "CIFAR-10-C"))  # fmt: skip
    (root / "CIFAR-10-C").rename(root / "moved")
    with pytest.raises(Exception, match=r"(?i)checksum|md5"):
        data.task("cifar10-c", "clean", "gaussian_noise-5", root=root, download=True)
    assert not (root / "CIFAR-10-C" / "gaussian_noise.npy").exists()  # nothing unverified lands


def test_a_cifar10_c_sequence_target_streams_the_corruptions_in_turn(tmp_path):
    from adapt.data.corruptions import CORRUPTIONS

    write_cifar10(tmp_path)
    write_cifar10_c(tmp_path / "CIFAR-10-C", corruptions=CORRUPTIONS)
    mark_complete("cifar10-c", tmp_path)
    task = data.task("cifar10-c", "clean", "all-5", root=tmp_path)
    domains = task.extra["target_domains"]
    assert domains.names == [f"{c}-5" for c in CORRUPTIONS] and len(task.target_test) == 15 * PER_SEVERITY
    assert domains.ids.tolist() == [i for i in range(15) for _ in range(PER_SEVERITY)]
    single = data.task("cifar10-c", "clean", "fog-5", root=tmp_path).target_test[:]
    fog = list(CORRUPTIONS).index("fog")
    stretch = [task.target_test[j] for j in range(fog * PER_SEVERITY, (fog + 1) * PER_SEVERITY)]
    torch.testing.assert_close(torch.stack([x for x, _ in stretch]), single[0])  # standardized as the single domain
    assert [int(y) for _, y in stretch] == single[1].tolist()
    assert len(task.target_train) == len(task.target_test)  # the inputs stream, without their labels
    batch = next(iter(torch.utils.data.DataLoader(task.target_test, batch_size=5)))
    assert batch[0].shape == (5, 3, 32, 32) and batch[1].dtype == torch.int64
    repeated = data.task("cifar10-c", "clean", "all-5x10", root=tmp_path)
    assert len(repeated.target_test) == 150 * PER_SEVERITY and len(repeated.target_test.images) == 15  # stored once
    with pytest.raises(ValueError, match="a sequence of corruptions: a target, not a source"):
        data.task("cifar10-c", "all-5", "fog-5", root=tmp_path)


def test_imagenet_c_reads_the_release_folders_without_resizing(tmp_path):
    rng = np.random.default_rng(0)
    wnids = ["n01440764", "n01443537"]
    for split, size in (("imagenet/train", (40, 50)), ("ImageNet-C/gaussian_noise/5", (224, 224))):
        for wnid in wnids:
            for k in range(2):
                path = tmp_path / split / wnid / f"{k}.JPEG"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path, format="JPEG")
    task = data.task("imagenet-c", "clean", "gaussian_noise-5", root=tmp_path)
    assert task.classes == wnids and len(task.target_test) == 4
    image, label = task.target_test[3]
    assert image.shape == (3, 224, 224) and label == 1
    assert task.source_train[0][0].shape == (3, 224, 224)  # the ImageNet training crop
    with pytest.raises(DatasetNotFoundError, match=r"Expected layout(.|\n)*ImageNet-C/<corruption>/<severity>"):
        data.task("imagenet-c", "clean", "fog-5", root=tmp_path)


def test_an_imagenet_c_sequence_target_streams_the_corruptions_in_turn(tmp_path):
    from adapt.data.corruptions import CORRUPTIONS

    rng = np.random.default_rng(1)
    wnids = ["n01440764", "n01443537"]
    folders = ["imagenet/train", *(f"ImageNet-C/{c}/5" for c in CORRUPTIONS)]
    for folder in folders:
        for wnid in wnids:
            path = tmp_path / folder / wnid / "0.JPEG"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(path, format="JPEG")
    task = data.task("imagenet-c", "clean", "all-5", root=tmp_path)
    domains = task.extra["target_domains"]
    assert domains.names == [f"{c}-5" for c in CORRUPTIONS] and len(task.target_test) == 30
    assert domains.ids.tolist() == [i for i in range(15) for _ in wnids]  # each corruption's images, in turn
    paths = [path for path, _ in task.target_test.samples]
    assert all(f"/{list(CORRUPTIONS)[i]}/5/" in path for i, path in zip(domains.ids, paths))
    with pytest.raises(ValueError, match="a sequence of corruptions: a target, not a source"):
        data.task("imagenet-c", "all-5", "fog-5", root=tmp_path)
