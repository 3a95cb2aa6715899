"""Reusable contract checks for methods, so a plugin author can test a new method in one line.

>>> from adapt.testing import check_method
>>> check_method("dann")  # silent when the method honours the contract

Each check raises ``AssertionError`` with a message naming what broke.
"""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .batch import Batch
from .methods import Adapter, create, get
from .train.engine import Stepper, TrainConfig, make_optimizer

#: The step the contract batches claim to be at: past the warm-up of step-driven schedules
#: (a warm-started gradient reversal is exactly 0 at step 0).
MID_TRAINING_STEP = 1000


def toy_problem(seed: int = 0, n: int = 32, dim: int = 6, num_classes: int = 3) -> dict[str, torch.Tensor]:
    """A small shifted classification problem: source, a target and a second, different target."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(num_classes, dim, generator=g) * 3
    ys = torch.arange(n) % num_classes
    xs = centers[ys] + torch.randn(n, dim, generator=g)
    yt = torch.arange(n) % num_classes
    xt = centers[yt] + torch.randn(n, dim, generator=g) + 1.5
    xt_other = torch.randn(n, dim, generator=g) * 4 - 2
    return {"xs": xs, "ys": ys, "xt": xt, "yt": yt, "xt_other": xt_other}


def default_backbone(dim: int = 6) -> nn.Module:
    return nn.Sequential(nn.Linear(dim, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU())


def _build(
    name: str, make_backbone: Callable[[], nn.Module], hparams: dict[str, Any], x: torch.Tensor, seed: int
) -> Adapter:
    torch.manual_seed(seed)
    model = create(name, make_backbone(), 3, **hparams)
    model.build(x[:2])
    model.prepare_target(x.shape[0])  # the toy targets have as many examples as the source
    return model


def _batch(data: dict[str, torch.Tensor], target: str) -> Batch:
    """A mid-training batch of the toy problem: the whole source and the ``target`` inputs, indexed."""
    xt = data[target]
    return Batch(data["xs"], data["ys"], xt, step=MID_TRAINING_STEP, target_index=torch.arange(xt.shape[0]))


def _one_update(model: Adapter, batch: Batch, progress: float = 0.5) -> dict[str, torch.Tensor]:
    config = TrainConfig(steps=1, lr=0.05)
    stepper = Stepper(make_optimizer(model.param_groups(), config), torch.device("cpu"), None, None)
    model.train()
    return model.update(batch, progress, stepper)


def _params(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def check_one_step_changes_parameters(
    name: str, make_backbone: Callable[[], nn.Module], hparams: dict[str, Any]
) -> None:
    data = toy_problem()
    model = _build(name, make_backbone, hparams, data["xs"], 0)
    before = _params(model)
    _one_update(model, _batch(data, "xt"))
    after = _params(model)
    for child_name, child in model.named_children():
        if child_name in model.fixed_modules:
            continue
        keys = [f"{child_name}.{k}" for k, p in child.named_parameters() if p.requires_grad]
        if keys:
            assert any(not torch.equal(before[k], after[k]) for k in keys), (
                f"{name}: one update left every parameter of '{child_name}' unchanged"
            )


def check_gradients_reach_modules(name: str, make_backbone: Callable[[], nn.Module], hparams: dict[str, Any]) -> None:
    data = toy_problem()
    model = _build(name, make_backbone, hparams, data["xs"], 0)
    model.train()
    batch = _batch(data, "xt")
    terms = model.loss_terms(batch, 0.5)
    assert "classification" in terms, f"{name}: loss() must return a 'classification' term"
    adaptation = {k: v for k, v in terms.items() if k != "classification"}
    if get(name).uses_target and get(name).adapts_by_gradient:
        assert adaptation, f"{name}: a method that uses the target must return an adaptation term"
    # The adaptation term alone must reach the feature extractor (not only the classifier).
    for term_name, term in adaptation.items():
        model.zero_grad(set_to_none=True)
        term.backward(retain_graph=True)
        grads = [p.grad for p in model.backbone.parameters() if p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads), (
            f"{name}: the '{term_name}' term sends no gradient to the backbone"
        )
    model.zero_grad(set_to_none=True)
    sum(terms.values()).backward()
    for child_name, child in model.named_children():
        params = [p for p in child.parameters() if p.requires_grad]
        if params:
            assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in params), (
                f"{name}: no gradient reaches '{child_name}'"
            )


def check_target_changes_update(name: str, make_backbone: Callable[[], nn.Module], hparams: dict[str, Any]) -> None:
    data = toy_problem()
    model_a = _build(name, make_backbone, hparams, data["xs"], 0)
    model_b = copy.deepcopy(model_a)
    _one_update(model_a, _batch(data, "xt"))
    _one_update(model_b, _batch(data, "xt_other"))
    # A method that adapts without a loss term (AdaBN: BatchNorm statistics) is judged on its buffers too.
    state_a, state_b = (
        (dict(m.named_parameters()) if get(name).adapts_by_gradient else m.state_dict()) for m in (model_a, model_b)
    )
    same = all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    if get(name).uses_target:
        assert not same, f"{name}: the update does not depend on the target batch"
    else:
        assert same, f"{name}: declares uses_target=False but the target batch changed the update"


def check_fit_predict_save_load(name: str, make_backbone: Callable[[], nn.Module], hparams: dict[str, Any]) -> None:
    data = toy_problem()
    fit_options = dict(steps=6, batch_size=8, seed=3, device="cpu", verbose=False, log_every=2)
    results = []
    for _ in range(2):
        torch.manual_seed(0)
        model = create(name, make_backbone(), 3, **hparams)
        history = model.fit((data["xs"], data["ys"]), data["xt"], **fit_options)
        results.append((model, history))
    (model, history), (twin, twin_history) = results
    assert list(history["step"]) == [2, 4, 6], f"{name}: unexpected logging steps {list(history['step'])}"
    assert history.drop(columns="seconds").equals(twin_history.drop(columns="seconds")), (
        f"{name}: same seed gave different training histories"
    )
    n = data["xt"].shape[0]
    pred = model.predict(data["xt"])
    assert pred.shape == (n,) and pred.dtype == torch.long, f"{name}: predict gave {pred.shape} {pred.dtype}"
    proba = model.predict_proba(data["xt"])
    assert proba.shape == (n, 3) and torch.allclose(proba.sum(1), torch.ones(n), atol=1e-5)
    assert model.features(data["xt"]).shape[0] == n
    assert torch.equal(model.predict_logits(data["xt"]), twin.predict_logits(data["xt"])), (
        f"{name}: same seed gave different predictions"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.pt")
        model.save(path)
        loaded = type(model).load(path, backbone=make_backbone())
        assert type(loaded) is type(model)
        assert loaded.get_params() == model.get_params()
        assert torch.equal(loaded.predict_logits(data["xt"]), model.predict_logits(data["xt"])), (
            f"{name}: predictions changed after save/load"
        )


def check_labeled_target_examples(name: str, make_backbone: Callable[[], nn.Module], hparams: dict[str, Any]) -> None:
    """``fit(target_labeled=...)`` trains on them: a positive ``target_classification`` term in the
    history (absent without them), and other weights than the same run without them."""
    data = toy_problem()
    options = dict(steps=3, batch_size=8, seed=1, device="cpu", verbose=False, log_every=1)
    runs = []
    for labeled in (None, (data["xt"][:6], data["yt"][:6])):
        torch.manual_seed(0)
        model = create(name, make_backbone(), 3, **hparams)
        runs.append((model, model.fit((data["xs"], data["ys"]), data["xt"], target_labeled=labeled, **options)))
    (plain, plain_history), (model, history) = runs
    assert "target_classification" not in plain_history, f"{name}: a target_classification term without labels"
    assert "target_classification" in history and (history["target_classification"] > 0).all(), (
        f"{name}: fit(target_labeled=...) gave no positive 'target_classification' term: {list(history.columns)}"
    )
    before, after = _params(plain), _params(model)
    assert any(not torch.equal(before[k], after[k]) for k in before), f"{name}: the labeled target changed nothing"


CONTRACT_CHECKS = (
    check_one_step_changes_parameters,
    check_gradients_reach_modules,
    check_target_changes_update,
    check_fit_predict_save_load,
    check_labeled_target_examples,
)


def check_method(
    name: str, make_backbone: Callable[[], nn.Module] = default_backbone, hparams: dict[str, Any] | None = None
) -> None:
    """Run every contract check on the registered method ``name``."""
    for check in CONTRACT_CHECKS:
        check(name, make_backbone, dict(hparams or {}))
