"""A few labeled target examples: fine-tune a source model, or train MME, against the target labels alone."""

import torch

from adapt import MME, FineTune, SourceOnly, TargetOnly, data
from adapt.models import ConvNet

# 5 labeled target examples per class, drawn (seeded, stratified) from the target's training split; the
# inductive protocol keeps a disjoint test split to score on, the same at every number of labels
task = data.few_shot_split(data.task("optdigits", "optdigits", "optdigits-m", protocol="inductive"), shots=5)
source, target, labeled = task.source_train[:], task.target_train[:][0], task.target_labeled[:]
scored = task.target_test[:]

torch.manual_seed(0)
source_model = SourceOnly(ConvNet(3), 10)
source_model.fit(source, target, steps=500, lr=0.05, verbose=False)
finetuned = FineTune.from_source(source_model)  # a copy; the source model is left as it is
finetuned.fit(target_labeled=labeled, steps=250, lr=0.01, verbose=False)
torch.manual_seed(0)
mme = MME(ConvNet(3), 10)
mme.fit(source, target, target_labeled=labeled, steps=500, lr=0.01, verbose=False)
torch.manual_seed(0)
alone = TargetOnly(ConvNet(3), 10)
alone.fit(target_labeled=labeled, steps=500, lr=0.05, verbose=False)
for name, model in (("source only", source_model), ("FineTune", finetuned), ("MME", mme), ("TargetOnly", alone)):
    print(f"{name}: target accuracy {model.score(*scored):.3f}")
