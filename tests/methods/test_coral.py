"""Deep CORAL: its default (scale-free) term, the paper's preset, and a bad normalization."""

import pytest
import torch
from torch import nn

from adapt import losses, methods
from adapt.batch import Batch


class Scaled(nn.Module):
    """A fixed random feature map whose output is multiplied by ``scale``."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net, self.scale = nn.Sequential(nn.Linear(5, 32), nn.ReLU()), scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * self.net(x)


def _batch() -> Batch:
    g = torch.Generator().manual_seed(1)
    return Batch(torch.randn(32, 5, generator=g), torch.randint(0, 3, (32,), generator=g),
                 torch.randn(32, 5, generator=g) * 1.5 + 0.3)  # fmt: skip


def _model(scale: float = 1.0, **options) -> methods.Adapter:
    model = methods.create("coral", Scaled(scale), 3, **options)
    model.build(torch.zeros(2, 5))
    return model.eval()  # no dropout or BatchNorm updates between the two calls


def test_default_term_is_the_scale_free_coral_at_0_3():
    model, batch = _model(), _batch()
    out = model.forward_domains(batch)
    expected = 0.3 * losses.scale_free_coral_loss(out.source_features, out.target_features)
    assert float(model.loss(batch, 0.5)["coral"].detach()) == pytest.approx(float(expected.detach()), rel=1e-6)


def test_default_term_does_not_depend_on_the_feature_scale():
    """The same features at 1/100 and 100 times the scale: the default term is the same; the paper's moves
    by the eighth power of the ratio."""
    batch = _batch()
    small, large = (
        float(_model(0.01).loss(batch, 0.5)["coral"].detach()),
        float(_model(100.0).loss(batch, 0.5)["coral"].detach()),
    )
    assert small == pytest.approx(large, rel=1e-4)
    paper_small = float(_model(0.01, preset="paper").loss(batch, 0.5)["coral"].detach())
    paper_large = float(_model(100.0, preset="paper").loss(batch, 0.5)["coral"].detach())
    assert paper_large > 1e12 * paper_small


def test_paper_preset_is_eq_5_as_written():
    model, batch = _model(preset="paper"), _batch()
    assert (model.normalization, model.trade_off) == ("paper", 1.0)
    out = model.forward_domains(batch)
    expected = losses.coral_loss(out.source_features, out.target_features)
    assert float(model.loss(batch, 0.5)["coral"].detach()) == pytest.approx(float(expected.detach()), rel=1e-6)


@pytest.mark.bad_input
def test_unknown_normalization_is_named():
    with pytest.raises(ValueError, match="normalization must be 'paper' or 'scale_free', got 'l2'"):
        methods.create("coral", Scaled(1.0), 3, normalization="l2")
