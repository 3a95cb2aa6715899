"""The wide ResNet against RobustBench's, and its checkpoints read as RobustBench reads them."""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from adapt.errors import InputError
from adapt.models import WideResNet, WideResNetFeatures, read_robustbench_checkpoint
from adapt.models.inputs import NORMALIZATIONS
from adapt.models.rebuild import backbone_spec, rebuild_backbone

# --- Transcription: RobustBench/robustbench @ 78fcc9e48a07a861268f295a777b975f25155964,
# robustbench/model_zoo/architectures/wide_resnet.py lines 7-94 (BasicBlock, NetworkBlock, WideResNet), as
# written there; and robustbench/utils.py lines 88-96 (rm_substr_from_state_dict) with the checkpoint reading
# of load_model, lines 165-178 (torch.load on the CPU, 'state_dict' when present, 'module.' and 'model.' removed).
# fmt: off


class BasicBlock(nn.Module):
    def __init__(self, in_planes, out_planes, stride, dropRate=0.0):
        super(BasicBlock, self).__init__()  # noqa: UP008
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_planes, out_planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.droprate = dropRate
        self.equalInOut = in_planes == out_planes
        self.convShortcut = (not self.equalInOut) and nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, padding=0, bias=False) or None  # noqa: RUF021

    def forward(self, x):
        if not self.equalInOut:
            x = self.relu1(self.bn1(x))
        else:
            out = self.relu1(self.bn1(x))
        out = self.relu2(self.bn2(self.conv1(out if self.equalInOut else x)))
        if self.droprate > 0:
            out = F.dropout(out, p=self.droprate, training=self.training)
        out = self.conv2(out)
        return torch.add(x if self.equalInOut else self.convShortcut(x), out)


class NetworkBlock(nn.Module):
    def __init__(self, nb_layers, in_planes, out_planes, block, stride, dropRate=0.0):
        super(NetworkBlock, self).__init__()  # noqa: UP008
        self.layer = self._make_layer(block, in_planes, out_planes, nb_layers, stride, dropRate)

    def _make_layer(self, block, in_planes, out_planes, nb_layers, stride, dropRate):
        layers = []
        for i in range(int(nb_layers)):
            layers.append(block(i == 0 and in_planes or out_planes, out_planes, i == 0 and stride or 1, dropRate))  # noqa: RUF021
        return nn.Sequential(*layers)

    def forward(self, x):
        return self.layer(x)


class TheirWideResNet(nn.Module):
    def __init__(self, depth=28, num_classes=10, widen_factor=10, sub_block1=False, dropRate=0.0, bias_last=True):
        super(TheirWideResNet, self).__init__()  # noqa: UP008
        nChannels = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        assert (depth - 4) % 6 == 0
        n = (depth - 4) / 6
        block = BasicBlock
        self.conv1 = nn.Conv2d(3, nChannels[0], kernel_size=3, stride=1, padding=1, bias=False)
        self.block1 = NetworkBlock(n, nChannels[0], nChannels[1], block, 1, dropRate)
        if sub_block1:
            self.sub_block1 = NetworkBlock(n, nChannels[0], nChannels[1], block, 1, dropRate)
        self.block2 = NetworkBlock(n, nChannels[1], nChannels[2], block, 2, dropRate)
        self.block3 = NetworkBlock(n, nChannels[2], nChannels[3], block, 2, dropRate)
        self.bn1 = nn.BatchNorm2d(nChannels[3])
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(nChannels[3], num_classes, bias=bias_last)
        self.nChannels = nChannels[3]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                m.weight.data.normal_(0, math.sqrt(2.0 / n))
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.data.fill_(1)
                m.bias.data.zero_()
            elif isinstance(m, nn.Linear) and m.bias is not None:
                m.bias.data.zero_()

    def forward(self, x):
        out = self.conv1(x)
        out = self.block1(out)
        out = self.block2(out)
        out = self.block3(out)
        out = self.relu(self.bn1(out))
        out = F.avg_pool2d(out, 8)
        out = out.view(-1, self.nChannels)
        return self.fc(out)


def rm_substr_from_state_dict(state_dict, substr):
    new_state_dict = OrderedDict()
    for key in state_dict.keys():  # noqa: SIM118
        if substr in key:  # to delete prefix 'module.' if it exists
            new_key = key[len(substr):]
            new_state_dict[new_key] = state_dict[key]
        else:
            new_state_dict[key] = state_dict[key]
    return new_state_dict


def their_load(model, model_path):
    checkpoint = torch.load(model_path, map_location=torch.device("cpu"))
    try:
        state_dict = rm_substr_from_state_dict(checkpoint["state_dict"], "module.")
        state_dict = rm_substr_from_state_dict(state_dict, "model.")
    except Exception:
        state_dict = rm_substr_from_state_dict(checkpoint, "module.")
        state_dict = rm_substr_from_state_dict(state_dict, "model.")
    model.load_state_dict(state_dict, strict=True)
    return model.eval()


