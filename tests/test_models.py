import torch

from adapt.models import DTN, MLP, Bottleneck, DomainDiscriminator, LeNet, ResNetFeatures


def test_digit_backbones_shapes():
    assert LeNet()(torch.randn(4, 1, 28, 28)).shape == (4, 500)
    assert DTN()(torch.randn(4, 3, 32, 32)).shape == (4, 512)
    assert MLP(2, (15,))(torch.randn(4, 2)).shape == (4, 15)


def test_resnet_features_without_download():
    net = ResNetFeatures("resnet18")
    assert not net.pretrained and net.out_features == 512
    assert net.eval()(torch.randn(2, 3, 64, 64)).shape == (2, 512)


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
