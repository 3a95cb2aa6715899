"""Writes one page per registered method (mkdocs-gen-files runs this at every docs build): its paper,
family, adaptation term, defaults and presets from the registry, its docstring, and its measured gain
from the catalogue run in ``docs/data/catalogue_methods.csv`` (written by ``adapt-bench results pages``
from the committed catalogue summary)."""

from __future__ import annotations

import csv
import inspect
import re
from pathlib import Path

import mkdocs_gen_files

from adapt.methods import METHODS, SOURCE_FREE_METHODS, TRANSFER_BASELINES
from adapt.methods.pa_backend import PYTORCH_ADAPT_METHODS
from adapt.testtime import TEST_TIME_METHODS

MEASURED = {
    row["method"]: row for row in csv.DictReader(Path("docs/data/catalogue_methods.csv").read_text().splitlines())
}
GROUPS = {
    "Unsupervised domain adaptation": METHODS,
    "Source-free adaptation": SOURCE_FREE_METHODS,
    "Test-time adaptation": TEST_TIME_METHODS,
    "Baselines with target labels": TRANSFER_BASELINES,
    "pytorch-adapt's implementations": PYTORCH_ADAPT_METHODS,
}


def slug(name: str) -> str:
    return name.replace(":", "-").replace("+", "-")


def defaults_table(cls) -> list[str]:
    defaults = getattr(cls, "hyperparameter_defaults", lambda: {})()
    if not defaults:
        return ["No hyperparameters of its own."]
    lines = ["| hyperparameter | default |", "|---|---|"]
    lines += [f"| `{name}` | `{value!r}` |" for name, value in sorted(defaults.items())]
    return lines


def measured(name: str) -> list[str]:
    row = MEASURED.get(name)
    if row is None:
        return ["Not in the catalogue suite; the [results pages](../results/index.md) list where it was measured."]
    return [
        "On the catalogue suite (the quick suite's four offline shifts, every method with a 64-unit BatchNorm "
        "bottleneck, library defaults, 3 seeds, 1000 steps; see [its results page](../results/catalogue.md) "
        "for what made the runs): gain over SourceOnly "
        f"**{row['gain over SourceOnly (points)']}** points (95% interval over the four shifts "
        f"{row['95% interval over shifts']}), negative transfer {row['negative transfer']} (failed runs "
        f"counted: {row['failed']}), above SourceOnly on {row['tasks above SourceOnly']} tasks. DANN's default "
        "discriminator was screened on these shifts: for evidence about defaults, see the "
        "[zoo-confirm page](../results/zoo-confirm.md).",
    ]


def equations(cls) -> list[str]:
    """The docstring's ``.. math::`` blocks as display math (rendered by MathJax on the site)."""
    doc = inspect.getdoc(cls) or ""
    found = []
    for match in re.finditer(r"\.\. math::(.*?)(?:\n\s*\n|\Z)", doc, re.S):
        tex = " ".join(line.strip() for line in match.group(1).strip().splitlines())
        found += ["$$", tex, "$$", ""]
    return ["## Equation", "", *found] if found else []


def page(name: str, cls, group: str) -> str:
    lines = [f"# {name}", "", f"*{group}*", ""]
    for label, attr in (("Paper", "paper"), ("Family", "family"), ("Adaptation term", "adaptation_term")):
        value = getattr(cls, attr, "")
        if value:
            lines.append(f"- **{label}**: {value}")
    needs = "labeled source data and unlabeled target data"
    if group == "Source-free adaptation":
        needs = "a model trained on the source, then unlabeled target data only"
    elif group == "Test-time adaptation":
        needs = "a trained model; it adapts while predicting a stream of target batches"
    elif group == "Baselines with target labels":
        needs = "labeled target examples (`fit(target_labeled=...)`)"
    lines += [f"- **Needs**: {needs}", "", *equations(cls), "## Defaults", "", *defaults_table(cls), ""]
    presets = getattr(cls, "presets", {})
    if presets:
        lines += ["## Presets", "", *[f"- `{p}`: `{v}`" for p, v in presets.items()], ""]
    documented = "PytorchAdaptMethod" if cls.__module__.endswith("pa_backend") else cls.__qualname__  # (made at import)
    lines += [
        "## Measured",
        "",
        *measured(name),
        "",
        "## Reference",
        "",
        f"::: {cls.__module__}.{documented}",
        "    options:",
        "      members: false",
        "      show_root_heading: false",
        "",
    ]
    return "\n".join(lines)


index = ["# Methods", "", "One page per registered method: paper, defaults, what it needs, measured results.", ""]
for group, registry in GROUPS.items():
    index += [f"## {group}", "", "| method | family | paper |", "|---|---|---|"]
    for name in registry.names():
        cls = registry.get(name)
        with mkdocs_gen_files.open(f"methods/{slug(name)}.md", "w") as f:
            f.write(page(name, cls, group))
        index.append(f"| [{name}]({slug(name)}.md) | {getattr(cls, 'family', '')} | {getattr(cls, 'paper', '')} |")
    index.append("")
with mkdocs_gen_files.open("methods/index.md", "w") as f:
    f.write("\n".join(index))
