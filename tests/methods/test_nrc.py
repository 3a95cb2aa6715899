"""NRC: its loss and its Office-Home preset against the authors' code."""

import pytest
import torch
import torch.nn.functional as F
from helpers import shifted_blobs

from adapt.sourcefree import NRC


def official_nrc_loss(softmax_out, fea_bank, score_bank, tar_idx, K, KK):
    """Transcription of NRC's loss (Albert0147/NRC_SFDA at commit e5e3bfa, ``train_tar.py`` lines 248-309;
    the banks already updated with the batch, lines 246-247). Their ``F.kl_div`` takes probabilities as
    its input, so each term is sum s log s - s.p: the constant is returned apart."""
    with torch.no_grad():
        output_f_ = fea_bank[tar_idx]
        distance = output_f_ @ fea_bank.T
        _, idx_near = torch.topk(distance, dim=-1, largest=True, k=K + 1)
        idx_near = idx_near[:, 1:]
        score_near = score_bank[idx_near]
        fea_near = fea_bank[idx_near]
        fea_bank_re = fea_bank.unsqueeze(0).expand(fea_near.shape[0], -1, -1)
        distance_ = torch.bmm(fea_near, fea_bank_re.permute(0, 2, 1))
        _, idx_near_near = torch.topk(distance_, dim=-1, largest=True, k=KK + 1)
        idx_near_near = idx_near_near[:, :, 1:]
        tar_idx_ = tar_idx.unsqueeze(-1).unsqueeze(-1)
        match = (idx_near_near == tar_idx_).sum(-1).float()
        weight = torch.where(match > 0.0, match, torch.ones_like(match).fill_(0.1))
        weight_kk = weight.unsqueeze(-1).expand(-1, -1, KK).clone().fill_(0.1)
        score_near_kk = score_bank[idx_near_near]
        weight_kk = weight_kk.contiguous().view(weight_kk.shape[0], -1)
        score_near_kk = score_near_kk.contiguous().view(score_near_kk.shape[0], -1, score_bank.shape[1])
    output_re = softmax_out.unsqueeze(1).expand(-1, K * KK, -1)
    const = torch.mean((F.kl_div(output_re, score_near_kk, reduction="none").sum(-1) * weight_kk).sum(1))
    loss = torch.mean(const)
    softmax_out_un = softmax_out.unsqueeze(1).expand(-1, K, -1)
    loss = loss + torch.mean((F.kl_div(softmax_out_un, score_near, reduction="none").sum(-1) * weight).sum(1))
    msoftmax = softmax_out.mean(dim=0)
    loss = loss + torch.sum(msoftmax * torch.log(msoftmax + 1e-5))
    # the constant the kl_div form adds (sum s log s over the same neighbours and weights)
    plogp = (score_bank * torch.log(score_bank)).sum(1)
    constant = ((plogp[idx_near_near].view(len(tar_idx), -1) * weight_kk).sum(1)
                + (plogp[idx_near] * weight).sum(1)).mean()  # fmt: skip
    return loss, constant


@pytest.mark.parametrize("k,m", [(3, 2), (5, 5)])
def test_nrc_loss_matches_the_authors_code_up_to_its_constant(source_model, k, m):
    from adapt.batch import Batch

    _, _, xt, _ = shifted_blobs(0)
    nrc = NRC.from_source(source_model, k=k, m=m)
    nrc.prepare_target(len(xt))
    g = torch.Generator().manual_seed(0)
    nrc.memory.features = F.normalize(torch.randn(len(xt), 16, generator=g), dim=1)
    nrc.memory.predictions = (3 * torch.rand(len(xt), 4, generator=g)).softmax(1)
    index = torch.arange(40, 72)
    terms = nrc.loss(Batch(xt[:0], torch.empty(0, dtype=torch.long), xt[index], target_index=index), 0.5)
    ours = sum(terms.values())
    p = nrc.classifier(nrc.embed(xt[index])).softmax(1)
    official, constant = official_nrc_loss(p, nrc.memory.features, nrc.memory.predictions, index, k, m)
    assert float(ours.detach()) == pytest.approx(float((official - constant).detach()), rel=1e-5, abs=1e-6)
    params = [q for q in nrc.parameters() if q.requires_grad]
    ours_grad = torch.autograd.grad(ours, params)
    official_grad = torch.autograd.grad(official, params)
    for a, b in zip(ours_grad, official_grad):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("progress, k, m", [(0.4, 3, 2), (0.6, 5, 4)])
def test_nrc_officehome_preset_switches_its_neighbourhoods_half_way(source_model, progress, k, m):
    """``office-home/train_tar.py`` (Albert0147/NRC_SFDA at e5e3bfa, lines 222-226) with ``train_tar_oh.sh``:
    K = 3, KK = 2 until half the run, then K = 5, KK = 4."""
    from adapt.batch import Batch

    _, _, xt, _ = shifted_blobs(0)
    nrc = NRC.from_source(source_model, preset="officehome")
    nrc.prepare_target(len(xt))
    g = torch.Generator().manual_seed(0)
    nrc.memory.features = F.normalize(torch.randn(len(xt), 16, generator=g), dim=1)
    nrc.memory.predictions = (3 * torch.rand(len(xt), 4, generator=g)).softmax(1)
    index = torch.arange(40, 72)
    ours = sum(nrc.loss(Batch(xt[:0], torch.empty(0, dtype=torch.long), xt[index], target_index=index),
                        progress).values())  # fmt: skip
    p = nrc.classifier(nrc.embed(xt[index])).softmax(1)
    official, constant = official_nrc_loss(p, nrc.memory.features, nrc.memory.predictions, index, k, m)
    assert float(ours.detach()) == pytest.approx(float((official - constant).detach()), rel=1e-5, abs=1e-6)
    assert nrc.fit_preset_ == {**NRC.fit_defaults, "weight_decay": 5e-4, "lr_schedule": "constant"}
