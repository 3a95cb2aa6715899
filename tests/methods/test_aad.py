"""AaD: its loss and its Office-31 preset against the authors' code."""

import copy

import pytest
import torch
import torch.nn.functional as F
from helpers import shifted_blobs
from torch import nn

from adapt.sourcefree import AaD


def official_aad_loss(softmax_out, features_test, fea_bank, score_bank, tar_idx, K, alpha):
    """Transcription of AaD's loss (Albert0147/AaD_SFDA at commit cb5567c, ``tar_adaptation.py`` lines
    315-348): the banks take the batch, then attraction to the K nearest (``F.kl_div`` on probabilities)
    and dispersion from the rest of the batch, weighted by ``alpha`` (line 302). Returns the loss and the
    constant their ``kl_div`` form adds (the neighbours' sum of s log s)."""
    with torch.no_grad():
        output_f_norm = F.normalize(features_test)
        output_f_ = output_f_norm.cpu().detach().clone()
        fea_bank[tar_idx] = output_f_.detach().clone().cpu()
        score_bank[tar_idx] = softmax_out.detach().clone()
        distance = output_f_ @ fea_bank.T
        _, idx_near = torch.topk(distance, dim=-1, largest=True, k=K + 1)
        idx_near = idx_near[:, 1:]  # batch x K
        score_near = score_bank[idx_near]  # batch x K x C
    softmax_out_un = softmax_out.unsqueeze(1).expand(-1, K, -1)  # batch x K x C
    loss = torch.mean((F.kl_div(softmax_out_un, score_near, reduction="none").sum(-1)).sum(1))
    mask = torch.ones((softmax_out.shape[0], softmax_out.shape[0]))
    diag_num = torch.diag(mask)
    mask_diag = torch.diag_embed(diag_num)
    mask = mask - mask_diag
    copy = softmax_out.T
    dot_neg = softmax_out @ copy  # batch x batch
    dot_neg = (dot_neg * mask).sum(-1)  # batch
    neg_pred = torch.mean(dot_neg)
    loss += neg_pred * alpha
    constant = (score_near * torch.log(score_near)).sum(-1).sum(1).mean()
    return loss, constant


@pytest.mark.parametrize("progress", [0.0, 0.5])
def test_aad_loss_matches_the_authors_code_up_to_its_constant(source_model, progress):
    from adapt.batch import Batch

    _, _, xt, _ = shifted_blobs(0)
    aad = AaD.from_source(source_model)  # the defaults of their main script: K = 5, alpha = 1, beta = 5
    aad.prepare_target(len(xt))
    g = torch.Generator().manual_seed(0)
    aad.memory.features = F.normalize(torch.randn(len(xt), 16, generator=g), dim=1)
    aad.memory.predictions = (3 * torch.rand(len(xt), 4, generator=g)).softmax(1)
    fea_bank, score_bank = aad.memory.features.clone(), aad.memory.predictions.clone()
    index = torch.arange(10, 42)
    terms = aad.loss(Batch(xt[:0], torch.empty(0, dtype=torch.long), xt[index], target_index=index), progress)
    ours = sum(terms.values())
    features = aad.embed(xt[index])
    softmax_out = aad.classifier(features).softmax(1)
    alpha = (1 + 10 * progress) ** (-5.0) * 1.0  # their line 302: (1 + 10 iter/max)^(-beta) * alpha
    official, constant = official_aad_loss(softmax_out, features, fea_bank, score_bank, index, 5, alpha)
    assert float(ours.detach()) == pytest.approx(float((official - constant).detach()), rel=1e-5, abs=1e-6)
    params = [q for q in aad.parameters() if q.requires_grad]
    for a, b in zip(torch.autograd.grad(ours, params), torch.autograd.grad(official, params)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def official_aad_office31(feature_layers, bottleneck, oldC, target_x, batches, K=3, beta=1.0, lr=1e-3):
    """Transcription of ``office-home/office31_tar.py`` (Albert0147/AaD_SFDA at commit cb5567c) with
    ``office31_tar.sh``'s ``--K 3 --beta 1``: the optimizer (lines 237-247: the feature layers at 0.1x,
    bottleneck, BatchNorm and classifier at 1x, Nesterov momentum 0.9, weight decay 5e-4, no lr schedule,
    its call being commented out at line 307), the banks filled by one pass in eval mode (lines 250-272)
    and the loop (lines 282-357). ``batches``: the target indices of each step, the engine's, so that both
    see the same batches; their ``netF`` is our backbone followed by our bottleneck."""

    def netF(x):
        return bottleneck(feature_layers(x))

    optimizer = torch.optim.SGD(
        [
            {"params": feature_layers.parameters(), "lr": lr * 0.1},
            {"params": bottleneck.parameters(), "lr": lr * 1},
            {"params": oldC.parameters(), "lr": lr * 1},
        ],
        momentum=0.9,
        weight_decay=5e-4,
        nesterov=True,
    )
    for m in (feature_layers, bottleneck, oldC):
        m.eval()
    with torch.no_grad():
        output = netF(target_x)
        fea_bank = F.normalize(output).detach().clone()
        score_bank = nn.Softmax(-1)(oldC(output)).detach().clone()
    for m in (feature_layers, bottleneck, oldC):
        m.train()
    max_iter = len(batches)
    for iter_num, tar_idx in enumerate(batches):
        alpha = (1 + 10 * iter_num / max_iter) ** (-beta) * 1
        features_test = netF(target_x[tar_idx])
        softmax_out = nn.Softmax(dim=1)(oldC(features_test))
        loss, _ = official_aad_loss(softmax_out, features_test, fea_bank, score_bank, tar_idx, K, alpha)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def test_aad_office31_preset_trains_as_the_authors_script(source_model, monkeypatch):
    """Three steps of ``AaD.from_source(model, preset="office31").fit(target)`` end with the weights the
    authors' Office-31 loop gives from the same source model and batches: the classifier trains too."""
    _, _, xt, _ = shifted_blobs(0)
    seen = []
    original = AaD.loss
    monkeypatch.setattr(AaD, "loss", lambda self, batch, p: seen.append(batch.target_index.clone()) or original(
        self, batch, p))  # fmt: skip
    ours = AaD.from_source(source_model, preset="office31")
    theirs = copy.deepcopy(source_model)
    ours.fit(xt, steps=3, batch_size=32, seed=0, verbose=False)
    official_aad_office31(theirs.backbone, theirs.bottleneck, theirs.classifier, xt, seen)
    for name, value in theirs.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[name], value, rtol=1e-5, atol=1e-6, msg=name)
    assert not torch.equal(ours.classifier.weight, source_model.classifier.weight)
