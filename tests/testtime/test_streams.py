"""Stream orders against a transcription of the reference benchmark's label-correlated sampler."""

import random
import time

import numpy as np
import pytest

from adapt.testtime.streams import StreamConfig, label_correlated_order, stream_order


def sort_by_dirichlet(delta_dirichlet: float, samples: list):
    """Transcription of ``sort_by_dirichlet`` (mariodoebler/test-time-adaptation at 8b2ed63,
    ``classification/datasets/data_loading.py`` lines 329-386, adapted there from NOTE); the global NumPy
    generator as theirs, the logging of the statistics left out."""
    N = len(samples)
    samples_sorted = []
    class_labels = np.array([val[1] for val in samples])
    num_classes = int(np.max(class_labels) + 1)
    dirichlet_numchunks = num_classes
    time_start = time.time()
    time_duration = 120
    min_size = -1
    min_size_thresh = 10
    while min_size < min_size_thresh:
        idx_batch = [[] for _ in range(dirichlet_numchunks)]
        idx_batch_cls = [[] for _ in range(dirichlet_numchunks)]
        for k in range(num_classes):
            idx_k = np.where(class_labels == k)[0]
            np.random.shuffle(idx_k)
            proportions = np.random.dirichlet(np.repeat(delta_dirichlet, dirichlet_numchunks))
            proportions = np.array(
                [p * (len(idx_j) < N / dirichlet_numchunks) for p, idx_j in zip(proportions, idx_batch)]
            )
            proportions = proportions / proportions.sum()
            proportions = (np.cumsum(proportions) * len(idx_k)).astype(int)[:-1]
            idx_batch = [idx_j + idx.tolist() for idx_j, idx in zip(idx_batch, np.split(idx_k, proportions))]
            min_size = min([len(idx_j) for idx_j in idx_batch])
            for idx_j, idx in zip(idx_batch_cls, np.split(idx_k, proportions)):
                idx_j.append(idx)
        if time.time() > time_start + time_duration:
            raise ValueError(
                f"Could not correlated sequence using dirichlet value '{delta_dirichlet}'. Try other value!"
            )
    for chunk in idx_batch_cls:
        cls_seq = list(range(num_classes))
        np.random.shuffle(cls_seq)
        for cls in cls_seq:
            idx = chunk[cls]
            samples_sorted.extend([samples[i] for i in idx])
    return samples_sorted


def shuffled_samples(n=900, classes=10, seed=0):
    samples = [(f"img{i}.png", i % classes) for i in range(n)]
    random.Random(seed).shuffle(samples)  # theirs: random.shuffle(test_dataset.samples) first
    return samples


@pytest.mark.parametrize("delta", [0.1, 1.0, 0.01])
def test_label_correlated_order_is_the_reference_benchmarks(delta):
    samples = shuffled_samples()
    np.random.seed(5)
    theirs = sort_by_dirichlet(delta, list(samples))
    ours = label_correlated_order(np.array([s[1] for s in samples]), delta, np.random.RandomState(5))
    assert [samples[i] for i in ours] == theirs


def test_delta_zero_sorts_by_label_as_their_correlated_setting():
    samples = shuffled_samples()
    theirs = sorted(samples, key=lambda x: x[1])  # data_loading.py lines 229-232
    ours = label_correlated_order(np.array([s[1] for s in samples]), 0.0, np.random.RandomState(0))
    assert [samples[i] for i in ours] == theirs


def run_lengths(labels: np.ndarray) -> float:
    return len(labels) / (1 + np.count_nonzero(np.diff(labels)))


def test_smaller_delta_gives_longer_runs_of_one_class_and_every_example_once():
    labels = np.arange(900) % 10
    runs = {}
    for order, delta in (("shuffled", 0.0), ("correlated", 10.0), ("correlated", 0.1), ("correlated", 0.0)):
        index = stream_order(labels, StreamConfig(order=order, dirichlet_delta=delta), seed=1)
        assert sorted(index.tolist()) == list(range(900))
        runs[(order, delta)] = run_lengths(labels[index])
    assert runs[("shuffled", 0.0)] < 1.5 < runs[("correlated", 10.0)] < runs[("correlated", 0.1)]
    assert runs[("correlated", 0.0)] == 90  # ten runs, one per class
    same = stream_order(labels, StreamConfig(order="correlated", dirichlet_delta=0.1), seed=1)
    assert np.array_equal(same, stream_order(labels, StreamConfig(order="correlated", dirichlet_delta=0.1), seed=1))


@pytest.mark.bad_input
def test_an_impossible_correlated_order_says_what_to_change():
    with pytest.raises(ValueError, match="needs 10 examples per class chunk: 30 examples, 10 classes"):
        label_correlated_order(np.arange(30) % 10, 0.1, np.random.RandomState(0))
    with pytest.raises(ValueError, match=r"after 1000 draws .*try a larger dirichlet_delta"):
        label_correlated_order(np.arange(100) % 10, 1e-4, np.random.RandomState(0))
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        StreamConfig(batch_size=0)


