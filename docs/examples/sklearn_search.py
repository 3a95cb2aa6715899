"""A scikit-learn grid search whose scorer never reads a target label."""

import numpy as np
from sklearn.model_selection import GridSearchCV

from adapt.data import moons_shift
from adapt.sklearn import DomainAdaptationClassifier, validator_scorer

xs, ys, xt, yt = moons_shift()
X = np.concatenate([xs, xt])
y = np.concatenate([ys, -np.ones(len(xt), dtype=int)])  # -1: an unlabeled target row (SKADA's convention)
search = GridSearchCV(
    DomainAdaptationClassifier("dann", hidden=(32,), max_steps=200),
    {"method_params": [{"trade_off": 0.3}, {"trade_off": 1.0}]},
    scoring=validator_scorer("im"),  # the IM validator on each fold's target rows
    cv=2,
)
search.fit(X, y)
print("picked", search.best_params_, f"target accuracy {(search.predict(xt) == yt).mean():.3f}")
