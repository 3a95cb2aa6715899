"""Test-time adaptation: TENT against a transcription of the authors' forward_and_adapt, BatchNorm
adaptation against its closed form, what each may change, reset, and a shift they undo."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from adapt.errors import InputError
from adapt.testtime import EATA, TENT, TEST_TIME_METHODS, BNAdapt, evaluate_batches, evaluate_stream


def bn_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 16), nn.BatchNorm1d(16),
                         nn.ReLU(), nn.Linear(16, 3))  # fmt: skip


def blobs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centers = torch.tensor([[0.0, 3.0], [3.0, -2.0], [-3.0, -2.0]])
    y = torch.arange(n) % 3
    return centers[y] + torch.randn(n, 2, generator=g), y


@pytest.fixture(scope="module")
def source_model() -> nn.Module:
    """A BatchNorm classifier trained on the source blobs (plain loop: the test-time code is what's tested)."""
    model = bn_net()
    x, y = blobs(600, 0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    g = torch.Generator().manual_seed(1)
    for _ in range(300):
        idx = torch.randint(0, len(x), (64,), generator=g)
        optimizer.zero_grad()
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        optimizer.step()
    return model.eval()


def target_stream(n: int = 600, seed: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """The source blobs shrunk and moved (49% accuracy unadapted): a shift BatchNorm statistics can undo."""
    x, y = blobs(n, seed)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return (x * 0.5 + torch.tensor([4.0, 4.0]))[order], y[order]


def official_tent_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor) -> torch.Tensor:
    """Transcription of tent.py's forward_and_adapt (DequanWang/tent): forward, entropy, backward, step."""
    outputs = model(x)
    loss = -(outputs.softmax(1) * outputs.log_softmax(1)).sum(1).mean(0)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return outputs


def official_tent_setup(model: nn.Module) -> tuple[nn.Module, torch.optim.Optimizer]:
    """Transcription of tent.configure_model / collect_params and the CIFAR-10-C optimizer (Adam, 1e-3)."""
    model = copy.deepcopy(model)
    model.train()
    model.requires_grad_(False)
    params = []
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.requires_grad_(True)
            m.track_running_stats = False
            m.running_mean = None
            m.running_var = None
            params += [m.weight, m.bias]
    return model, torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999), weight_decay=0.0)


def test_tent_matches_the_authors_forward_and_adapt(source_model):
    x, _ = target_stream()
    tent = TENT(source_model)
    reference, optimizer = official_tent_setup(source_model)
    for batch in x.split(64):
        ours = tent.predict_logits(batch)
        theirs = official_tent_step(reference, optimizer, batch).detach()
        torch.testing.assert_close(ours, theirs)
    for (name, a), (_, b) in zip(tent.model.state_dict().items(), reference.state_dict().items()):
        torch.testing.assert_close(a, b, msg=name)


def test_tent_changes_only_batch_norm_affine_parameters_of_its_copy(source_model):
    original = copy.deepcopy(source_model.state_dict())
    tent = TENT(source_model)
    before = {k: v.clone() for k, v in tent.model.named_parameters()}
    tent.predict(target_stream()[0][:64])
    changed = {k for k, v in tent.model.named_parameters() if not torch.equal(v, before[k])}
    assert changed == {"1.weight", "1.bias", "4.weight", "4.bias"}
    for k, v in source_model.state_dict().items():  # the caller's model is untouched
        assert torch.equal(v, original[k]), k


def test_reset_forgets_the_stream(source_model):
    x, _ = target_stream()
    tent = TENT(source_model)
    first = tent.predict_logits(x[:64])
    for batch in x[64:].split(64):
        tent.predict(batch)
    tent.reset()
    assert tent.batches_seen == 0
    torch.testing.assert_close(tent.predict_logits(x[:64]), first)


