"""Adapter-level behaviour: numpy in numpy out, feature checks, save and load with their backbones."""

import numpy as np
import pytest
import torch
from torch import nn

from adapt import DANN, InputError, SourceOnly
from adapt.data import moons_shift
from adapt.models import MLP, ConvNet


@pytest.fixture(scope="module")
def fitted():
    xs, ys, xt, _ = moons_shift()
    torch.manual_seed(0)
    model = DANN(MLP(2, (16,), activation=nn.Tanh), 2)
    model.fit((xs, ys), xt, steps=30, verbose=False)
    return model, xt


def test_numpy_in_numpy_out_tensor_in_tensor_out(fitted):
    model, xt = fitted
    for method, shape in (("predict", (300,)), ("predict_proba", (300, 2)), ("predict_logits", (300, 2)),
                          ("features", (300, 16))):  # fmt: skip
        from_numpy = getattr(model, method)(xt)
        from_tensor = getattr(model, method)(torch.as_tensor(xt))
        assert isinstance(from_numpy, np.ndarray) and from_numpy.shape == shape, method
        assert isinstance(from_tensor, torch.Tensor) and tuple(from_tensor.shape) == shape, method
        np.testing.assert_allclose(from_numpy, from_tensor.numpy(), rtol=1e-6)
    assert model.predict(xt).dtype == np.int64
    assert isinstance(model.predict(torch.utils.data.TensorDataset(torch.as_tensor(xt))), torch.Tensor)


@pytest.mark.bad_input
def test_predict_names_a_feature_mismatch(fitted):
    model, _ = fitted
    with pytest.raises(InputError, match=r"inputs of shape \(N, 5\) but DANN was fitted on inputs of shape \(N, 2\)"):
        model.predict(np.zeros((3, 5), dtype=np.float32))


@pytest.mark.parametrize("backbone", [lambda: MLP(2, (16,), activation=nn.Tanh), lambda: ConvNet(1, (4,), 8, 8)])
def test_standard_backbones_are_rebuilt_by_load(tmp_path, backbone):
    net = backbone()
    shape = (2,) if isinstance(net, MLP) else (1, 8, 8)
    x = torch.randn(40, *shape)
    y = torch.arange(40) % 2
    model = SourceOnly(net, 2)
    model.fit((x, y), x, steps=3, batch_size=8, verbose=False)
    model.save(tmp_path / "m.pt")
    loaded = SourceOnly.load(tmp_path / "m.pt")  # no backbone passed
    assert type(loaded.backbone) is type(net)
    torch.testing.assert_close(loaded.predict_logits(x), model.predict_logits(x))


@pytest.mark.bad_input
def test_load_names_a_missing_or_wrong_backbone(tmp_path, fitted):
    model, xt = fitted
    model.save(tmp_path / "mlp.pt")
    with pytest.raises(InputError, match=r"does not fit the backbone passed \(MLP\(in_features=2, hidden=\[32\].*"
                       r"saved with MLP\(in_features=2, hidden=\[16\].*backbone\.net\.1\.weight has shape \(16, 2\) "
                       r"in the file but \(32, 2\)"):  # fmt: skip
        DANN.load(tmp_path / "mlp.pt", backbone=MLP(2, (32,), activation=nn.Tanh))
    with pytest.raises(InputError, match=r"does not fit the backbone passed \(Sequential.*missing from the file"):
        DANN.load(tmp_path / "mlp.pt", backbone=nn.Sequential(nn.Linear(2, 16), nn.Tanh()))
    custom = SourceOnly(nn.Sequential(nn.Linear(2, 4), nn.ReLU()), 2)
    custom.fit((xt, (xt[:, 0] > 0).astype(int)), xt, steps=2, verbose=False)
    custom.save(tmp_path / "custom.pt")
    with pytest.raises(InputError, match=r"trained on a Sequential of your own.*SourceOnly.load\(.*backbone=\.\.\.\)"):
        SourceOnly.load(tmp_path / "custom.pt")
    same = SourceOnly.load(tmp_path / "custom.pt", backbone=nn.Sequential(nn.Linear(2, 4), nn.ReLU()))
    np.testing.assert_array_equal(same.predict(xt), custom.predict(xt))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match=r"junk\.pt' is not an adapt checkpoint"):
        SourceOnly.load(tmp_path / "junk.pt")


def test_an_mlp_with_an_activation_a_file_cannot_name_needs_its_backbone_passed(tmp_path):
    import functools

    x, y = torch.randn(20, 2), torch.arange(20) % 2
    net = MLP(2, (4,), activation=functools.partial(nn.LeakyReLU, 0.2))
    model = SourceOnly(net, 2)
    model.fit((x, y), x, steps=2, batch_size=8, verbose=False)
    model.save(tmp_path / "m.pt")  # saving works for any backbone
    with pytest.raises(InputError, match="trained on a MLP of your own"):
        SourceOnly.load(tmp_path / "m.pt")
    same = SourceOnly.load(tmp_path / "m.pt", backbone=MLP(2, (4,), activation=functools.partial(nn.LeakyReLU, 0.2)))
    torch.testing.assert_close(same.predict_logits(x), model.predict_logits(x))
