"""CLIP through open_clip on a tiny, randomly initialized configuration: the zero-shot head is CLIP's own
zero-shot classifier, the image tower adapts and saves like any backbone, weights come only from local files,
and CLIP zero-shot is the source model of a test-time suite."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("open_clip")  # the dev extra installs it: CI runs these

import open_clip
from helpers import cli
from safetensors.torch import save_file

from adapt import DANN
from adapt.errors import InputError
from adapt.models import ClipFeatures, cached_clip_weights

TINY = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 16, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture
def tiny_config(tmp_path):
    path = tmp_path / "tiny-clip.json"  # open_clip names a configuration by its file's stem
    path.write_text(json.dumps(TINY))
    return str(path)


def test_the_zero_shot_head_is_clips_zero_shot_classifier(tiny_config):
    torch.manual_seed(0)
    features = ClipFeatures("tiny-clip", config=tiny_config, inputs="model", templates=["a photo of a {}.", "a {}."])
    model = features._text_model[0]
    tokenizer = open_clip.get_tokenizer("tiny-clip")
    classes = ["back_pack", "bike"]
    weight, bias = features.zero_shot_head(classes)
    with torch.no_grad():  # Radford et al. 2021, Sec. 3.1.4: normalize each prompt, average, normalize again
        rows = []
        for name in ("back pack", "bike"):
            text = F.normalize(model.encode_text(tokenizer([f"a photo of a {name}.", f"a {name}."])), dim=-1)
            rows.append(F.normalize(text.mean(0), dim=-1))
        expected = model.logit_scale.exp() * torch.stack(rows)
        torch.testing.assert_close(weight, expected)
        assert torch.equal(bias, torch.zeros(2))
        x = torch.rand(4, 3, 16, 16)
        image = F.normalize(model.encode_image(x), dim=-1)
        torch.testing.assert_close(
            features.eval()(x) @ weight.T + bias, model.logit_scale.exp() * image @ torch.stack(rows).T
        )
    assert len(ClipFeatures("tiny-clip", config=tiny_config).prompt_templates()) == 80  # the CLIP paper's ensemble


def test_clip_inputs_arrive_as_adapts_datasets_give_them(tiny_config):
    torch.manual_seed(0)
    native = ClipFeatures("tiny-clip", config=tiny_config, inputs="model").eval()
    imagenet = ClipFeatures("tiny-clip", config=tiny_config).eval()
    imagenet.load_state_dict(native.state_dict())
    pixels = torch.rand(3, 3, 16, 16)
    clip_mean, clip_std = (torch.tensor(v).view(1, 3, 1, 1) for v in (native.input_stats[0], native.input_stats[1]))
    in_mean, in_std = (torch.tensor(v).view(1, 3, 1, 1) for v in ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)))
    with torch.no_grad():
        out = imagenet((pixels - in_mean) / in_std)
        torch.testing.assert_close(out, native((pixels - clip_mean) / clip_std), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(3))  # normalized embeddings


def test_dann_adapts_clips_image_tower_and_saves(tiny_config, tmp_path):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    y = torch.arange(64) % 2
    x = 0.2 * torch.randn(64, 3, 16, 16, generator=g) + y.view(-1, 1, 1, 1).float()
    model = DANN(ClipFeatures("tiny-clip", config=tiny_config), num_classes=2, discriminator_hidden=(16,))
    model.fit((x, y), x + 0.1, steps=60, batch_size=32, lr=0.1, seed=0, verbose=False)
    assert float((model.predict(x) == y).float().mean()) > 0.8
    model.save(tmp_path / "m.pt")
    loaded = DANN.load(tmp_path / "m.pt")
    assert isinstance(loaded.backbone, ClipFeatures)
    torch.testing.assert_close(loaded.predict_logits(x), model.predict_logits(x))


@pytest.mark.bad_input
def test_clip_weights_come_from_the_local_cache_or_an_error_naming_the_fix(tiny_config, tmp_path, monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(
        InputError, match=r"not on this machine: .*timm/vit_base_patch32_clip_224.openai.*pretrained='openai'"
    ):
        cached_clip_weights("ViT-B-32", "openai")
    with pytest.raises(InputError, match="no pretrained weights 'nope' for 'ViT-B-32'; its tags: openai"):
        cached_clip_weights("ViT-B-32", "nope")
    ClipFeatures("tiny-clip", config=tiny_config)  # registers the tiny configuration
    monkeypatch.setattr(open_clip.pretrained, "get_pretrained_cfg", lambda name, tag: {"hf_hub": "me/tiny-clip/"})
    torch.manual_seed(4)
    published = open_clip.create_model("tiny-clip")
    snapshot = tmp_path / "hub" / "models--me--tiny-clip" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    save_file({k: v.contiguous() for k, v in published.state_dict().items()}, snapshot / "open_clip_model.safetensors")
    features = ClipFeatures("tiny-clip", pretrained="mine", inputs="model").eval()
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(features(x), F.normalize(published.encode_image(x), dim=-1))
    with pytest.raises(ValueError, match="open_clip has no model 'ViT-Q-99'"):
        ClipFeatures("ViT-Q-99")


def _save_tiny_clip(tiny_config, path):
    """The tiny open_clip model's weights at ``path``, standing in for pretrained CLIP weights."""
    ClipFeatures("tiny-clip", config=tiny_config)  # registers the tiny configuration
    torch.manual_seed(0)
    published = open_clip.create_model("tiny-clip")
    with torch.no_grad():  # embeddings that depend on the image (a random tower's barely do), so predictions vary
        published.visual.class_embedding.zero_()
        published.visual.positional_embedding.zero_()
    torch.save(published.state_dict(), path)