def test_bn_adapt_is_the_mixing_rule(source_model):
    x = target_stream()[0][:32]
    layer = source_model[1]
    hidden = source_model[0](x)
    for prior in (0.0, 8.0):
        w = 32 / (prior + 32)
        mean = (1 - w) * layer.running_mean + w * hidden.mean(0)
        var = (1 - w) * layer.running_var + w * hidden.var(0, unbiased=False)
        expected = (hidden - mean) / torch.sqrt(var + layer.eps) * layer.weight + layer.bias
        adapted = BNAdapt(source_model, prior=prior).model
        torch.testing.assert_close(adapted[1](hidden), expected)
    # prior 0 is BatchNorm in training mode, without moving the running statistics
    train_mode = copy.deepcopy(source_model).train()
    torch.testing.assert_close(BNAdapt(source_model).predict_logits(x), train_mode(x).detach())


def test_test_time_methods_undo_a_covariate_shift(source_model):
    x, y = target_stream()
    unadapted = float((source_model(x).argmax(1) == y).float().mean())
    bn = evaluate_stream(BNAdapt(source_model), x, y, batch_size=64)
    tent = evaluate_stream(TENT(source_model), x, y, batch_size=64)
    assert unadapted < 0.6
    assert bn["online_accuracy"] > unadapted + 0.3
    assert tent["online_accuracy"] > unadapted + 0.3
    assert tent["after_accuracy"] >= bn["after_accuracy"] - 0.02
    assert tent["batches"] == int(np.ceil(len(x) / 64))


def test_registry_and_bad_inputs(source_model):
    assert TEST_TIME_METHODS.get("tent") is TENT and TEST_TIME_METHODS.get("bn") is BNAdapt
    no_bn = nn.Sequential(nn.Linear(2, 3))
    with pytest.raises(InputError, match="has none"):
        TENT(no_bn)
    with pytest.raises(InputError, match="has none"):
        BNAdapt(no_bn)
    tent = TENT(source_model)
    with pytest.raises(InputError, match="NaN"):
        tent.predict(torch.full((4, 2), float("nan")))
    with pytest.raises(InputError, match="dtype"):
        tent.predict(torch.ones(4, 2, dtype=torch.long))
    with pytest.raises(InputError, match="100 inputs but 99 labels"):
        evaluate_stream(tent, torch.zeros(100, 2), torch.zeros(99, dtype=torch.long))
    with pytest.raises(ValueError, match="prior must be >= 0"):
        BNAdapt(source_model, prior=-1)
    with pytest.raises(InputError, match=r"cannot take inputs of shape \(4, 5\)"):
        tent.predict(torch.zeros(4, 5))
    with pytest.raises(InputError, match=r"cannot take inputs of shape \(10, 5\)"):
        EATA(source_model, fisher_data=torch.zeros(10, 5))
    with pytest.raises(InputError, match=r"labeled \(x, y\) batches"):
        evaluate_batches(tent, tent.model, [torch.zeros(4, 2)])


