"""CLIP (Radford et al., ICML 2021) through open_clip: its image tower as a backbone, its text tower as a
zero-shot classifier for any class names.

The features are CLIP's image embeddings, L2-normalized, so that a linear layer whose weights are the
logit scale times the normalized class text embeddings (:meth:`ClipFeatures.zero_shot_head`) computes
exactly CLIP's zero-shot logits. As a source model (``[source] pretrained = true``), that head is the
classifier: adapt CLIP to an unlabeled target with no source data at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._optional import require
from ..errors import InputError
from ._cache import cached_weights, not_on_this_machine
from .inputs import Renormalize, resolve_normalization

#: open_clip's default file names for a model's weights on the Hugging Face hub, in the order it tries them.
HF_CLIP_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


def _open_clip() -> Any:
    return require("open_clip", "clip", "a CLIP backbone")


def cached_clip_weights(name: str, tag: str) -> Path:
    """The local file of open_clip model ``name``'s pretrained weights ``tag`` (for example ``"ViT-B-32"``,
    ``"laion2b_s34b_b79k"``): in the Hugging Face cache, or open_clip's ``~/.cache/clip`` for the ones served from
    a URL. An InputError naming the places looked in and the command that fills them when there is none."""
    open_clip = _open_clip()
    cfg = open_clip.pretrained.get_pretrained_cfg(name, tag)
    if not cfg:
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(name)) or "none"
        raise InputError(f"open_clip has no pretrained weights {tag!r} for {name!r}; its tags: {tags}")
    hub = None
    if cfg.get("hf_hub"):
        owner, repo, *rest = cfg["hf_hub"].split("/")
        hub = (f"{owner}/{repo}", [rest[0]] if rest and rest[0] else list(HF_CLIP_FILES), None)
    url_file = Path("~/.cache/clip").expanduser() / Path(cfg["url"]).name if cfg.get("url") else None
    try:
        return cached_weights(hub, url_file, "clip")
    except InputError as looked:
        fetch = f"python -c \"import open_clip; open_clip.create_model('{name}', pretrained='{tag}')\""
        raise not_on_this_machine(f"the {tag} weights of CLIP {name}", looked, fetch) from None


class ClipFeatures(nn.Module):
    """CLIP's image tower: images -> L2-normalized image embeddings (B, embed_dim).

    Parameters
    ----------
    name : an open_clip model name (``open_clip.list_models()``), e.g. ``"ViT-B-32"``, ``"ViT-B-16"``.
    pretrained : an open_clip pretrained tag (``open_clip.list_pretrained_tags_by_model(name)``), read from the
        local cache (see :func:`cached_clip_weights`); None: random weights.
    checkpoint : a weights file to load instead (open_clip's format).
    download : let open_clip fetch the pretrained weights when they are not cached.
    inputs : how the images arrive (:mod:`adapt.models.inputs`; default ``"imagenet"``, as ``adapt``'s image
        datasets give them), mapped exactly to CLIP's own normalization before the image tower.
    config : a model configuration file (open_clip's JSON: ``embed_dim``, ``vision_cfg``, ``text_cfg``) that
        defines ``name``, for an architecture open_clip does not ship.
    templates : the prompts of the zero-shot head: ``"openai"`` (the 80 of the CLIP paper's ImageNet
        ensemble), ``"simple"`` (open_clip's 7), or a list of strings with ``{}`` for the class name.
    """

    def __init__(self, name: str = "ViT-B-32", pretrained: str | None = None, checkpoint: str | None = None,
                 download: bool = False, inputs: str | Any = "imagenet", config: str | None = None,
                 templates: str | list[str] = "openai") -> None:  # fmt: skip
        super().__init__()
        open_clip = _open_clip()
        if config is not None:
            if not Path(config).is_file():
                raise InputError(f"no open_clip model configuration at {config}")
            open_clip.add_model_config(config)
        if name not in open_clip.list_models():
            raise ValueError(f"open_clip has no model {name!r} (open_clip.list_models() lists them; or pass config=)")
        if pretrained is not None and checkpoint is None and not download:
            checkpoint = str(cached_clip_weights(name, pretrained))
        if checkpoint is not None and not Path(checkpoint).is_file():
            raise InputError(f"no weights file at {checkpoint}")
        weights = checkpoint if checkpoint is not None else pretrained
        model = open_clip.create_model(name, pretrained=weights)
        model.eval()
        self.visual = model.visual
        # the text tower builds zero-shot heads; kept out of the module (not adapted, not in its state)
        self._text_model = [model]
        self.logit_scale = float(model.logit_scale.detach().exp())
        own = (tuple(self.visual.preprocess_cfg["mean"]), tuple(self.visual.preprocess_cfg["std"]))
        self.input_stats = resolve_normalization(inputs, own)
        self.renormalize = Renormalize(self.input_stats, own)
        self.out_features = int(self.visual.output_dim)
        self.pretrained_head = None  # CLIP has no fixed classifier: zero_shot_head(classes) builds one
        self.templates = templates
        self._config = {"name": name, "inputs": inputs, "config": config, "templates": templates}
        self.pretrained = weights is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.visual(self.renormalize(x)), dim=-1)

    def config(self) -> dict[str, Any]:
        """Constructor arguments to rebuild the architecture (not the weights: a checkpoint loads over it)."""
        return dict(self._config)

    def prompt_templates(self) -> list[str]:
        """The zero-shot prompts (``templates``), each with ``{}`` where the class name goes."""
        metadata = _open_clip().zero_shot_metadata
        if self.templates == "openai":
            return [t("{}") for t in metadata.OPENAI_IMAGENET_TEMPLATES]
        if self.templates == "simple":
            return [t("{}") for t in metadata.SIMPLE_IMAGENET_TEMPLATES]
        if isinstance(self.templates, list) and all(isinstance(t, str) and "{}" in t for t in self.templates):
            return list(self.templates)
        raise ValueError(f"templates must be 'openai', 'simple' or a list of strings with {{}}, got {self.templates!r}")

    @torch.no_grad()
    def zero_shot_head(self, classes: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(weight, bias) of CLIP's zero-shot classifier for ``classes`` (underscores read as spaces): each row the
        logit scale times the normalized mean of the class's normalized prompt embeddings, bias 0 (Radford et al.,
        2021, Sec. 3.1.4, prompt ensembling)."""
        open_clip = _open_clip()
        model = self._text_model[0]
        names = [c.replace("_", " ") for c in classes]
        templates = [t.format for t in self.prompt_templates()]
        tokenizer = open_clip.get_tokenizer(self._config["name"])
        text = open_clip.build_zero_shot_classifier(model, tokenizer, names, templates, device="cpu")
        weight = self.logit_scale * text.T.float()
        return weight.to(self.visual_device()), torch.zeros(len(classes), device=self.visual_device())

    def visual_device(self) -> torch.device:
        return next(self.visual.parameters()).device
