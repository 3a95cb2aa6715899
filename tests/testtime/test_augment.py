"""The authors' test-time augmentation against a transcription of the reference benchmark's code."""

import PIL
import pytest
import torch
import torchvision.transforms as transforms
import torchvision.transforms.functional as F
from torchvision.transforms import ColorJitter

from adapt.errors import InputError
from adapt.testtime.augment import TestTimeAugmentation, authors_augmentation, resolve_augment


class GaussianNoise(torch.nn.Module):
    def __init__(self, mean=0.0, std=1.0):
        super().__init__()
        self.std = std
        self.mean = mean

    def forward(self, img):
        noise = torch.randn(img.size()) * self.std + self.mean
        noise = noise.to(img.device)
        return img + noise


class Clip(torch.nn.Module):
    def __init__(self, min_val=0.0, max_val=1.0):
        super().__init__()
        self.min_val = min_val
        self.max_val = max_val

    def forward(self, img):
        return torch.clip(img, self.min_val, self.max_val)


class ColorJitterPro(ColorJitter):
    def __init__(self, brightness=0, contrast=0, saturation=0, hue=0, gamma=0):
        super().__init__(brightness, contrast, saturation, hue)
        self.gamma = self._check_input(gamma, "gamma")

    def forward(self, img):
        fn_idx = torch.randperm(5)
        for fn_id in fn_idx:
            if fn_id == 0 and self.brightness is not None:
                brightness = self.brightness
                brightness_factor = torch.tensor(1.0).uniform_(brightness[0], brightness[1]).item()
                img = F.adjust_brightness(img, brightness_factor)
            if fn_id == 1 and self.contrast is not None:
                contrast = self.contrast
                contrast_factor = torch.tensor(1.0).uniform_(contrast[0], contrast[1]).item()
                img = F.adjust_contrast(img, contrast_factor)
            if fn_id == 2 and self.saturation is not None:
                saturation = self.saturation
                saturation_factor = torch.tensor(1.0).uniform_(saturation[0], saturation[1]).item()
                img = F.adjust_saturation(img, saturation_factor)
            if fn_id == 3 and self.hue is not None:
                hue = self.hue
                hue_factor = torch.tensor(1.0).uniform_(hue[0], hue[1]).item()
                img = F.adjust_hue(img, hue_factor)
            if fn_id == 4 and self.gamma is not None:
                gamma = self.gamma
                gamma_factor = torch.tensor(1.0).uniform_(gamma[0], gamma[1]).item()
                img = img.clamp(1e-8, 1.0)
                img = F.adjust_gamma(img, gamma_factor)
        return img


def get_tta_transforms(img_size, gaussian_std: float = 0.005, soft=False, padding_mode="edge", cotta_augs=True):
    """Transcription of mariodoebler/test-time-adaptation at 8b2ed63,
    ``classification/augmentations/transforms_cotta.py`` lines 11-166 (``get_params`` and the ``__repr__``
    methods left out: ``forward`` does not call them)."""
    n_pixels = img_size[0] if isinstance(img_size, (list, tuple)) else img_size
    tta_transforms = [
        Clip(0.0, 1.0),
        ColorJitterPro(
            brightness=[0.8, 1.2] if soft else [0.6, 1.4],
            contrast=[0.85, 1.15] if soft else [0.7, 1.3],
            saturation=[0.75, 1.25] if soft else [0.5, 1.5],
            hue=[-0.03, 0.03] if soft else [-0.06, 0.06],
            gamma=[0.85, 1.15] if soft else [0.7, 1.3],
        ),
        transforms.Pad(padding=int(n_pixels / 2), padding_mode=padding_mode),
        transforms.RandomAffine(
            degrees=[-8, 8] if soft else [-15, 15],
            translate=(1 / 16, 1 / 16),
            scale=(0.95, 1.05) if soft else (0.9, 1.1),
            shear=None,
            interpolation=PIL.Image.BILINEAR,
            fill=0,
        ),
    ]
    if cotta_augs:
        tta_transforms += [
            transforms.GaussianBlur(kernel_size=5, sigma=[0.001, 0.25] if soft else [0.001, 0.5]),
            transforms.CenterCrop(size=n_pixels),
            transforms.RandomHorizontalFlip(p=0.5),
            GaussianNoise(0, gaussian_std),
            Clip(0.0, 1.0),
        ]
    else:
        tta_transforms += [transforms.CenterCrop(size=n_pixels), transforms.RandomHorizontalFlip(p=0.5), Clip(0.0, 1.0)]
    return transforms.Compose(tta_transforms)


@pytest.mark.parametrize(
    "options",
    [{}, {"soft": True}, {"padding_mode": "reflect", "cotta_augs": False}],
    ids=["cotta-rotta", "soft", "roid"],
)
@pytest.mark.parametrize("channels", [1, 3])
def test_authors_augmentation_draws_what_theirs_draws(options, channels):
    images = torch.rand(6, channels, 16, 16, generator=torch.Generator().manual_seed(0))
    ours, theirs = authors_augmentation(16, **options), get_tta_transforms((16, 16), **options)
    for seed in range(5):
        torch.manual_seed(seed)
        expected = theirs(images)
        torch.manual_seed(seed)
        torch.testing.assert_close(ours(images), expected, rtol=0, atol=0)
    assert not torch.equal(ours(images), images)


def test_the_augmentation_undoes_and_redoes_the_imagenet_normalization():
    mean, std = (
        torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1),
        torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1),
    )
    images = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(3)
    expected = (authors_augmentation(16)(images) - mean) / std
    torch.manual_seed(3)
    torch.testing.assert_close(TestTimeAugmentation("imagenet")((images - mean) / std), expected)


def test_inputs_the_augmentation_cannot_take_are_named():
    with pytest.raises(InputError, match=r"image batches .*shape \(4, 8\)"):
        TestTimeAugmentation()(torch.rand(4, 8))
    with pytest.raises(InputError, match=r"in \[0, 1\].*input_scale"):
        TestTimeAugmentation()(torch.randn(4, 3, 8, 8) * 3)
    with pytest.raises(InputError, match="normalizes 3 channels, and the batch has 1"):
        TestTimeAugmentation("imagenet")(torch.rand(4, 1, 8, 8))
    with pytest.raises(ValueError, match="input_scale must be one of unit, symmetric"):
        TestTimeAugmentation("cifar")
    with pytest.raises(ValueError, match="std > 0"):
        TestTimeAugmentation(((0.5,), (0.0,)))


def test_a_symmetric_input_scale_is_mapped_to_unit_images_and_back():
    images = torch.rand(4, 1, 16, 16, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(5)
    expected = authors_augmentation(16)(images) * 2 - 1
    for scale in ("symmetric", ((0.5,), (0.5,))):
        torch.manual_seed(5)
        torch.testing.assert_close(TestTimeAugmentation(scale)(images * 2 - 1), expected)
    with pytest.raises(InputError, match=r"maps the inputs to \[-0.99"):
        TestTimeAugmentation()(images * 2 - 1)


def test_resolve_augment():
    assert resolve_augment(None) is None and resolve_augment("none") is None
    assert isinstance(resolve_augment("authors"), TestTimeAugmentation)
    assert resolve_augment(torch.flip) is torch.flip
    with pytest.raises(ValueError, match="augment must be"):
        resolve_augment("strong")
