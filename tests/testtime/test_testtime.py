"""Test-time adaptation: TENT against a transcription of the authors' forward_and_adapt, BatchNorm
adaptation against its closed form, what each may change, reset, and a shift they undo."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from tta_models import bn_net, cnn_stream, target_stream

from adapt.errors import InputError
from adapt.testtime import (
    EATA,
    TENT,
    TEST_TIME_METHODS,
    BNAdapt,
    create,
    evaluate_batches,
    evaluate_stream,
    resolve_hyperparameters,
)


def official_tent_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor) -> torch.Tensor:
    """Transcription of ``forward_and_adapt`` and ``softmax_entropy`` (DequanWang/tent at commit e9e926a,
    ``tent.py`` lines 42-61): forward, mean entropy, backward, step, zero_grad."""
    outputs = model(x)
    loss = -(outputs.softmax(1) * outputs.log_softmax(1)).sum(1).mean(0)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return outputs


def official_tent_setup(model: nn.Module, optimizer: str = "adam") -> tuple[nn.Module, torch.optim.Optimizer]:
    """Transcription of ``configure_model`` and ``collect_params`` (DequanWang/tent at e9e926a, ``tent.py``
    lines 64-80 and 96-110: ``nn.BatchNorm2d`` layers only) and of the optimizers: ``cifar10c.py``'s
    ``setup_optimizer`` with ``cfgs/tent.yaml`` (Adam, lr 1e-3, beta 0.9, no weight decay), or
    (``optimizer="sgd"``) EATA's ``main.py`` lines 137-139 (mr-eggplant/EATA at f739b36: SGD, lr 2.5e-4,
    momentum 0.9; its ``eata.configure_model``/``collect_params`` are the same as TENT's)."""
    model = copy.deepcopy(model)
    model.train()
    model.requires_grad_(False)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.requires_grad_(True)
            m.track_running_stats = False
            m.running_mean = None
            m.running_var = None
    params = []
    for nm, m in model.named_modules():  # noqa: B007 (their loop, names unused here)
        if isinstance(m, nn.BatchNorm2d):
            for np_, p in m.named_parameters():
                if np_ in ["weight", "bias"]:
                    params.append(p)
    if optimizer == "sgd":
        return model, torch.optim.SGD(params, 0.00025, momentum=0.9)
    return model, torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999), weight_decay=0.0)


def test_tent_matches_the_authors_forward_and_adapt(source_model):
    # an MLP's BatchNorm1d layers: the authors' code adapts nothing there; their loop on our layer choice
    x, _ = target_stream()
    tent = TENT(source_model)
    reference = copy.deepcopy(source_model).train().requires_grad_(False)
    layers = [m for m in reference.modules() if isinstance(m, nn.BatchNorm1d)]
    for m in layers:
        m.requires_grad_(True)
        m.track_running_stats, m.running_mean, m.running_var = False, None, None
    optimizer = torch.optim.Adam([p for m in layers for p in (m.weight, m.bias)], lr=1e-3, betas=(0.9, 0.999))
    for batch in x.split(64):
        ours = tent.predict_logits(batch)
        theirs = official_tent_step(reference, optimizer, batch).detach()
        torch.testing.assert_close(ours, theirs)
    for (name, a), (_, b) in zip(tent.model.state_dict().items(), reference.state_dict().items()):
        torch.testing.assert_close(a, b, msg=name)


def test_tent_official_preset_is_the_authors_code_on_a_cnn(cnn_model):
    x = cnn_stream()
    tent = create("tent", cnn_model, preset="official")
    reference, optimizer = official_tent_setup(cnn_model)
    for batch in x.split(64):
        torch.testing.assert_close(tent.predict_logits(batch), official_tent_step(reference, optimizer, batch).detach())
    for (name, a), (_, b) in zip(tent.model.state_dict().items(), reference.state_dict().items()):
        torch.testing.assert_close(a, b, msg=name)


def test_tent_default_differs_from_the_authors_on_batchnorm1d_layers(cnn_model):
    """The library adapts the BatchNorm1d bottleneck too (the authors' code leaves its scale and shift as
    trained): the difference a default TENT shows against their code, and only there."""
    first, second = cnn_stream()[:128].split(64)
    tent = TENT(cnn_model)
    reference, optimizer = official_tent_setup(cnn_model)
    # both normalize the first batch by its own statistics (train mode), so they agree on it ...
    torch.testing.assert_close(tent.predict_logits(first), official_tent_step(reference, optimizer, first).detach())
    # ... and not after one step, which moved the BatchNorm1d's affine parameters in ours only
    assert not torch.allclose(tent.predict_logits(second), official_tent_step(reference, optimizer, second).detach(),
                              atol=1e-4)  # fmt: skip
    source, ours, theirs = cnn_model.state_dict(), tent.model.state_dict(), reference.state_dict()
    for key in ("8.weight", "8.bias"):
        assert torch.equal(theirs[key], source[key]) and not torch.equal(ours[key], source[key]), key
    with pytest.raises(InputError, match=r"batch_norm='2d'.*has none"):
        TENT(bn_net(), batch_norm="2d")


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


