"""Choose the guard's defaults (estimator and margin) on the TUNING half of the shift zoo.

Issue 28: the guard (:func:`adapt.guard`) keeps the source-only model when a label-free estimate says
adapting hurt by more than a margin. Its estimator and margin are chosen here, from a finished
``zoo-tune`` sweep (whose suite scores the accuracy estimators at every checkpoint), and confirmed on
``zoo-confirm`` (its results page) — never chosen there.

The rules, fixed before any confirmation run: ``estimate_accuracy``'s default estimator is the one with the
lowest mean absolute error over the last checkpoints of all runs; the guard's estimator and margin are the
pair with the lowest negative transfer rate over all adaptation runs (every method and budget pooled),
ties going to the higher mean gain over SourceOnly, then to the larger margin (the guard that intervenes less).

    adapt-bench run --suite zoo-tune --out results/zoo-tune --jobs 2
    python benchmarks/study_guard.py results/zoo-tune [--out benchmarks/results/guard_tuning.csv]

The CSV holds every pair's gain and rate (rows ``kind=guard``) and each estimator's mean absolute error
per shift (``kind=error``), with the version and commit of the runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from adapt.bench.records import read_records
from adapt.bench.report import checkpoints_frame, estimation_errors, margin_sweep

MARGINS = [0.0, 0.01, 0.02, 0.03, 0.05, 0.1]


def choose(sweep: pd.DataFrame) -> pd.Series:
    """The pair the rule above picks, from :func:`margin_sweep`'s 'guard' rows."""
    guarded = sweep[sweep["rule"] == "guard"]
    ranked = guarded.sort_values(["negative_transfer", "gain", "margin"], ascending=[True, False, False])
    return ranked.iloc[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a finished zoo-tune sweep (adapt-bench run --out)")
    parser.add_argument("--out", type=Path, help="write the tuning rows here (CSV)")
    args = parser.parse_args()
    card = json.loads((args.results / "suite.json").read_text())
    if card.get("split") != "tuning":
        raise SystemExit(f"{args.results} is suite {card.get('name')!r}, split {card.get('split')!r}: "
                         "the guard's defaults are chosen on the tuning half only")  # fmt: skip
    records = read_records(args.results)
    checkpoints = checkpoints_frame(records)
    errors = estimation_errors(checkpoints)
    sweep = margin_sweep(checkpoints, MARGINS)
    pd.set_option("display.width", 160)
    print("Mean absolute error (points) at the last checkpoint, per shift:\n", errors.round(1), "\n")
    print("Guard, pooled over methods and budgets:\n", sweep.round(3).to_string(index=False), "\n")
    print(f"estimate_accuracy's estimator: {errors['mean'].idxmin()} (mean absolute error "
          f"{errors['mean'].min():.1f} points)")  # fmt: skip
    best = choose(sweep)
    print(f"the guard: estimator {best['estimator']}, margin {best['margin']} (negative transfer "
          f"{best['negative_transfer']:.1%}, gain {best['gain']:+.2f} points)")  # fmt: skip
    if args.out:
        commits = {r["commit"]["sha"][:7] + ("+dirty" if r["commit"]["dirty"] else "") for r in records}
        provenance = {"version": sorted({r["versions"]["adapt"] for r in records}), "commit": sorted(commits)}
        rows = [sweep.assign(kind="guard"),
                errors.reset_index(names="estimator").melt(id_vars="estimator", var_name="task", value_name="mae")
                .assign(kind="error")]  # fmt: skip
        out = pd.concat(rows, ignore_index=True).assign(suite=card["name"], version=",".join(provenance["version"]),
                                                         commit=",".join(provenance["commit"]))  # fmt: skip
        out.to_csv(args.out, index=False)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
