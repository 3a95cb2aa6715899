"""Source-free adaptation: SHOT's clustering against a transcription of the authors' obtain_label, its
loss, the API (from_source on our models and on plain modules), and that no source data can reach it."""

import copy
import inspect

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.spatial.distance import cdist
from torch import nn

from adapt import DANN, FineTune, SourceOnly
from adapt.errors import InputError
from adapt.losses.clustering import cosine_cluster_labels
from adapt.methods import Adapter
from adapt.models import MLP
from adapt.sourcefree import NRC, SHOT, SHOTIM, SOURCE_FREE_METHODS, AaD, split_classifier


def official_obtain_label(features: torch.Tensor, logits: torch.Tensor, threshold: int = 0) -> np.ndarray:
    """Transcription of ``obtain_label`` (tim-learn/SHOT at commit f7d555a, ``object/image_target.py``
    lines 242-298), after its forward passes over the test loader (the evaluation view)."""
    all_output = nn.Softmax(dim=1)(logits)
    _, predict = torch.max(all_output, 1)
    all_fea = torch.cat((features, torch.ones(features.size(0), 1)), 1)
    all_fea = (all_fea.t() / torch.norm(all_fea, p=2, dim=1)).t().float().numpy()
    K = all_output.size(1)
    aff = all_output.float().numpy()
    initc = aff.transpose().dot(all_fea)
    initc = initc / (1e-8 + aff.sum(axis=0)[:, None])
    cls_count = np.eye(K)[predict].sum(axis=0)
    labelset = np.where(cls_count > threshold)[0]
    dd = cdist(all_fea, initc[labelset], "cosine")
    pred_label = labelset[dd.argmin(axis=1)]
    for _ in range(1):
        aff = np.eye(K)[pred_label]
        initc = aff.transpose().dot(all_fea)
        initc = initc / (1e-8 + aff.sum(axis=0)[:, None])
        dd = cdist(all_fea, initc[labelset], "cosine")
        pred_label = labelset[dd.argmin(axis=1)]
    return pred_label.astype("int")


def shifted_blobs(seed: int, n: int = 400):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(4, 5, generator=g) * 2
    ys = torch.arange(n) % 4
    xs = centers[ys] + torch.randn(n, 5, generator=g)
    yt = torch.arange(n) % 4
    xt = (centers[yt] + torch.randn(n, 5, generator=g)) * 1.5 + 2.0
    return xs, ys, xt, yt


@pytest.fixture(scope="module")
def source_model():
    xs, ys, xt, _ = shifted_blobs(0)
    torch.manual_seed(0)
    model = SourceOnly(MLP(5, (32,)), 4, bottleneck_dim=16)
    model.fit((xs, ys), xt, steps=300, lr=0.05, seed=0, verbose=False)
    return model


@pytest.mark.parametrize("min_count", [0, 30])
def test_cluster_labels_match_the_authors_obtain_label(min_count):
    g = torch.Generator().manual_seed(0)
    features = torch.randn(300, 8, generator=g) + 3 * torch.eye(8)[torch.arange(300) % 4]
    logits = features[:, :5] * 2 + torch.randn(300, 5, generator=g)  # class 4 is rarely the argmax
    ours = cosine_cluster_labels(features, logits, min_count=min_count)
    assert np.array_equal(ours.numpy(), official_obtain_label(features, logits, threshold=min_count))


def test_shot_terms_are_information_maximization_and_pseudo_label_cross_entropy(source_model):
    _, _, xt, _ = shifted_blobs(0)
    shot = SHOT.from_source(source_model)
    shot.prepare_target(len(xt))
    shot.pseudo_labels = torch.arange(len(xt)) % 4
    from adapt.batch import Batch

    index = torch.arange(0, 64)
    batch = Batch(xt[:0], torch.empty(0, dtype=torch.long), xt[index], step=5, target_index=index)
    terms = shot.loss(batch, 0.5)
    logits = shot(xt[index])
    p = logits.softmax(1)
    im = (
        -(p * torch.log(p + 1e-5)).sum(1).mean() + (p.mean(0) * torch.log(p.mean(0) + 1e-5)).sum()
    )  # official, eps 1e-5
    torch.testing.assert_close(terms["information_maximization"], im, atol=1e-3, rtol=0)
    torch.testing.assert_close(terms["pseudo_label"], 0.3 * F.cross_entropy(logits, index % 4))