def test_a_sequence_stream_visits_each_domain_in_turn_and_mixed_interleaves_them():
    labels, domains = np.arange(300) % 3, np.repeat([2, 0, 1], 100)  # stretches in the target's order
    sequence = stream_order(labels, StreamConfig(), seed=0, domains=domains)
    assert sorted(sequence.tolist()) == list(range(300))
    assert domains[sequence].tolist() == [2] * 100 + [0] * 100 + [1] * 100
    sorted_within = stream_order(labels, StreamConfig(order="correlated"), seed=0, domains=domains)
    for stretch in np.split(labels[sorted_within], 3):  # each domain sorted by label within
        assert stretch.tolist() == sorted(stretch.tolist())
    mixed = stream_order(labels, StreamConfig(domains="mixed"), seed=0, domains=domains)
    assert len(set(domains[mixed][:30].tolist())) == 3


def test_evaluate_batches_scores_each_domain_of_a_stream():
    import torch

    from adapt.testtime import evaluate_batches

    model = torch.nn.Linear(1, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[-1.0], [1.0]]))
        model.bias.zero_()
    x = torch.tensor([[1.0], [1.0], [-1.0], [1.0], [-1.0], [-1.0]])  # predicts 1, 1, 0, 1, 0, 0
    y = torch.tensor([1, 0, 0, 1, 1, 0])
    d = torch.tensor([5, 5, 5, 7, 7, 5])
    batches = [(x[:4], y[:4], d[:4]), (x[4:], y[4:], d[4:])]
    result = evaluate_batches(None, model, batches)
    assert result["online_accuracy"] == 4 / 6
    assert result["online_accuracy_per_domain"] == {5: 3 / 4, 7: 1 / 2}  # in the order they arrive
    assert "online_accuracy_per_domain" not in evaluate_batches(None, model, [(x, y)])


def test_examples_per_domain_streams_a_subset_of_each_domain_drawn_by_the_seed():
    labels, domains = np.arange(300) % 3, np.repeat([2, 0, 1], 100)
    sequence = stream_order(labels, StreamConfig(examples_per_domain=10), seed=0, domains=domains)
    assert len(set(sequence.tolist())) == 30 and domains[sequence].tolist() == [2] * 10 + [0] * 10 + [1] * 10
    assert sorted(sequence.tolist()) != [*range(10), *range(100, 110), *range(200, 210)]  # not the first ten
    other_seed = stream_order(labels, StreamConfig(examples_per_domain=10), seed=1, domains=domains)
    assert set(other_seed.tolist()) != set(sequence.tolist())
    mixed = stream_order(labels, StreamConfig(examples_per_domain=10, domains="mixed"), seed=0, domains=domains)
    assert np.bincount(domains[mixed]).tolist() == [10, 10, 10] and len(set(domains[mixed][:10].tolist())) > 1
    single = stream_order(labels, StreamConfig(examples_per_domain=50), seed=1)
    assert len(set(single.tolist())) == 50
    # all examples, as before the setting existed: the seed's permutation of the whole target
    assert stream_order(labels, StreamConfig(), seed=1).tolist() == np.random.RandomState(1).permutation(300).tolist()
    with pytest.raises(ValueError, match="examples_per_domain must be a positive integer"):
        StreamConfig(examples_per_domain=0)
    with pytest.raises(ValueError, match="charge_compute must be true or false"):
        StreamConfig(charge_compute="yes")


def test_a_compute_charged_stream_adapts_on_one_batch_in_k():
    import torch

    from adapt.testtime import TestTimeAdapter, evaluate_batches
    from adapt.testtime.streams import measure_relative_speed

    class Slow(TestTimeAdapter):
        """Adapts by adding 1 to the bias of its copy, slowly."""

        def __init__(self, model):
            super().__init__(model)
            self._snapshot()

        def adapt_and_predict(self, x):
            time.sleep(0.02)
            with torch.no_grad():
                self.model.bias.add_(1.0)
            return self.model(x)

    model = torch.nn.Linear(2, 3)
    slow = Slow(model)
    speed = measure_relative_speed(slow, torch.randn(8, 2))
    assert speed >= 10 and slow.batches_seen == 0  # timed on a copy
    batches = [(torch.randn(4, 2), torch.zeros(4, dtype=torch.long)) for _ in range(7)]
    evaluate_batches(slow, model, batches, relative_speed=3)
    assert slow.batches_seen == 3  # batches 0, 3 and 6; the others predicted by the latest model
    torch.testing.assert_close(slow.model.bias, model.bias + 3)
    with pytest.raises(ValueError, match="relative_speed must be a positive integer"):
        evaluate_batches(slow, model, batches, relative_speed=0)
