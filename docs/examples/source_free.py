"""Adapt a trained model with target data alone: offline (SHOT) and online, while predicting (TENT, LAME),
on a shuffled and on a label-sorted stream."""

import torch

from adapt import SourceOnly, data
from adapt.models import ConvNet
from adapt.sourcefree import SHOT
from adapt.testtime import LAME, TENT, evaluate_stream
from adapt.testtime.streams import StreamConfig, stream_order

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

# the same stream sorted by label (the "correlated" setting): a batch of one class has one class's statistics
order = stream_order(yt.numpy(), StreamConfig(order="correlated"), seed=0)
for name, method in (("TENT", TENT), ("LAME", LAME)):
    sorted_stream = evaluate_stream(method(source_model), xt[order], yt[order], batch_size=64)
    print(f"{name} online, label-sorted: target accuracy {sorted_stream['online_accuracy']:.3f}")
