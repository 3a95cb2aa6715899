"""pytorch-adapt's own validators, registered as ``pa:<name>`` beside ours (``pa:im`` beside ``im``).

Each one hands the model's target outputs to the pytorch-adapt validator of that name (its code, its
defaults), so a sweep can score checkpoints with both implementations and the report's validator
study compares them. Needs the ``pytorch-adapt`` extra. ``tests/reference`` checks that ours and
theirs agree on fixed inputs (k-means initialisation aside for ``class_ami``).
"""

from __future__ import annotations

from typing import ClassVar

from .._optional import require
from .validators import ModelOutputs, Validator, register_validator


class PytorchAdaptValidator(Validator):
    """Scores with ``pytorch_adapt.validators.<pa_class>`` on the target's outputs."""

    pa_class: ClassVar[str] = ""
    #: what the pytorch-adapt validator reads of ``target_train``
    reads: ClassVar[tuple[str, ...]] = ("logits",)

    def score(self, outputs: ModelOutputs) -> float:
        validators = require("pytorch_adapt.validators", "pytorch-adapt", f"validator {self.name}")
        logits = outputs.target_logits.float()
        available = {"logits": logits, "preds": logits.softmax(1), "features": outputs.target_features.float()}
        return float(getattr(validators, self.pa_class)()(target_train={k: available[k] for k in self.reads}))


def _register(name: str, pa_class: str, reads: tuple[str, ...]) -> None:
    doc = f"pytorch-adapt's ``{pa_class}`` (its implementation of our ``{name}``)."
    cls = type(f"PA_{pa_class}", (PytorchAdaptValidator,), {"name": f"pa:{name}", "pa_class": pa_class,
                                                            "reads": reads, "__doc__": doc})  # fmt: skip
    register_validator(cls)


for _name, _class, _reads in (
    ("im", "IMValidator", ("logits",)),
    ("entropy", "EntropyValidator", ("logits",)),
    ("bnm", "BNMValidator", ("logits",)),
    ("snd", "SNDValidator", ("preds",)),
    ("class_ami", "ClassClusterValidator", ("features", "logits")),
):
    _register(_name, _class, _reads)
