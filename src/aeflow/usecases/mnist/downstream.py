"""The question "Does compression speed up downstream models?": one set of classifiers, raw vs codes.

A code is only useful downstream if a model trained on it is (nearly) as accurate as one trained on the
raw input while being cheaper to fit and to run. So each feature set — raw pixels, PCA codes, AE codes of
the same examples — gets the same two classifiers (a linear one and a small MLP), and the report shows
accuracy next to wall-clock fit and predict times.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

FeatureSet = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""(train features, train labels, test features, test labels)."""


def _classifiers(seed: int, mlp_hidden: tuple[int, ...], max_iter: int, mlp_max_iter: int) -> dict[str, Any]:
    """Fresh, unfitted pipelines: standardise, then classify.

    Standardising puts every feature set on the same footing: AE codes can have any scale (a sigmoid
    code lives in [0, 1], a linear one is unbounded), and both classifiers converge faster and more
    comparably on unit-variance inputs.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return {
        "logistic regression": make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=max_iter, random_state=seed)
        ),
        f"MLP {'×'.join(map(str, mlp_hidden))}": make_pipeline(
            StandardScaler(),
            MLPClassifier(
                hidden_layer_sizes=mlp_hidden, max_iter=mlp_max_iter, early_stopping=False, random_state=seed
            ),
        ),
    }


def compare_classifiers(
    features: Mapping[str, FeatureSet],
    seed: int,
    *,
    mlp_hidden: tuple[int, ...] = (64,),
    max_iter: int = 200,
    mlp_max_iter: int = 50,
    threads: int | None = 1,
) -> list[dict[str, Any]]:
    """Fit a logistic regression and a small MLP on each feature set; one row per (features, classifier).

    ``features`` maps a name (e.g. ``"raw pixels"``, ``"PCA 10"``, ``"AE 10"``) to (X_train, y_train,
    X_test, y_test); features are flattened to 2-D. Rows hold ``features``, ``dims``, ``classifier``,
    ``accuracy`` (on the test part), ``fit_seconds`` and ``predict_seconds`` (``time.perf_counter``
    around ``fit``/``predict``; wall-clock, so compare them within one run, not across machines).

    ``max_iter=200`` (sklearn's default) lets logistic regression converge on standardised MNIST-sized
    data; ``mlp_max_iter=50`` epochs of a 64-unit MLP reach ≈ 90 % on a few thousand digits and keep the
    whole comparison within seconds. Non-convergence is silenced: the point is the same budget for all.
    ``random_state=seed`` everywhere, so accuracies are reproducible (timings, of course, are not).
    ``threads=1`` pins the BLAS/OpenMP thread pools while fitting: problems this small gain little from
    threads, and on a shared machine oversubscribed BLAS threads made the same fit 10× slower (and its
    timing meaningless). ``None`` leaves the pools as they are.
    """
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    rows: list[dict[str, Any]] = []
    with threadpool_limits(limits=threads):
        for name, (x_train, y_train, x_test, y_test) in features.items():
            xtr = np.asarray(x_train).reshape(len(x_train), -1)
            xte = np.asarray(x_test).reshape(len(x_test), -1)
            for clf_name, clf in _classifiers(seed, mlp_hidden, max_iter, mlp_max_iter).items():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    start = time.perf_counter()
                    clf.fit(xtr, np.asarray(y_train))
                    fit_seconds = time.perf_counter() - start
                start = time.perf_counter()
                pred = clf.predict(xte)
                predict_seconds = time.perf_counter() - start
                rows.append(
                    {
                        "features": name,
                        "dims": int(xtr.shape[1]),
                        "classifier": clf_name,
                        "accuracy": float(np.mean(pred == np.asarray(y_test))),
                        "fit_seconds": fit_seconds,
                        "predict_seconds": predict_seconds,
                    }
                )
    return rows
