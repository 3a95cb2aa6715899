import pytest
import torch
from torch import nn

from adapt import InputError
from adapt.models import DTN, MLP, Bottleneck, DomainDiscriminator, LeNet, ResNetFeatures


def test_digit_backbones_shapes():
    assert LeNet()(torch.randn(4, 1, 28, 28)).shape == (4, 500)
    assert DTN()(torch.randn(4, 3, 32, 32)).shape == (4, 512)
    assert MLP(2, (15,))(torch.randn(4, 2)).shape == (4, 15)


def test_resnet_features_without_download():
    net = ResNetFeatures("resnet18")
    assert not net.pretrained and net.out_features == 512
    assert net.eval()(torch.randn(2, 3, 64, 64)).shape == (2, 512)


@pytest.mark.bad_input
def test_resnet_rejects_unknown_arch():
    import pytest

    with pytest.raises(ValueError, match="unknown ResNet 'resnet7'; choose one of resnet18"):
        ResNetFeatures("resnet7")


def test_heads():
    d = DomainDiscriminator(10, hidden=(16, 16))
    assert d(torch.randn(5, 10)).shape == (5,)
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in d.modules()) == 2
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in DomainDiscriminator(10, batch_norm=False).modules())
    assert Bottleneck(10, 4)(torch.randn(3, 10)).shape == (3, 4)


def test_frozen_running_statistics_put_every_buffer_back_even_after_nan():
    from adapt.models import frozen_running_statistics

    norm = nn.BatchNorm1d(3, momentum=None)  # a cumulative average: counts matter
    norm(torch.randn(8, 3))
    state = {k: v.clone() for k, v in norm.state_dict().items()}
    with frozen_running_statistics(norm):
        norm(torch.full((4, 3), float("nan")))
    assert all(torch.equal(v, state[k]) for k, v in norm.state_dict().items())


def test_pretrained_weights_come_from_the_local_torch_cache(tmp_path, monkeypatch):
    import torchvision

    from adapt.models.resnet import ResNetFeatures, cached_weights_path

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(InputError, match=r"resnet18 weights IMAGENET1K_V1 are not in the local torch cache.*"
                       r"resnet18-f37072fd\.pth.*download=True"):  # fmt: skip
        ResNetFeatures("resnet18", "IMAGENET1K_V1")
    path = cached_weights_path("resnet18", "IMAGENET1K_V1")
    assert path == tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    path.parent.mkdir(parents=True)
    torch.manual_seed(5)
    reference = torchvision.models.resnet18()
    torch.save(reference.state_dict(), path)
    model = ResNetFeatures("resnet18", "IMAGENET1K_V1")
    assert torch.equal(model.net.conv1.weight, reference.conv1.weight) and model.pretrained
    with pytest.raises(ValueError, match="unknown resnet18 weights 'IMAGENET9K'"):
        ResNetFeatures("resnet18", "IMAGENET9K")


def test_a_groupnorm_convnet_has_no_batch_statistics_and_rebuilds_from_its_config():
    from adapt.models import ConvNet

    net = ConvNet(1, norm="group")
    kinds = {type(m) for m in net.modules()}
    assert torch.nn.GroupNorm in kinds and not any(issubclass(k, torch.nn.modules.batchnorm._BatchNorm) for k in kinds)
    assert ConvNet(**net.config()).config() == net.config() and net.config()["norm"] == "group"
    assert "norm" not in ConvNet(1).config()  # BatchNorm, the default, as the configs saved before
    x = torch.randn(4, 1, 16, 16)
    torch.testing.assert_close(net.eval()(x)[:1], net(x[:1]))  # one example's output does not depend on the batch
    with pytest.raises(ValueError, match="norm must be 'batch' or 'group'"):
        ConvNet(1, norm="layer")
