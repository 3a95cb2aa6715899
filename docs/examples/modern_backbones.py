"""A timm backbone under CDAN+MCC, then with MIC (a regularizer) and SDAT (a fit option), beside no adaptation.

timm's tiny test ResNet, randomly initialized, on the offline digit shift (scikit-learn's digits -> the
MNIST-M recipe), so that it runs in seconds on a CPU: one seed, one task, a demonstration of the calls
rather than a result (the results pages hold those). With real data, name a real model, a ViT included:
TimmFeatures("vit_base_patch16_224.augreg2_in21k_ft_in1k", pretrained=True), whose weights are read from
the local Hugging Face cache.
"""

import torch

from adapt import data
from adapt.methods import create
from adapt.models import TimmFeatures

task = data.task("optdigits", "optdigits", "optdigits-m")
x_test, y_test = task.target_test[:]
for name, method, options in [
    ("no adaptation", "source_only", {}),
    ("CDAN+MCC", "cdan+mcc", {}),
    ("CDAN+MCC+MIC, SDAT", "cdan+mcc+mic", {"sam_rho": 0.02}),  # MIC: a regularizer; SDAT: fit(sam_rho=...)
]:
    torch.manual_seed(0)
    backbone = TimmFeatures("test_resnet", inputs="model")  # this benchmark's images are not ImageNet-normalized
    model = create(method, backbone, num_classes=10)
    model.fit(task.source_train, task.target_train, steps=300, batch_size=32, lr=0.05, seed=0, verbose=False,
              **options)  # fmt: skip
    print(f"{name}: target accuracy {model.score(x_test, y_test):.3f}")
