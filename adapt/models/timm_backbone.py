"""Any timm model as a feature extractor: CNNs, ViTs, Swin, ConvNeXt, EVA, by name.

Pretrained weights are read from a local file only: the Hugging Face cache that timm itself fills
(``$HF_HOME/hub``), or a file you name. Nothing downloads unless ``download=True``; a missing file is an
error naming where it was looked for and the command that fetches it.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._optional import require
from ..errors import InputError
from ._cache import cached_weights, not_on_this_machine
from .inputs import Renormalize, resolve_normalization

#: The files a timm model's Hugging Face repository holds its weights in, in the order timm tries them.
HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def _timm() -> Any:
    return require("timm", "timm", "a timm backbone")


def cached_timm_weights(name: str) -> Path:
    """The local file of timm model ``name``'s pretrained weights (its default tag, or ``name.tag``): in the Hugging
    Face cache, or in torch's hub cache for the few timm models still served from a URL. An InputError naming
    the places looked in and the command that fills them when there is none."""
    timm = _timm()
    cfg = timm.models.get_pretrained_cfg(name) if timm.is_model(name) else None
    if cfg is None:
        raise InputError(f"timm has no pretrained weights for {name!r} (timm.list_pretrained('{name.split('.')[0]}*') "
                         "lists the tags that have some)")  # fmt: skip
    repo, _, revision = (cfg.hf_hub_id or "").partition("@")
    hub = (repo, list(HF_WEIGHT_FILES), revision or None) if cfg.hf_hub_id else None
    url_file = Path(torch.hub.get_dir()) / "checkpoints" / Path(cfg.url).name if cfg.url else None
    try:
        return cached_weights(hub, url_file, "timm")
    except InputError as looked:
        raise not_on_this_machine(
            f"the pretrained weights of timm model {name!r}",
            looked,
            f"python -c \"import timm; timm.create_model('{name}', pretrained=True)\"",
        ) from None


class TimmFeatures(nn.Module):
    """A timm model without its classifier: images -> pooled features (B, D), D = the model's feature width.

    Parameters
    ----------
    name : a timm model name (``timm.list_models()``), with a pretrained tag if you like
        (``"vit_base_patch16_224.augreg2_in21k_ft_in1k"``).
    pretrained : load timm's pretrained weights for ``name``, from the local cache (see :func:`cached_timm_weights`).
    checkpoint : a weights file to load instead (timm's format: a state dict, safetensors or torch).
    download : let timm fetch the pretrained weights when they are not cached.
    inputs : how the images arrive (:mod:`adapt.models.inputs`): ``"imagenet"`` (standardized with ImageNet's
        mean and std, as ``adapt``'s image datasets give them), ``"model"`` (already in the model's own
        normalization, its ``data_config``), ``"unit"``, or a (mean, std) pair; mapped exactly to the model's
        own before its first layer. The views below produce images in this normalization.
    layer_decay : layer-wise learning-rate decay (as in BEiT/MAE fine-tuning): the last block trains at the
        backbone's rate, each block below at ``layer_decay`` times the one above; None: one rate.
    **model_options : passed to ``timm.create_model`` (``img_size=32`` for a ViT on small images, ...).

    ``data_config`` is timm's data configuration of the model (input size, mean, std, interpolation, crop):
    what :meth:`eval_transform` and :meth:`train_transform` use. ``pretrained_head`` keeps the pretrained
    classifier's (weight, bias) when there is one (``[source] pretrained = true`` makes it the source model).
    """

    def __init__(self, name: str, pretrained: bool = False, checkpoint: str | None = None, download: bool = False,
                 inputs: str | Any = "imagenet", layer_decay: float | None = None,
                 **model_options: Any) -> None:  # fmt: skip
        super().__init__()
        timm = _timm()
        if layer_decay is not None and not 0 < layer_decay <= 1:
            raise ValueError(f"layer_decay must be in (0, 1], got {layer_decay}")
        if not timm.is_model(name):
            close = difflib.get_close_matches(name, timm.list_models(), n=3)
            raise ValueError(f"timm has no model {name!r}" + (f"; did you mean {', '.join(close)}?" if close else ""))
        if pretrained and checkpoint is None and not download:
            checkpoint = str(cached_timm_weights(name))
        if checkpoint is not None and not Path(checkpoint).is_file():
            raise InputError(f"no weights file at {checkpoint}")
        overlay = {"file": str(checkpoint)} if checkpoint is not None else None
        net = timm.create_model(name, pretrained=pretrained or checkpoint is not None, pretrained_cfg_overlay=overlay,
                                **model_options)  # fmt: skip
        head = net.get_classifier()
        loaded = pretrained or checkpoint is not None
        self.pretrained_head: tuple[torch.Tensor, torch.Tensor] | None = None
        if loaded and isinstance(head, nn.Linear) and head.bias is not None:
            self.pretrained_head = (head.weight.detach().clone(), head.bias.detach().clone())
        net.reset_classifier(0)
        self.net = net
        self.name, self.pretrained, self.model_options = name, loaded, dict(model_options)
        self.layer_decay = layer_decay
        self.out_features: int = int(getattr(net, "head_hidden_size", None) or net.num_features)
        self.data_config: dict[str, Any] = timm.data.resolve_data_config({}, model=net)
        own = (tuple(self.data_config["mean"]), tuple(self.data_config["std"]))
        self.inputs = inputs
        self.input_stats = resolve_normalization(inputs, own)
        self.renormalize = Renormalize(self.input_stats, own)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.renormalize(x))

    def config(self) -> dict[str, Any]:
        """Constructor arguments to rebuild the architecture (not the weights: a checkpoint loads over it)."""
        return {"name": self.name, "inputs": self.inputs, "layer_decay": self.layer_decay, **self.model_options}

    def eval_transform(self) -> Any:
        """timm's evaluation transform for this model (resize, center crop, to tensor) from PIL images, normalized
        as ``inputs`` says the images arrive."""
        mean, std = self.input_stats
        return _timm().data.create_transform(**{**self.data_config, "mean": mean, "std": std}, is_training=False)

    def train_transform(self, augment: str = "crop+flip") -> Any:
        """The training view: ``"none"`` (the evaluation view), ``"crop"`` (random resized crop at the model's input
        size) or ``"crop+flip"`` (and a horizontal flip), normalized as ``inputs`` says."""
        if augment == "none":
            return self.eval_transform()
        if augment not in ("crop", "crop+flip"):
            raise ValueError(f"augment must be 'none', 'crop' or 'crop+flip', got {augment!r}")
        (mean, std), cfg = self.input_stats, self.data_config
        return _timm().data.create_transform(cfg["input_size"], is_training=True, hflip=0.5 if augment == "crop+flip"
                                             else 0.0, interpolation=cfg["interpolation"], mean=mean,
                                             std=std)  # fmt: skip

    def parameter_groups(self) -> list[dict[str, Any]]:
        """The backbone's parameters in groups with a learning-rate multiplier each (``lr_mult``): one group, or with
        ``layer_decay`` one per depth, from timm's grouping of the model's layers (weight decay stays the
        training's own for every group)."""
        trainable = [p for p in self.parameters() if p.requires_grad]
        if self.layer_decay is None:
            return [{"params": trainable, "lr_mult": 1.0}]
        grouping = require("timm.optim._param_groups", "timm", "layer-wise learning-rate decay")
        groups = grouping.param_groups_layer_decay(self.net, weight_decay=0.0, layer_decay=self.layer_decay)
        merged: dict[float, list[nn.Parameter]] = {}
        for group in groups:
            merged.setdefault(float(group["lr_scale"]), []).extend(p for p in group["params"] if p.requires_grad)
        return [{"params": params, "lr_mult": scale} for scale, params in sorted(merged.items())]