def _zero_shot_predictions(tiny_config, path):
    """CLIP's zero-shot predictions (computed here, not by the harness) on optdigits-m's test set, and its labels."""
    from adapt import data

    task = data.task("optdigits", "optdigits", "optdigits-m")
    x, y = task.target_test[:]
    features = ClipFeatures("tiny-clip", config=tiny_config, checkpoint=str(path),
                            templates=["a photo of the number {}."]).eval()  # fmt: skip
    weight, bias = features.zero_shot_head(task.classes)
    with torch.no_grad():
        return (features(x) @ weight.T + bias).argmax(1), y


def _clip_task(tiny_config, checkpoint):
    """A suite's tiny-CLIP backbone table and its one task (optdigits -> optdigits-m), as TOML."""
    return f"""[backbones.clip]
kind = "clip"
name = "tiny-clip"
config = "{tiny_config}"
checkpoint = "{checkpoint}"
templates = ["a photo of the number {{}}."]
[[tasks]]
benchmark = "optdigits"
source = "optdigits"
target = "optdigits-m"
backbone = "clip"
"""


def _run_suite(tmp_path, text):
    """The suite ``text`` through the real entry point into ``tmp_path / "results"``: its records by method."""
    suite, out = tmp_path / "suite.toml", tmp_path / "results"
    suite.write_text(text)
    result = cli("run", "--suite", suite, "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    return {r["config"]["method"]: r for r in (json.loads(p.read_text()) for p in (out / "runs").glob("*.json"))}


def test_clip_zero_shot_is_the_source_of_a_test_time_suite(tiny_config, tmp_path):
    """``[source] pretrained = true`` with a CLIP backbone: nothing trains, SourceOnly's online accuracy is CLIP's
    zero-shot accuracy on the task's class names, and TENT adapts CLIP's LayerNorms from there."""
    _save_tiny_clip(tiny_config, tmp_path / "clip.pt")
    runs = _run_suite(
        tmp_path,
        f"""
name = "clip-zero-shot"
protocol = "online"
seeds = 1
[source]
pretrained = true
[train]
batch_size = 64
{_clip_task(tiny_config, tmp_path / "clip.pt")}[methods.source_only]
[methods.tent]
""",
    )
    assert {r["status"] for r in runs.values()} == {"ok"} and runs["source_only"]["config"]["source_train"][
        "pretrained"
    ]
    predicted, y = _zero_shot_predictions(tiny_config, tmp_path / "clip.pt")
    assert (torch.bincount(predicted, minlength=10) > 0).sum() >= 5  # a check that can tell heads apart
    expected = float((predicted == y).float().mean())
    assert runs["source_only"]["accuracy"] == pytest.approx(expected)


def test_clip_zero_shot_is_a_row_of_a_uda_suite(tiny_config, tmp_path):
    """``[methods.zero_shot]`` in a UDA suite: nothing trains, the row's accuracy is CLIP's zero-shot accuracy on
    the task's class names, its one checkpoint (step 0) is scored by the suite's validators, and it stands in the
    report beside SourceOnly (a linear head trained on the source)."""
    _save_tiny_clip(tiny_config, tmp_path / "clip.pt")
    runs = _run_suite(
        tmp_path,
        f"""
name = "clip-uda"
seeds = 1
eval_every = 5
validators = ["entropy", "doc"]
source_holdout = 0.1
[train]
steps = 5
batch_size = 32
{_clip_task(tiny_config, tmp_path / "clip.pt")}[methods.zero_shot]
[methods.source_only]
""",
    )
    assert set(runs) == {"zero_shot", "source_only"} and {r["status"] for r in runs.values()} == {"ok"}
    predicted, y = _zero_shot_predictions(tiny_config, tmp_path / "clip.pt")
    assert runs["zero_shot"]["accuracy"] == pytest.approx(float((predicted == y).float().mean()))
    assert runs["zero_shot"]["accuracy"] != runs["source_only"]["accuracy"]
    (checkpoint,) = runs["zero_shot"]["curve"]
    assert checkpoint["step"] == 0 and {"val_entropy", "val_doc", "target_accuracy"} <= set(checkpoint)
    assert "zero_shot" in (tmp_path / "results" / "report" / "summary.md").read_text()
