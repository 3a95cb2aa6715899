"""The report's stream section: online accuracy per domain read in rounds, and the figure."""

import pandas as pd
import pytest

from adapt.bench.report import round_table, stream_points, write_stream_report


def frames(tasks=("optdigits-c/clean->all-5x3",), domains=5):
    """Two methods, two seeds: 'steady' keeps 80%, 'drifting' loses 10 points a round (3 rounds of 5 domains)."""
    runs, points = [], []
    for task in tasks:
        rounds = 3 if task.endswith("x3") else 1
        for method in ("steady", "drifting"):
            for seed in (0, 1):
                run_id = f"{task}-{method}-{seed}"
                runs.append({"id": run_id, "method": method, "task": task, "seed": seed, "status": "ok",
                             "adaptation": "online"})  # fmt: skip
                for step in range(1, rounds * domains + 1):
                    r = (step - 1) // domains
                    accuracy = 0.8 if method == "steady" else 0.8 - 0.1 * r + 0.01 * seed
                    points.append({"id": run_id, "method": method, "task": task, "seed": seed, "step": step,
                                   "target_accuracy": accuracy})  # fmt: skip
    return pd.DataFrame(runs), pd.DataFrame(points)


def test_rounds_of_a_repeated_stream_and_the_change_from_first_to_last():
    runs, checkpoints = frames()
    table = round_table(stream_points(runs, checkpoints))
    task = "optdigits-c/clean->all-5x3"
    assert list(table.columns) == ["round 1", "round 2", "round 3", "change"]
    assert table.loc["drifting", "round 1"] == pytest.approx(80.5)
    assert table.loc["drifting", "change"] == pytest.approx(-20.0)
    assert table.loc["steady", "change"] == pytest.approx(0.0)
    assert table.index[0] == "drifting"  # the worst drift first
    two = round_table(stream_points(*frames(tasks=(task, "other/clean->all-5x3"))))
    assert two.index.names == ["task", "method"] and len(two) == 4


def test_only_online_runs_of_several_domains_have_a_stream_section(tmp_path):
    runs, checkpoints = frames(tasks=("optdigits-c/clean->all-5",))
    fields = write_stream_report(runs, checkpoints, tmp_path, figures=True)
    assert "stream" not in fields and (tmp_path / "stream.png").exists()  # one round: a figure, no round table
    assert write_stream_report(runs.assign(adaptation="uda"), checkpoints, tmp_path, figures=False) is None
    assert stream_points(runs, checkpoints.iloc[:0]).empty