def test_no_source_data_reaches_a_source_free_method(source_model, monkeypatch):
    assert "source" not in inspect.signature(SHOT.fit).parameters
    with pytest.raises(TypeError):
        SHOT.from_source(source_model).fit(target=torch.zeros(8, 5), source=torch.zeros(8, 5))
    seen = []
    original = SHOT.loss

    def spy(self, batch, progress):
        seen.append((batch.source_x.numel(), batch.source_y.numel(), batch.target_x.shape[0]))
        return original(self, batch, progress)

    monkeypatch.setattr(SHOT, "loss", spy)
    SHOT.from_source(source_model).fit(shifted_blobs(0)[2], steps=5, batch_size=16, verbose=False)
    assert seen == [(0, 0, 16)] * 5


def test_shot_beats_the_source_model_and_leaves_it_and_its_classifier_alone(source_model):
    _, _, xt, yt = shifted_blobs(0)
    before = {k: v.clone() for k, v in source_model.state_dict().items()}
    baseline = source_model.score(xt, yt)
    for cls in (SHOT, SHOTIM, AaD, NRC):
        adapted = cls.from_source(source_model)
        history = adapted.fit(xt, steps=200, lr=0.01, seed=0, verbose=False)
        assert adapted.score(xt, yt) > baseline + 0.1, cls.__name__
        frozen = torch.equal(adapted.classifier.weight, source_model.classifier.weight)
        assert frozen == (cls in (SHOT, SHOTIM)), cls.__name__  # SHOT's frozen hypothesis; NRC and AaD train it
        assert ("pseudo_label" in history) == (cls is SHOT)
        if cls is NRC:  # its objective falls
            assert history["total"].iloc[-5:].mean() < history["total"].iloc[:5].mean()
    for k, v in source_model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_from_source_takes_plain_modules_and_says_what_it_needs():
    sequential = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 4))
    _, bottleneck, head = split_classifier(sequential)
    assert isinstance(head, nn.Linear) and head.out_features == 4 and isinstance(bottleneck, nn.Identity)
    assert head is not sequential[-1]  # copies

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.fc = nn.Linear(5, 8), nn.Linear(8, 4)

        def forward(self, x):
            return self.fc(torch.relu(self.body(x)))

    shot = SHOT.from_source(Net(), head="fc")
    assert shot.num_classes == 4 and shot(torch.zeros(2, 5)).shape == (2, 4)
    with pytest.raises(InputError, match="name it"):
        SHOT.from_source(Net())
    with pytest.raises(InputError, match="no module 'head'"):
        SHOT.from_source(Net(), head="head")
    with pytest.raises(InputError, match=r"must be an nn\.Linear"):
        SHOT.from_source(nn.Sequential(nn.Linear(5, 4), nn.ReLU()))
    with pytest.raises(RuntimeError, match="from_source"):
        SHOT(nn.Linear(5, 8), 4).fit(torch.zeros(8, 5), steps=1)
    assert SOURCE_FREE_METHODS.get("shot") is SHOT and SOURCE_FREE_METHODS.get("shot_im") is SHOTIM


