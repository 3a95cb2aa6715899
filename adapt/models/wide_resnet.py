"""Wide residual networks (Zagoruyko & Komodakis, BMVC 2016) as RobustBench builds them, and its checkpoints.

The test-time adaptation benchmarks on CIFAR-10-C start from RobustBench's ``Standard`` model: a
WRN-28-10 trained on clean CIFAR-10 with inputs in [0, 1] and no normalization inside
(``robustbench/model_zoo/architectures/wide_resnet.py``; ``load_model("Standard", dataset="cifar10",
threat_model="corruptions")``). :class:`WideResNet` has that network's layers under the same names, so
its checkpoint loads strictly; :class:`WideResNetFeatures` is the network without its classifier, which
it keeps as ``pretrained_head`` for a source model that is the pretrained classifier itself.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from .inputs import NORMALIZATIONS, Renormalize, resolve_normalization

#: What RobustBench's ``load_model`` saves its ``Standard`` CIFAR-10 model as, and how to get it.
STANDARD_FILE = "models/cifar10/corruptions/Standard.pt"
FETCH_STANDARD = (
    'pip install git+https://github.com/RobustBench/robustbench.git && python -c "from robustbench.utils import '
    "load_model; load_model('Standard', model_dir='models', dataset='cifar10', threat_model='corruptions')\""
)


class WideBlock(nn.Module):
    """Pre-activation basic block: BN-ReLU-conv3x3-BN-ReLU-conv3x3, a 1x1 convolution on the shortcut
    when the width or stride changes (which then starts from the activated input)."""

    def __init__(self, in_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_planes, out_planes, 3, stride=1, padding=1, bias=False)
        self.equal_in_out = in_planes == out_planes
        # RobustBench's name for the projection shortcut, kept so that its checkpoints load.
        self.convShortcut = None if self.equal_in_out else nn.Conv2d(in_planes, out_planes, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = self.relu1(self.bn1(x))
        if self.equal_in_out:
            out, shortcut = activated, x
        else:
            out, shortcut = activated, self.convShortcut(activated)
        out = self.conv2(self.relu2(self.bn2(self.conv1(out))))
        return shortcut + out


class WideStage(nn.Module):
    """``n`` blocks, the first one changing width and stride (RobustBench's ``NetworkBlock``)."""

    def __init__(self, n: int, in_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        self.layer = nn.Sequential(*(WideBlock(in_planes if i == 0 else out_planes, out_planes, stride if i == 0 else 1)
                                     for i in range(n)))  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class WideResNet(nn.Module):
    """WRN-``depth``-``widen_factor`` for 32x32 RGB images: (B, 3, 32, 32) -> logits (B, num_classes).

    Three stages of (depth - 4) / 6 pre-activation blocks, widths 16k, 32k, 64k, a final BN-ReLU, 8x8
    average pooling and a linear classifier; He-normal convolutions (fan-out), BatchNorm weight 1 and bias 0,
    classifier bias 0, as RobustBench initializes them.
    """

    def __init__(self, depth: int = 28, widen_factor: int = 10, num_classes: int = 10) -> None:
        super().__init__()
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(f"a wide ResNet's depth is 6n + 4 (10, 16, 22, 28, 34, 40, ...), got {depth}")
        if widen_factor < 1:
            raise ValueError(f"widen_factor must be a positive integer, got {widen_factor}")
        n, widths = (depth - 4) // 6, [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.conv1 = nn.Conv2d(3, widths[0], 3, stride=1, padding=1, bias=False)
        self.block1 = WideStage(n, widths[0], widths[1], 1)
        self.block2 = WideStage(n, widths[1], widths[2], 2)
        self.block3 = WideStage(n, widths[2], widths[3], 2)
        self.bn1 = nn.BatchNorm2d(widths[3])
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(widths[3], num_classes)
        self.out_features = widths[3]
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
                nn.init.normal_(module.weight, 0.0, (2.0 / fan_out) ** 0.5)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = F.avg_pool2d(self.relu(self.bn1(out)), 8)
        return out.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def read_robustbench_checkpoint(path: str | Path, sha256: str | None = None) -> dict[str, torch.Tensor]:
    """The state dict in a RobustBench model file: its ``'state_dict'`` entry when it has one, else the file's
    dict, with the ``module.`` prefix of a data-parallel model removed (as ``robustbench.utils.load_model``).
    With ``sha256``, the file's digest is checked first."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no RobustBench checkpoint at {path}. RobustBench's CIFAR-10 'Standard' WRN-28-10 is saved "
                         f"as {STANDARD_FILE} by: {FETCH_STANDARD}")  # fmt: skip
    if sha256 is not None:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != sha256.lower():
            raise InputError(f"{path} has SHA-256 {digest}, expected {sha256}: a different or damaged file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a file that is not a checkpoint
        raise InputError(f"{path} is not a torch checkpoint of tensors ({type(exc).__name__}: {exc})") from exc
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"{path} holds no state dict of tensors (a dict, or a dict with 'state_dict')")
    return {key.removeprefix("module."): value for key, value in state.items()}


class WideResNetFeatures(nn.Module):
    """A :class:`WideResNet` without its classifier: images -> pooled features (B, 64 * widen_factor).

    Parameters
    ----------
    depth, widen_factor : the architecture (28 and 10: RobustBench's CIFAR-10 ``Standard``).
    checkpoint : a RobustBench model file (or any file of this network's state dict); its classifier
        becomes ``pretrained_head`` (``[source] pretrained = true`` makes it the source model's).
    num_classes : the checkpoint's number of classes (10 for CIFAR-10).
    inputs : how the inputs arrive (:mod:`adapt.models.inputs`): ``"unit"`` ([0, 1], what RobustBench's models
        take) or ``"cifar10"`` (standardized with CIFAR-10's mean and std, as the ``cifar10-c`` benchmark gives
        them: undone first), or another name or (mean, std) pair.
    sha256 : the checkpoint's expected digest, checked when given.
    """

    def __init__(self, depth: int = 28, widen_factor: int = 10, checkpoint: str | None = None, num_classes: int = 10,
                 inputs: str = "unit", sha256: str | None = None) -> None:  # fmt: skip
        super().__init__()
        self.renormalize = Renormalize(resolve_normalization(inputs, NORMALIZATIONS["unit"]), NORMALIZATIONS["unit"])
        net = WideResNet(depth, widen_factor, num_classes)
        self.pretrained_head: tuple[torch.Tensor, torch.Tensor] | None = None
        if checkpoint is not None:
            try:
                net.load_state_dict(read_robustbench_checkpoint(checkpoint, sha256))
            except RuntimeError as exc:
                raise InputError(f"{checkpoint} is not a WRN-{depth}-{widen_factor} with {num_classes} classes: "
                                 f"{exc}") from exc  # fmt: skip
            self.pretrained_head = (net.fc.weight.detach().clone(), net.fc.bias.detach().clone())
        net.fc = nn.Identity()
        self.net = net
        self.out_features = net.out_features
        self._config = {"depth": depth, "widen_factor": widen_factor, "num_classes": num_classes, "inputs": inputs}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(self.renormalize(x))

    def config(self) -> dict[str, Any]:
        """Constructor arguments to rebuild the architecture (no checkpoint: the trained weights are loaded over it)."""
        return dict(self._config)
