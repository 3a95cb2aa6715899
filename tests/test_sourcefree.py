"""Source-free adaptation: SHOT's clustering against a transcription of the authors' obtain_label, its
loss, the API (from_source on our models and on plain modules), and that no source data can reach it."""

import inspect

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.spatial.distance import cdist
from torch import nn

from adapt import SourceOnly
from adapt.errors import InputError
from adapt.losses.clustering import cosine_cluster_labels
from adapt.methods import Adapter
from adapt.models import MLP
from adapt.sourcefree import NRC, SHOT, SHOTIM, SOURCE_FREE_METHODS, AaD, split_classifier


def official_obtain_label(features: torch.Tensor, logits: torch.Tensor, threshold: int = 0) -> np.ndarray:
    """Transcription of SHOT's obtain_label (tim-learn/SHOT, image_target.py), after the forward passes."""
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
        assert frozen == (cls is not NRC), cls.__name__  # SHOT's frozen hypothesis; NRC trains its classifier
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


def test_aad_terms_are_the_papers_attraction_and_dispersion(source_model):
    from adapt.batch import Batch

    _, _, xt, _ = shifted_blobs(0)
    aad = AaD.from_source(source_model, k=2)
    aad.prepare_target(len(xt))
    g = torch.Generator().manual_seed(0)
    aad.memory.predictions = torch.rand(len(xt), 4, generator=g).softmax(1)
    index = torch.arange(10, 26)
    stored = aad.memory.predictions.clone()
    terms = aad.loss(Batch(xt[:0], torch.empty(0, dtype=torch.long), xt[index], target_index=index), 0.5)
    with torch.no_grad():
        features = F.normalize(aad.embed(xt[index]), dim=1)
        p = aad.classifier(aad.embed(xt[index])).softmax(1)
        bank = aad.memory.features  # already holds this batch's features, as in the authors' code
        similarity = features @ bank.t()
        similarity[torch.arange(16), index] = -float("inf")
        near = similarity.topk(2, dim=1).indices
        stored[index] = p  # the batch's own rows were refreshed before the lookup
        attraction = -sum(float(p[i] @ stored[j]) for i in range(16) for j in near[i]) / 16
        dispersion = sum(float(p[i] @ p[m]) for i in range(16) for m in range(16) if m != i) / 16
    assert float(terms["attraction"].detach()) == pytest.approx(attraction, rel=1e-5)
    assert float(terms["dispersion"].detach()) == pytest.approx(dispersion * (1 + 5) ** -0.75, rel=1e-5)


def official_nrc_loss(softmax_out, fea_bank, score_bank, tar_idx, K, KK):
    """Transcription of the NRC authors' train_tar.py loss (Yang et al., NeurIPS 2021; banks already updated
    with the batch). Their F.kl_div takes probabilities as its input, so each term is sum s log s - s.p."""
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