def test_shot_saves_loads_and_resumes_its_pseudo_labels(source_model, tmp_path):
    xt = shifted_blobs(0)[2]
    plain = SHOT.from_source(source_model)
    plain.fit(xt, steps=40, batch_size=32, seed=1, verbose=False)
    plain.save(tmp_path / "shot.pt")
    loaded = Adapter.load(tmp_path / "shot.pt")
    assert type(loaded) is SHOT and torch.equal(loaded.pseudo_labels, plain.pseudo_labels)
    torch.testing.assert_close(loaded.predict_logits(xt), plain.predict_logits(xt))

    class Stop(Exception):
        pass

    class KillAt:
        every = 25

        def __call__(self, step, model):
            raise Stop

    path = tmp_path / "run.pt"
    with pytest.raises(Stop):
        SHOT.from_source(source_model).fit(xt, steps=40, batch_size=32, seed=1, verbose=False, callbacks=[KillAt()],
                                           checkpoint_path=path, checkpoint_every=10)  # fmt: skip
    resumed = SHOT.from_source(source_model)
    history = resumed.fit(xt, steps=40, batch_size=32, seed=1, verbose=False, checkpoint_path=path, checkpoint_every=10)
    assert history.attrs["resumed_from_step"] == 20
    for (name, a), (_, b) in zip(plain.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name


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


def test_shot_clusters_the_evaluation_view_of_the_target(source_model):
    """Their ``obtain_label`` reads the test loader: SHOT's pseudo-labels come from ``target_eval``, not
    from the (augmented) training view."""
    _, _, xt, _ = shifted_blobs(0)
    g = torch.Generator().manual_seed(1)
    augmented = xt + 3 * torch.randn(xt.shape, generator=g)  # a training view far from the evaluation one
    shot = SHOT.from_source(source_model)
    shot.fit(augmented, target_eval=xt, steps=1, batch_size=32, seed=0, verbose=False)
    features = source_model.features(xt)
    logits = source_model.classifier(source_model.bottleneck.eval()(source_model.backbone(xt))).detach()
    expected = official_obtain_label(features, logits)
    assert np.array_equal(shot.pseudo_labels.numpy(), expected)
    on_training_view = official_obtain_label(source_model.features(augmented), source_model.predict_logits(augmented))
    assert not np.array_equal(expected, on_training_view)  # the test can tell the two views apart


def test_every_fit_takes_an_evaluation_view_for_its_validators(source_model):
    """``target_eval`` reaches the selection validator (and the methods) in every fit: a UDA method's,
    a source-free method's and FineTune's."""
    xs, ys, xt, yt = shifted_blobs(0)
    labeled = (xt[:16], yt[:16])
    views = []

    class Spy:
        every = 1

        def __call__(self, step, model):
            views.append(model.target_eval_)

    DANN(MLP(5, (8,)), 4).fit((xs, ys), xt[:50], target_eval=xt, steps=1, callbacks=[Spy()], verbose=False)
    SHOT.from_source(source_model).fit(xt[:50], target_eval=xt, steps=1, callbacks=[Spy()], verbose=False)
    FineTune.from_source(source_model).fit(target_labeled=labeled, target_eval=xt, steps=1, callbacks=[Spy()],
                                           verbose=False, select_by="entropy")  # fmt: skip
    assert len(views) == 3 and all(v is xt for v in views)
    with pytest.warns(DeprecationWarning, match="select_data.*target_eval"):
        DANN(MLP(5, (8,)), 4).fit((xs, ys), xt, select_data=xt, steps=1, verbose=False)


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


def test_nrc_and_aad_fill_their_memory_from_the_target_before_the_first_step(source_model, monkeypatch):
    xt = shifted_blobs(0)[2]
    for cls in (NRC, AaD):
        adapted = cls.from_source(source_model)
        adapted.prepare_target(len(xt))
        adapted.target_data_ = xt
        adapted.fill_memory(adapted.memory)
        expected = F.normalize(source_model.features(xt), dim=1)
        torch.testing.assert_close(adapted.memory.features, expected, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(adapted.memory.predictions, source_model.predict_proba(xt), rtol=1e-4, atol=1e-5)
        calls: list[int] = []
        monkeypatch.setattr(cls, "fill_memory", lambda self, memory, calls=calls: calls.append(len(memory)))
        cls.from_source(source_model).fit(xt, steps=3, batch_size=32, seed=0, verbose=False)
        assert calls == [len(xt)], cls.__name__  # once, before the first step


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
