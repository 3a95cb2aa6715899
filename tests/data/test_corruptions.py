"""The offline corruption benchmark: 15 corruptions x 5 severities on UCI digits, deterministic."""

import itertools

import numpy as np
import pytest

from adapt.data import task
from adapt.data.benchmark import BENCHMARKS
from adapt.data.corruptions import (
    CORRUPTIONS,
    OPTDIGITS_C_DOMAINS,
    SEQUENCE_DOMAINS,
    corrupt,
    domain_sequence,
    parse_domain,
)
from adapt.data.synthetic import _optdigits

HENDRYCKS_DIETTERICH_15 = {
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur", "snow",
    "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
}  # fmt: skip


@pytest.fixture(scope="module")
def digits():
    return _optdigits(0)[0][:120]


def test_the_fifteen_corruptions_at_five_severities():
    assert set(CORRUPTIONS) == HENDRYCKS_DIETTERICH_15
    assert len(OPTDIGITS_C_DOMAINS) == 1 + 15 * 5 + len(SEQUENCE_DOMAINS)
    assert parse_domain("fog-3") == ("fog", 3) and parse_domain("clean") is None
    assert parse_domain("elastic_transform-5") == ("elastic_transform", 5)
    for bad in ("fog-6", "fog", "mist-2"):
        with pytest.raises(ValueError, match="unknown optdigits-c domain"):
            parse_domain(bad)


@pytest.mark.parametrize("name", sorted(HENDRYCKS_DIETTERICH_15))
def test_each_corruption_is_deterministic_in_range_and_grows_with_severity(digits, name):
    distances = []
    for severity in range(1, 6):
        out = corrupt(digits, name, severity, seed=3)
        assert out.shape == digits.shape and out.dtype == np.float32
        assert out.min() >= 0.0 and out.max() <= 1.0
        assert np.array_equal(out, corrupt(digits, name, severity, seed=3))
        distances.append(float(np.abs(out - digits).mean()))
    assert all(b > a for a, b in itertools.pairwise(distances)), distances
    assert distances[0] > 0.005  # severity 1 changes the images


@pytest.mark.bad_input
def test_unknown_corruption_or_severity_is_an_error(digits):
    with pytest.raises(ValueError, match="unknown corruption 'mist'"):
        corrupt(digits, "mist", 1)
    with pytest.raises(ValueError, match="severity must be 1 to 5"):
        corrupt(digits, "fog", 0)


def test_the_benchmark_builds_clean_source_and_corrupted_target():
    assert BENCHMARKS["optdigits-c"].offline
    clean = task("optdigits-c", "clean", "fog-1")  # the mildest fog stands in for clean (source != target)
    foggy = task("optdigits-c", "clean", "fog-5")
    assert foggy.input_shape == (1, 16, 16) and foggy.num_classes == 10
    xs_clean, xs_foggy = clean.source_train[:][0], foggy.source_train[:][0]
    assert np.array_equal(np.asarray(xs_clean), np.asarray(xs_foggy))  # the same clean source half
    xt_clean, xt_foggy = np.asarray(clean.target_test[:][0]), np.asarray(foggy.target_test[:][0])
    assert xt_clean.shape == xt_foggy.shape and not np.array_equal(xt_clean, xt_foggy)
    assert xt_foggy.min() >= -1.0 and xt_foggy.max() <= 1.0


def test_sequence_targets_stream_the_corruptions_in_order():
    assert domain_sequence("fog-5") is None and domain_sequence("clean") is None
    assert domain_sequence("all-3") == [f"{name}-3" for name in CORRUPTIONS]
    assert domain_sequence("all-5x10") == domain_sequence("all-5") * 10
    gradual = domain_sequence("gradual")
    assert len(gradual) == 15 * 9 and gradual[:9] == [f"gaussian_noise-{s}" for s in (1, 2, 3, 4, 5, 4, 3, 2, 1)]
    single, sequence = task("optdigits-c", "clean", "fog-5"), task("optdigits-c", "clean", "all-5")
    n = len(single.target_test)
    assert len(sequence.target_test) == 15 * n and "target_domains" not in single.extra
    domains = sequence.extra["target_domains"]
    assert domains.names == domain_sequence("all-5") and np.array_equal(np.bincount(domains.ids), [n] * 15)
    fog = domains.names.index("fog-5")
    x, y = sequence.target_test[:]
    assert np.array_equal(np.asarray(x[fog * n : (fog + 1) * n]), np.asarray(single.target_test[:][0]))
    assert np.array_equal(np.asarray(y[:n]), np.asarray(single.target_test[:][1]))


@pytest.mark.bad_input
def test_a_sequence_is_a_target_not_a_source():
    with pytest.raises(ValueError, match="'all-5' is a sequence of corruptions: a target, not a source"):
        task("optdigits-c", "all-5", "clean")
