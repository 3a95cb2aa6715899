"""custom_task's views of image folders: chosen, stated, taken from a backbone, and the size mismatch named."""

import numpy as np
import pytest
import torch
from PIL import Image

from adapt import data


def _folder(root, size, n=3):
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / cls / f"{i}.png")
    return root


def test_the_training_view_is_chosen_and_stated(tmp_path):
    src, tgt = _folder(tmp_path / "s", 40), _folder(tmp_path / "t", 40)
    task = data.custom_task(src, tgt, image_size=32, augment="none")
    assert "Random" not in task.extra["views"]["train"] and "CenterCrop" in task.extra["views"]["eval"]
    x1, x2 = task.source_train[0][0], task.source_train[0][0]
    assert torch.equal(x1, x2) and x1.shape == (3, 32, 32)  # no augmentation: the same tensor twice
    cropped = data.custom_task(src, tgt, image_size=32, augment="crop")
    assert "RandomResizedCrop" in cropped.extra["views"]["train"] and "Flip" not in cropped.extra["views"]["train"]
    default = data.custom_task(src, tgt, image_size=32)
    assert "RandomHorizontalFlip" in default.extra["views"]["train"]
    own = data.custom_task(src, tgt, image_size=32, augment=lambda img: torch.zeros(3, 32, 32))
    assert torch.equal(own.source_train[0][0], torch.zeros(3, 32, 32))
    with pytest.raises(ValueError, match="augment must be 'crop\\+flip', 'crop', 'none' or a transform"):
        data.custom_task(src, tgt, augment="rotate")


def test_small_images_are_upscaled_with_a_warning_naming_the_sizes(tmp_path):
    src, tgt = _folder(tmp_path / "s", 32), _folder(tmp_path / "t", 32)
    with pytest.warns(UserWarning, match="are 32x32 .* upscaled to 224x224; for small images pass image_size=32"):
        data.custom_task(src, tgt)


def test_a_backbone_with_views_gives_them(tmp_path):
    pytest.importorskip("timm")
    from adapt.models import TimmFeatures

    src, tgt = _folder(tmp_path / "s", 170), _folder(tmp_path / "t", 170)
    backbone = TimmFeatures("test_vit")
    task = data.custom_task(src, tgt, backbone=backbone, augment="none")
    evaluated = task.source_train_eval
    assert task.input_shape == (3, 160, 160) and evaluated[0][0].shape == (3, 160, 160)
    first = Image.open(evaluated.samples[0][0]).convert("RGB")
    torch.testing.assert_close(evaluated[0][0], backbone.eval_transform()(first))


def test_select_by_on_an_augmented_target_warns(tmp_path):
    from adapt import DANN
    from adapt.models import ConvNet

    src, tgt = _folder(tmp_path / "s", 20), _folder(tmp_path / "t", 20)
    task = data.custom_task(src, tgt, image_size=16)
    model = DANN(ConvNet(3), num_classes=2, discriminator_hidden=(8,))
    with pytest.warns(UserWarning, match="select_by='entropy' scores the target through its training view"):
        model.fit(task.source_train, task.target_train, steps=2, batch_size=4, select_by="entropy", verbose=False)
