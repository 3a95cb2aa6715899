"""SHOT: clustering against the authors' obtain_label, its loss, pseudo-labels and the evaluation view."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import shifted_blobs
from scipy.spatial.distance import cdist
from torch import nn

from adapt.losses.clustering import cosine_cluster_labels
from adapt.methods import Adapter
from adapt.sourcefree import NRC, SHOT, SHOTIM, AaD


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
