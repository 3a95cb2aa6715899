"""JAN: the joint MMD term."""

import torch
from helpers import _built

from adapt import losses


def test_jan_term_is_jmmd_of_features_and_softmax():
    model, batch = _built("jan")
    terms = model.loss(batch, 0.5)
    out = model.forward_domains(batch)
    expected = losses.jmmd(
        [out.source_features, out.source_logits.softmax(1)],
        [out.target_features, out.target_logits.softmax(1)],
        multipliers=[losses.DAN_MULTIPLIERS, (1.0,)],
    )
    torch.testing.assert_close(terms["jmmd"], expected)
