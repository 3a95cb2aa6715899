"""timm backbones by name: a CNN and a ViT adapted end to end, weights read only from local files, their data
configuration reaching the views, layer-wise learning-rate decay, and every method's contract on a ViT.
timm's test models (``test_vit``, ``test_resnet``: a few hundred thousand parameters) stand in for real ones,
randomly initialized."""

from __future__ import annotations

import pytest
import torch
from torch import nn

pytest.importorskip("timm")  # the dev extra installs it: CI runs these

import timm
from safetensors.torch import save_file

from adapt import DANN, methods
from adapt.errors import InputError
from adapt.models import TimmFeatures, cached_timm_weights
from adapt.testing import CONTRACT_CHECKS
from adapt.testtime import TEST_TIME_METHODS, create


def colour_images(n: int, seed: int, shift: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Three classes told apart by which colour channel is bright (the target: darker and noisier)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = 0.3 * torch.randn(n, 3, 32, 32, generator=g) * (1 + shift)
    x[torch.arange(n), y] += 1.0 - shift
    return x, y


@pytest.mark.parametrize("name", ["test_resnet", "test_vit"])
def test_dann_adapts_with_a_timm_cnn_and_vit_and_saves(name, tmp_path):
    options = {"img_size": 32} if "vit" in name else {}
    torch.manual_seed(0)
    model = DANN(TimmFeatures(name, **options), num_classes=3, discriminator_hidden=(32,))
    (xs, ys), (xt, yt) = colour_images(96, 0), colour_images(96, 1, shift=0.3)
    history = model.fit((xs, ys), xt, steps=40, batch_size=32, lr=0.01, seed=0, verbose=False)
    assert history.drop(columns="seconds").notna().all().all()
    accuracy = float((model.predict(xt) == yt).float().mean())
    majority = float(torch.bincount(yt).max()) / len(yt)
    assert accuracy > majority + 0.3, (accuracy, majority)
    model.save(tmp_path / "m.pt")
    loaded = DANN.load(tmp_path / "m.pt")  # the timm backbone rebuilds from the file alone
    assert isinstance(loaded.backbone, TimmFeatures) and loaded.backbone.name == name
    torch.testing.assert_close(loaded.predict_logits(xt), model.predict_logits(xt))


def _hf_cache(root, repo: str, state: dict[str, torch.Tensor]) -> None:
    """A Hugging Face hub cache holding ``repo``'s model.safetensors, in the layout huggingface_hub writes."""
    folder = root / f"models--{repo.replace('/', '--')}"
    snapshot = folder / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text("0" * 40)
    save_file({k: v.contiguous() for k, v in state.items()}, snapshot / "model.safetensors")


def test_pretrained_weights_come_from_the_local_cache_or_an_error_naming_the_fix(tmp_path, monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch"))
    with pytest.raises(InputError, match=r"not on this machine: .*timm/test_vit.r160_in1k.*create_model\('test_vit'"):
        TimmFeatures("test_vit", pretrained=True)
    torch.manual_seed(5)
    published = timm.create_model("test_vit")
    _hf_cache(tmp_path / "hub", "timm/test_vit.r160_in1k", published.state_dict())
    assert cached_timm_weights("test_vit").name == "model.safetensors"
    features = TimmFeatures("test_vit", pretrained=True, inputs="model")
    weight, bias = features.pretrained_head
    torch.testing.assert_close(weight, published.head.weight)
    torch.testing.assert_close(bias, published.head.bias)
    x = torch.randn(2, 3, 160, 160)
    published.eval(), features.eval()
    torch.testing.assert_close(features(x) @ weight.T + bias, published(x))
    own = tmp_path / "mine.safetensors"  # a weights file of one's own
    save_file({k: v.contiguous() for k, v in published.state_dict().items()}, own)
    torch.testing.assert_close(TimmFeatures("test_vit", checkpoint=str(own), inputs="model").eval()(x), features(x))
    assert TimmFeatures("test_vit").pretrained_head is None  # random weights: no pretrained classifier


def test_the_models_data_config_reaches_the_views():
    """The views are the model's (input size, crop, interpolation), normalized as ``inputs`` says the images
    arrive; the backbone maps them exactly to the model's own normalization, so either way it sees the same."""
    from PIL import Image

    native = TimmFeatures("test_vit", inputs="model").eval()
    assert native.data_config["input_size"] == (3, 160, 160) and native.data_config["mean"] == (0.5, 0.5, 0.5)
    image = Image.new("RGB", (300, 200), (255, 0, 0))
    x = native.eval_transform()(image)
    assert x.shape == (3, 160, 160)
    torch.testing.assert_close(x[:, 80, 80], torch.tensor([1.0, -1.0, -1.0]))  # timm's mean and std
    imagenet = TimmFeatures("test_vit").eval()  # the default: images standardized as adapt's datasets do
    imagenet.load_state_dict(native.state_dict())
    x_imagenet = imagenet.eval_transform()(image)
    torch.testing.assert_close(x_imagenet[:, 80, 80], (torch.tensor([1.0, 0, 0]) - torch.tensor([0.485, 0.456, 0.406]))
                               / torch.tensor([0.229, 0.224, 0.225]))  # fmt: skip
    with torch.no_grad():
        torch.testing.assert_close(imagenet(x_imagenet[None]), native(x[None]), rtol=1e-4, atol=1e-4)
    assert imagenet.train_transform("crop+flip")(image).shape == (3, 160, 160)
    assert imagenet.train_transform("none")(image).shape == (3, 160, 160)
    with pytest.raises(ValueError, match="augment must be 'none', 'crop' or 'crop\\+flip'"):
        imagenet.train_transform("rotate")


def test_layer_decay_gives_each_depth_its_learning_rate():
    model = DANN(TimmFeatures("test_vit", img_size=32, layer_decay=0.5), num_classes=3, discriminator_hidden=(16,))
    model.build(torch.zeros(2, 3, 32, 32))
    groups = model.param_groups(backbone_lr_mult=0.1)
    multipliers = [g["lr_mult"] for g in groups]
    depth = len(model.backbone.net.blocks)
    # the heads' parameters at 1; the backbone's from its last block down, halving per level (timm's grouping:
    # the embeddings below the first block), all times 0.1
    levels = sorted(multipliers[:-1], reverse=True)
    assert multipliers[-1] == 1.0 and len(levels) >= depth
    assert levels == pytest.approx([0.1 * 0.5**k for k in range(len(levels))])
    counted = sum(len(g["params"]) for g in groups)
    assert counted == len([p for p in model.parameters() if p.requires_grad])
    flat = DANN(TimmFeatures("test_vit", img_size=32), num_classes=3)
    flat.build(torch.zeros(2, 3, 32, 32))
    assert [g["lr_mult"] for g in flat.param_groups(0.1)] == [0.1, 1.0]
    with pytest.raises(ValueError, match=r"layer_decay must be in \(0, 1\]"):
        TimmFeatures("test_vit", layer_decay=1.5)


def _vit() -> nn.Module:
    return TimmFeatures("test_vit", img_size=16, in_chans=1, patch_size=8)


@pytest.mark.parametrize("name", methods.available())
def test_every_method_runs_on_a_vit(name, monkeypatch):
    """Each method's contract (one step changes its parameters, gradients reach its modules, fit, predict,
    save and load) on a timm ViT, whose normalization is LayerNorm only."""
    import adapt.testing as testing

    original = testing.toy_problem

    def as_images(*args, **kwargs):
        data = original(*args, **kwargs)
        pixels = {}
        for key in ("xs", "xt", "xt_other"):
            features = data[key]  # (n, 6) -> (n, 1, 16, 16): feature j fills one 4x4 square
            image = torch.zeros(features.shape[0], 1, 16, 16)
            for j in range(features.shape[1]):
                row, col = divmod(j, 4)
                image[:, 0, 4 * row : 4 * row + 4, 4 * col : 4 * col + 4] = features[:, j, None, None]
            pixels[key] = image
        return {**data, **pixels}

    monkeypatch.setattr(testing, "toy_problem", as_images)
    hparams = {**({"discriminator_hidden": (16,)} if "discriminator_hidden" in methods.hyperparameters(name) else {}),
               **methods.get(name).contract_hparams}  # fmt: skip
    if name == "adabn" and "bottleneck_dim" not in hparams:
        hparams["bottleneck_dim"] = 8
    for check in CONTRACT_CHECKS:
        check(name, _vit, hparams)


def test_adabn_on_a_vit_adapts_only_a_bottleneck_batch_norm():
    with pytest.raises(InputError, match="no BatchNorm layer"):
        methods.create("adabn", _vit(), 3).build(torch.zeros(2, 1, 16, 16))


@pytest.mark.parametrize("name", sorted(TEST_TIME_METHODS.names()))
def test_test_time_methods_on_a_timm_vit(name):
    """Every method but BN adaptation adapts the ViT's LayerNorms (LAME: its outputs only); BN adaptation, which
    re-estimates batch statistics that LayerNorm does not have, refuses it, saying so."""
    torch.manual_seed(0)
    net = nn.Sequential(TimmFeatures("test_vit", img_size=32), nn.Linear(64, 3)).eval()
    with torch.no_grad():
        net[1].weight.mul_(20)  # confident enough for the entropy filters to keep samples
    x = torch.sigmoid(4 * torch.randn(64, 3, 32, 32))  # images in [0, 1], as the authors' augmentation takes
    if name == "bn_adapt":
        with pytest.raises(InputError, match="adapts BatchNorm layers, and the model has none"):
            create(name, net)
        return
    settings = {"sar": {"lr": 0.05, "reset_threshold": 0.0}, "rotta": {"update_frequency": 32},
                "cotta": {"augmentations": 2}}.get(name, {})  # fmt: skip
    adapter = create(name, net, **settings)
    for _ in range(2):
        assert adapter.predict(x).shape == (64,)
    norms = [m.weight for m in adapter.model.modules() if isinstance(m, nn.LayerNorm)]
    originals = [m.weight for m in net.modules() if isinstance(m, nn.LayerNorm)]
    changed = any(not torch.equal(a, b) for a, b in zip(norms, originals, strict=True))
    assert changed == (name != "lame"), name
    if name in ("tent", "eata"):  # no BatchNorm: eval mode, as the reference benchmark's Tent (no dropout)
        assert not adapter.model.training