@pytest.mark.bad_input
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
    """Transcription of ``forward_and_adapt_eata``, ``softmax_entropy`` and ``update_model_probs``
    (mr-eggplant/EATA at commit f739b36, ``eata.py`` lines 72-144)."""

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
    """Transcription of the Fisher estimate in ``main.py`` (mr-eggplant/EATA at f739b36, lines 148-172): the
    cross-entropy with the model's own predictions, squared gradients averaged over the batches."""
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
def test_eata_official_preset_matches_the_authors_forward_and_adapt(cnn_model, with_fisher):
    x = cnn_stream()
    g = torch.Generator().manual_seed(5)
    fisher_data = torch.randn(128, 1, 7, 7, generator=g) if with_fisher else None
    eata = create("eata", cnn_model, preset="official", fisher_data=fisher_data, redundancy_margin=0.5)
    reference, optimizer = official_tent_setup(cnn_model, optimizer="sgd")
    fishers = official_fishers(reference, list(fisher_data.split(64))) if with_fisher else None
    probs, kept = None, []
    for batch in x.split(32):
        ours = eata.predict_logits(batch)
        theirs, probs = official_eata_step(batch, reference, optimizer, fishers, 0.4 * np.log(3), probs, 2000.0, 0.5)
        torch.testing.assert_close(ours, theirs.detach())
        kept.append(eata.kept)
    torch.testing.assert_close(eata.mean_prediction, probs)
    for (name, a), (_, b) in zip(eata.model.state_dict().items(), reference.state_dict().items()):
        torch.testing.assert_close(a, b, msg=name)
    assert 0 < kept[-1] < len(x)  # the filters both kept and dropped samples
    if with_fisher:
        assert set(eata.fishers) == {"1.weight", "1.bias", "4.weight", "4.bias"}  # the BatchNorm2d layers


def test_eata_uses_the_authors_optimizer_and_says_where_it_differs():
    eata = EATA(bn_net())
    assert isinstance(eata.optimizer, torch.optim.SGD)
    group = eata.optimizer.param_groups[0]
    assert (group["lr"], group["momentum"], group["nesterov"], group["weight_decay"]) == (2.5e-4, 0.9, False, 0)
    assert EATA.hyperparameter_defaults()["redundancy_margin"] == 0.4  # theirs 0.05: the preset's
    assert resolve_hyperparameters("eata", {"preset": "official"})["redundancy_margin"] == 0.05
    with pytest.raises(ValueError, match="no preset 'paper'; its presets: imagenet, official"):
        create("eata", bn_net(), preset="paper")


@pytest.mark.bad_input
def test_eata_adapts_on_a_shift_and_says_what_is_wrong(source_model):
    x, y = target_stream()
    unadapted = float((source_model(x).argmax(1) == y).float().mean())
    result = evaluate_stream(EATA(source_model, lr=1e-3, optimizer="adam"), x, y, batch_size=64)
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


#: The methods that augment by default with the authors' augmentation, which takes images in [0, 1].
AUGMENTING = ("cotta", "roid", "rotta")


