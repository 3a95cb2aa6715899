"""Adapt a trained model with target data alone: offline (SHOT) and online, while predicting (TENT)."""

import torch

from adapt import SourceOnly, data
from adapt.models import ConvNet
from adapt.sourcefree import SHOT
from adapt.testtime import TENT, evaluate_stream

task = data.task("optdigits-c", "clean", "fog-5")  # offline: UCI digits, clean -> heavy fog
(xs, ys), (xt, yt) = task.source_train[:], task.target_test[:]
torch.manual_seed(0)
source_model = SourceOnly(ConvNet(1), 10)  # trained where the source data lives (a CNN with BatchNorm)
source_model.fit((xs, ys), xs, steps=400, lr=0.01, verbose=False)

shot = SHOT.from_source(source_model)  # a copy; SHOT.from_source(resnet, head="fc") takes any classifier
shot.fit(xt, steps=200, verbose=False)  # the target alone (no source argument), the authors' optimizer

tent = TENT(source_model)  # a copy whose BatchNorm normalizes by each test batch
stream = evaluate_stream(tent, xt, yt, batch_size=64)  # one pass: each batch predicted, then adapted on
print(f"source model: target accuracy {source_model.score(xt, yt):.3f}")
print(f"SHOT: target accuracy {shot.score(xt, yt):.3f}")
print(f"TENT online: target accuracy {stream['online_accuracy']:.3f}")