def official_eata_step(x, model, optimizer, fishers, e_margin, current_model_probs, fisher_alpha, d_margin):
    """Transcription of eata.py's forward_and_adapt_eata and update_model_probs (mr-eggplant/EATA)."""

    def update_model_probs(current, new_probs):
        if current is None:
            return None if new_probs.size(0) == 0 else new_probs.mean(0).detach()
        if new_probs.size(0) == 0:
            return current
        return (0.9 * current + (1 - 0.9) * new_probs.mean(0)).detach()

    outputs = model(x)
    entropys = -(outputs.softmax(1) * outputs.log_softmax(1)).sum(1)
    filter_ids_1 = torch.where(entropys < e_margin)
    ids1 = filter_ids_1
    ids2 = torch.where(ids1[0] > -0.1)
    entropys = entropys[filter_ids_1]
    if current_model_probs is not None:
        cosine_similarities = F.cosine_similarity(current_model_probs.unsqueeze(dim=0),
                                                  outputs[filter_ids_1].softmax(1), dim=1)  # fmt: skip
        filter_ids_2 = torch.where(torch.abs(cosine_similarities) < d_margin)
        entropys = entropys[filter_ids_2]
        ids2 = filter_ids_2
        updated_probs = update_model_probs(current_model_probs, outputs[filter_ids_1][filter_ids_2].softmax(1))
    else:
        updated_probs = update_model_probs(current_model_probs, outputs[filter_ids_1].softmax(1))
    coeff = 1 / (torch.exp(entropys.clone().detach() - e_margin))
    loss = entropys.mul(coeff).mean(0)
    if fishers is not None:
        ewc_loss = 0
        for name, param in model.named_parameters():
            if name in fishers:
                ewc_loss += fisher_alpha * (fishers[name][0] * (param - fishers[name][1]) ** 2).sum()
        loss += ewc_loss
    if x[ids1][ids2].size(0) != 0:
        loss.backward()
        optimizer.step()
    optimizer.zero_grad()
    return outputs, updated_probs


def official_fishers(model, batches):
    """Transcription of EATA's main.py Fisher estimate: CE on the model's own predictions, squared gradients."""
    fishers = {}
    for iter_, images in enumerate(batches, start=1):
        outputs = model(images)
        _, targets = outputs.max(1)
        F.cross_entropy(outputs, targets).backward()
        for name, param in model.named_parameters():
            if param.grad is not None:
                fisher = param.grad.data.clone().detach() ** 2
                if iter_ > 1:
                    fisher = fisher + fishers[name][0]
                if iter_ == len(batches):
                    fisher = fisher / iter_
                fishers.update({name: [fisher, param.data.clone().detach()]})
        model.zero_grad()
    return fishers


@pytest.mark.parametrize("with_fisher", [False, True])
def test_eata_matches_the_authors_forward_and_adapt(source_model, with_fisher):
    x, _ = target_stream()
    fisher_data = blobs(128, 5)[0] if with_fisher else None
    eata = EATA(source_model, fisher_data=fisher_data, redundancy_margin=0.5)
    reference, optimizer = official_tent_setup(source_model)
    fishers = official_fishers(reference, list(fisher_data.split(64))) if with_fisher else None
    probs, kept = None, []
    for batch in x.split(64):
        ours = eata.predict_logits(batch)
        theirs, probs = official_eata_step(batch, reference, optimizer, fishers, 0.4 * np.log(3), probs, 2000.0, 0.5)
        torch.testing.assert_close(ours, theirs.detach())
        kept.append(eata.kept)
    torch.testing.assert_close(eata.mean_prediction, probs)
    for (name, a), (_, b) in zip(eata.model.state_dict().items(), reference.state_dict().items()):
        torch.testing.assert_close(a, b, msg=name)
    assert 0 < kept[-1] < len(x)  # the filters both kept and dropped samples
    if with_fisher:
        assert set(eata.fishers) == {"1.weight", "1.bias", "4.weight", "4.bias"}


def test_eata_adapts_on_a_shift_and_says_what_is_wrong(source_model):
    x, y = target_stream()
    unadapted = float((source_model(x).argmax(1) == y).float().mean())
    result = evaluate_stream(EATA(source_model), x, y, batch_size=64)
    assert result["online_accuracy"] > unadapted + 0.3
    assert TEST_TIME_METHODS.get("eata") is EATA
    with pytest.raises(ValueError, match="entropy_margin"):
        EATA(source_model, entropy_margin=2.0)
    with pytest.raises(InputError, match="NaN"):
        EATA(source_model, fisher_data=torch.full((4, 2), float("nan")))
    eata = EATA(source_model)
    first = eata.predict_logits(x[:64])
    eata.predict(x[64:128])
    eata.reset()
    assert eata.kept == 0 and eata.mean_prediction is None
    torch.testing.assert_close(eata.predict_logits(x[:64]), first)