# fmt: on
# --- end of the transcription


def _standard_like_checkpoint(path, depth=16, widen_factor=2):
    """A file in the layout of RobustBench's ``Standard.pt``: {'state_dict': {'module.<key>': tensor}} of a
    trained-looking network (random weights, BatchNorm statistics moved off their initial values)."""
    torch.manual_seed(3)
    net = TheirWideResNet(depth=depth, widen_factor=widen_factor)
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.rand(16, 3, 32, 32))
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}, "epoch": 200}, path)
    return path


def test_the_wide_resnet_is_robustbenchs_initialization_and_forward():
    torch.manual_seed(0)
    theirs = TheirWideResNet(depth=16, widen_factor=2)
    torch.manual_seed(0)
    ours = WideResNet(depth=16, widen_factor=2)
    assert list(ours.state_dict()) == list(theirs.state_dict())  # same names, same order: checkpoints load
    for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)  # same draws
    x = torch.rand(4, 3, 32, 32)
    for mode in (False, True):  # evaluation, and training (batch statistics, running statistics updated)
        ours.train(mode), theirs.train(mode)
        torch.testing.assert_close(ours(x), theirs(x))
    for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=name)


def test_a_robustbench_checkpoint_gives_the_classifier_robustbench_loads(tmp_path):
    path = _standard_like_checkpoint(tmp_path / "Standard.pt")
    theirs = their_load(TheirWideResNet(depth=16, widen_factor=2), path)
    features = WideResNetFeatures(depth=16, widen_factor=2, checkpoint=str(path)).eval()
    weight, bias = features.pretrained_head
    x = torch.rand(8, 3, 32, 32)  # [0, 1], what RobustBench's models take
    with torch.no_grad():
        torch.testing.assert_close(features(x) @ weight.T + bias, theirs(x))
        # the cifar10-c benchmark standardizes its images; inputs="cifar10" undoes it before the first layer
        mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in NORMALIZATIONS["cifar10"])
        standardized = WideResNetFeatures(depth=16, widen_factor=2, checkpoint=str(path), inputs="cifar10").eval()
        torch.testing.assert_close(standardized((x - mean) / std) @ weight.T + bias, theirs(x), rtol=1e-4, atol=1e-4)
    assert not any(k.startswith("module.") for k in read_robustbench_checkpoint(path))
    torch.save(theirs.state_dict(), tmp_path / "plain.pt")  # a bare state dict loads too
    plain = WideResNetFeatures(depth=16, widen_factor=2, checkpoint=str(tmp_path / "plain.pt")).eval()
    torch.testing.assert_close(plain(x), features(x))


def test_a_wide_resnet_backbone_rebuilds_from_its_config(tmp_path):
    path = _standard_like_checkpoint(tmp_path / "Standard.pt")
    features = WideResNetFeatures(depth=16, widen_factor=2, checkpoint=str(path), inputs="cifar10").eval()
    rebuilt = rebuild_backbone(backbone_spec(features)).eval()
    assert rebuilt.pretrained_head is None  # the weights come from the adapter's checkpoint, not the file
    rebuilt.load_state_dict(features.state_dict())
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(rebuilt(x), features(x))


@pytest.mark.bad_input
def test_wide_resnet_checkpoint_errors_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(InputError, match=r"no RobustBench checkpoint at .*missing.pt.*load_model\('Standard'"):
        WideResNetFeatures(checkpoint=str(tmp_path / "missing.pt"))
    path = _standard_like_checkpoint(tmp_path / "Standard.pt")
    with pytest.raises(InputError, match=r"is not a WRN-28-10 with 10 classes"):
        WideResNetFeatures(checkpoint=str(path))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    WideResNetFeatures(depth=16, widen_factor=2, checkpoint=str(path), sha256=digest.upper())
    with pytest.raises(InputError, match=r"has SHA-256 .* a different or damaged file"):
        WideResNetFeatures(depth=16, widen_factor=2, checkpoint=str(path), sha256="0" * 64)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match=r"junk\.pt is not a torch checkpoint"):
        read_robustbench_checkpoint(tmp_path / "junk.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(InputError, match="holds no state dict"):
        read_robustbench_checkpoint(tmp_path / "list.pt")
    with pytest.raises(ValueError, match="depth is 6n \\+ 4"):
        WideResNet(depth=27)
    with pytest.raises(ValueError, match="inputs must be one of model, unit, symmetric, imagenet, cifar10"):
        WideResNetFeatures(depth=10, widen_factor=1, inputs="imagenet21k")
