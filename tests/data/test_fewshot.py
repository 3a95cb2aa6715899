"""k-shot splits and the published SSDA splits."""

import numpy as np
import pytest
import torch
from PIL import Image

from adapt import InputError
from adapt.data import few_shot_split, published_ssda_split, task
from adapt.data.download import mark_complete
from adapt.data.fewshot import _image_paths


def test_k_shot_split_is_stratified_seeded_and_kept_out_of_what_is_scored():
    base = task("optdigits", "optdigits", "optdigits-m")
    split = few_shot_split(base, shots=3, seed=1)
    x, y = split.target_labeled.tensors
    assert np.bincount(y.numpy()).tolist() == [3] * 10
    assert len(split.target_test) == len(base.target_test) - 30 == len(split.target_train)
    moons = few_shot_split(task("moons", "source", "rotated"), shots=5, seed=1)  # no two inputs alike
    scored, labeled = moons.target_test.tensors[0], moons.target_labeled.tensors[0]
    assert not any((scored == row).all(dim=1).any() for row in labeled)  # no labeled example is scored
    assert len(scored) + len(labeled) == 300
    assert split.extra["target_labels"] == "3-shot (seed 1)"
    again, other = few_shot_split(base, 3, seed=1), few_shot_split(base, 3, seed=2)
    assert torch.equal(again.target_labeled.tensors[0], x) and not torch.equal(other.target_labeled.tensors[0], x)


@pytest.mark.bad_input
def test_all_labels_need_the_inductive_protocol_and_few_examples_get_an_error():
    with pytest.raises(InputError, match="nothing is left to score under the transductive protocol"):
        few_shot_split(task("moons", "source", "rotated"), "all")
    inductive = task("moons", "source", "rotated", protocol="inductive")
    split = few_shot_split(inductive, "all")
    assert len(split.target_labeled) == len(inductive.target_train) and split.target_test is inductive.target_test
    with pytest.raises(InputError, match="too few for 500 labeled per class"):
        few_shot_split(inductive, 500)
    with pytest.raises(ValueError, match="shots must be an integer >= 1"):
        few_shot_split(inductive, 0)


CLASSES = ("Alarm_Clock", "Backpack", "Bike")


@pytest.fixture
def officehome_root(tmp_path):
    rng = np.random.default_rng(0)
    for domain in ("Art", "Real_World"):
        for c in CLASSES:
            for k in range(4):
                path = tmp_path / "officehome" / domain / c / f"{k:05d}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(path, format="JPEG")
    mark_complete("officehome", tmp_path)
    return tmp_path


def test_published_ssda_split_reads_saito_files_in_their_format(officehome_root, tmp_path):
    splits = tmp_path / "ssda-splits"
    splits.mkdir()
    # the release's format: the domain folder named 'Real', '<path> <label>' per line
    lines = [f"Real/{c}/{k:05d}.jpg {i}" for i, c in enumerate(CLASSES) for k in (1,)]
    (splits / "labeled_target_images_Real_1.txt").write_text("\n".join(lines) + "\n")
    base = task("officehome", "Art", "Real_World", root=officehome_root)
    split = published_ssda_split(base, 1, splits)
    assert len(split.target_labeled) == 3 and [int(split.target_labeled[i][1]) for i in range(3)] == [0, 1, 2]
    scored = {p.split("/")[-2] + "/" + p.split("/")[-1] for p in _image_paths(split.target_test)}
    assert len(scored) == 9 and not any(f"{c}/00001.jpg" in scored for c in CLASSES)
    assert split.target_labeled[0][0].shape == base.target_train[0].shape  # the training transforms

    (splits / "labeled_target_images_Real_1.txt").write_text("Real/Bike/00099.jpg 2\n")
    with pytest.raises(InputError, match=r"labeled_target_images_Real_1.txt:1: Real/Bike/00099.jpg is not among"):
        published_ssda_split(base, 1, splits)
    (splits / "labeled_target_images_Real_1.txt").write_text("Real/Bike/00001.jpg\n")
    with pytest.raises(InputError, match="expected '<path> <label>'"):
        published_ssda_split(base, 1, splits)
    with pytest.raises(FileNotFoundError, match=r"labeled_target_images_Real_3.txt.*SSDA_MME"):
        published_ssda_split(base, 3, splits)