@pytest.mark.parametrize("name", ["tent", "eata", "sar", "deyo", "roid", "cotta", "lame", "rotta"])
def test_methods_for_any_normalization_adapt_a_layer_norm_network(name):
    """A ViT-like stand-in (patch embedding, LayerNorm, no BatchNorm): the methods that say they work on any
    normalization run on it and change its LayerNorm (LAME: nothing); the BatchNorm methods refuse it."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 8, 4, stride=4), nn.Flatten(2), nn.Flatten(1), nn.LayerNorm(32), nn.GELU(),
                        nn.Linear(32, 3)).eval()  # fmt: skip
    with torch.no_grad():
        net[-1].weight.mul_(20)  # confident enough for the entropy filters to keep samples
    x = torch.randn(64, 1, 8, 8)
    if name in AUGMENTING:
        x = torch.sigmoid(x * 4)  # their augmentation takes images in [0, 1]
    # SAR: no recovery (this confident net sits below e_m = 0.2, which would reset it after every batch)
    settings = {"sar": {"lr": 0.05, "reset_threshold": 0.0}, "rotta": {"update_frequency": 32}}.get(name, {})
    adapter = create(name, net, **settings)
    for _ in range(3):
        assert adapter.predict(x).shape == (64,)
    changed = not torch.equal(adapter.model[3].weight, net[3].weight)
    assert changed == (name != "lame")


@pytest.mark.bad_input
def test_batch_statistics_need_batch_norm_layers():
    net = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 3))
    with pytest.raises(InputError, match="adapts BatchNorm layers, and the model has none"):
        create("bn_adapt", net)
    with pytest.raises(InputError, match=r"adapts normalization layers .* and the model has none"):
        create("tent", nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)))


@pytest.mark.parametrize("name", sorted(TEST_TIME_METHODS.names()))
def test_reset_puts_every_method_back_optimizer_included(cnn_model, name):
    adapter = create(name, cnn_model)
    batches = (torch.sigmoid(cnn_stream()) if name in AUGMENTING else cnn_stream()).split(64)
    torch.manual_seed(0)
    first = [adapter.predict_logits(b) for b in batches]
    adapter.reset()
    assert adapter.batches_seen == 0
    torch.manual_seed(0)
    again = [adapter.predict_logits(b) for b in batches]  # a kept Adam moment or teacher would change these
    for a, b in zip(first, again):
        torch.testing.assert_close(a, b)


#: The reference benchmark's ImageNet-C optimizers (mariodoebler/test-time-adaptation at 8b2ed63,
#: ``classification/cfgs/imagenet_c/<method>.yaml`` read with ``conf.py`` lines 122-143, built by
#: ``setup_optimizer`` of ``methods/base.py`` lines 162-181): type, lr, momentum (Adam: beta1), Nesterov.
REFERENCE_IMAGENET_OPTIMIZERS = {
    "tent": (torch.optim.SGD, 0.00025, 0.9, True),
    "eata": (torch.optim.SGD, 0.00025, 0.9, True),
    "deyo": (torch.optim.SGD, 0.00025, 0.9, True),
    "roid": (torch.optim.SGD, 0.00025, 0.9, True),
    "cotta": (torch.optim.SGD, 0.01, 0.9, True),
}


@pytest.mark.parametrize("name", sorted(REFERENCE_IMAGENET_OPTIMIZERS))
def test_imagenet_presets_build_the_reference_benchmarks_optimizer(cnn_model, name):
    kind, lr, momentum, nesterov = REFERENCE_IMAGENET_OPTIMIZERS[name]
    optimizer = create(name, cnn_model, preset="imagenet").optimizer
    group = optimizer.param_groups[0]
    assert type(optimizer) is kind and group["lr"] == lr and group["momentum"] == momentum
    assert group["nesterov"] is nesterov and group["dampening"] == 0 and group["weight_decay"] == 0


def test_cotta_imagenet_preset_is_their_imagenet_configuration(cnn_model):
    """``cfgs/imagenet_c/cotta.yaml``: RST 0.001, AP 0.1; ``methods/cotta.py`` line 40: the symmetric loss off CIFAR."""
    cotta = create("cotta", cnn_model, preset="imagenet")
    assert (cotta.restore_probability, cotta.augment_threshold, cotta.symmetric) == (0.001, 0.1, True)


def test_nesterov_needs_sgd():
    with pytest.raises(ValueError, match="nesterov applies to optimizer = 'sgd' only"):
        create("tent", bn_net(), nesterov=True)
    with pytest.raises(ValueError, match="optimizer must be 'adam' or 'sgd'"):
        create("roid", bn_net(), optimizer="rmsprop")


@pytest.mark.parametrize("name", sorted(TEST_TIME_METHODS.names()))
def test_a_deep_copy_adapts_as_the_original_and_leaves_it_alone(cnn_model, name):
    """What a compute-charged stream relies on (``measure_relative_speed`` times a copy): the copy's optimizer
    steps the copy's weights, and the original is left as it was."""
    adapter = create(name, cnn_model)
    batches = (torch.sigmoid(cnn_stream()) if name in AUGMENTING else cnn_stream()).split(64)
    adapter.predict(batches[0])
    copied = copy.deepcopy(adapter)
    before = copy.deepcopy(adapter.state_dict())
    torch.manual_seed(0)
    expected = copied.predict_logits(batches[1])
    assert all(torch.equal(a, b) for a, b in zip(adapter.model.state_dict().values(), before["model"].values()))
    torch.manual_seed(0)
    torch.testing.assert_close(adapter.predict_logits(batches[1]), expected)
