"""Each variant's defining property, measured with real numbers on real digits.

Models are small MLPs trained a few epochs on 1,200 digits so the whole module runs in well under a
minute; the same comparisons at full size are in the pipeline's compare_variants stage.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from aeflow.evaluation.diagnostics import code_diagnostics
from aeflow.evaluation.latent import hoyer_sparsity
from aeflow.models.inference import predict
from aeflow.models.penalties import encoder_jacobian_sq_norm
from aeflow.models.registry import build_model
from aeflow.sections import AugmentParams, TrainParams
from aeflow.training import fit_autoencoder
from aeflow.usecases.mnist.corrupt import corrupt_images

COMMON = {"architecture": "mlp", "hidden_dims": [128], "batch_norm": True, "latent_dim": 16}
TRAIN = TrainParams(
    epochs=6,
    batch_size=64,
    lr=3e-3,
    progress_bar=False,
    augment=AugmentParams(rotation_deg=0, translate_px=0, scale=0),
)


@pytest.fixture(scope="module")
def data(shuffled):
    x = (shuffled[0][:, None] / 255.0).astype(np.float32)
    return {"train": x[:1200], "val": x[1200:1400], "test": x[4000:4400]}


def train(variant, data, train_x=None, train_target=None, **options):
    section = {**COMMON, "variant": variant, **options}
    x = data["train"] if train_x is None else train_x
    return fit_autoencoder(section, x, None, TRAIN, seed=0, train_target=train_target).model


@pytest.fixture(scope="module")
def vanilla(data):
    return train("vanilla", data)


def diag(model, data):
    return code_diagnostics(model, data["test"], jacobian_examples=128, iwae_samples=100, iwae_examples=200)


# -------------------------------------------------------------------------------------------- sparse
CONV = {"architecture": "conv", "channels": [16, 32], "hidden_dims": [128]}


@pytest.fixture(scope="module")
def conv_vanilla(data):
    return train("vanilla", data, **CONV)


def test_sparse_mean_activation_near_rho_and_sparser_than_vanilla(data, conv_vanilla):
    rho = 0.05
    sparse = train("sparse", data, **CONV, latent_dim=64, rho=rho, sparsity_weight=0.01)
    d, v = diag(sparse, data), diag(conv_vanilla, data)
    assert abs(d["mean_activation"] - rho) <= 0.25 * rho, d["mean_activation"]
    assert d["hoyer_sparsity"] > v["hoyer_sparsity"] + 0.03, (d["hoyer_sparsity"], v["hoyer_sparsity"])
    assert d["fraction_active"] < 0.1


def test_sparse_allows_a_code_larger_than_the_input():
    model = build_model({**COMMON, "variant": "sparse", "latent_dim": 1000}, [1, 28, 28])
    assert model.latent_dim == 1000 > 784
    codes = model.encode(torch.rand(3, 1, 28, 28))
    assert codes.shape == (3, 1000) and codes.min() > 0 and codes.max() < 1


def test_l1_penalty_is_the_mean_code_norm():
    model = build_model(
        {**COMMON, "variant": "sparse", "sparsity": "l1", "sparsity_weight": 0.5}, [1, 28, 28]
    )
    z = torch.rand(4, 16)
    assert float(model.reg_loss(torch.zeros(4, 1, 28, 28), z, {})) == pytest.approx(
        0.5 * float(z.sum(1).mean())
    )


def test_hoyer_measure_extremes():
    assert hoyer_sparsity(np.ones((3, 8))) == pytest.approx(0.0)
    assert hoyer_sparsity(np.eye(8)) == pytest.approx(1.0)


# -------------------------------------------------------------------------------------------- contractive
def test_jacobian_norm_is_exact_against_the_closed_form_of_a_sigmoid_layer():
    torch.manual_seed(0)
    layer = torch.nn.Linear(20, 5)
    x = torch.rand(7, 20)

    def encode(t):
        return torch.sigmoid(layer(t))

    h = encode(x).detach()
    closed = ((h * (1 - h)) ** 2 @ (layer.weight**2).sum(dim=1, keepdim=True)).squeeze(1)
    assert torch.allclose(encoder_jacobian_sq_norm(encode, x), closed, rtol=1e-5)


def test_contractive_codes_move_less_than_vanilla(data, vanilla):
    cae = train("contractive", data, contractive_weight=0.05, jacobian_examples=0)
    d, v = diag(cae, data), diag(vanilla, data)
    assert d["jacobian_norm"] < 0.5 * v["jacobian_norm"], (d["jacobian_norm"], v["jacobian_norm"])
    assert d["perturbation_sensitivity"] < v["perturbation_sensitivity"]


# -------------------------------------------------------------------------------------------- denoising
def test_denoising_beats_vanilla_on_held_out_noisy_digits(shuffled):
    """Gaussian σ = 0.5: the denoising AE halves the clean-target error of a vanilla AE fed noisy digits."""
    x = (shuffled[0][:, None] / 255.0).astype(np.float32)
    clean_train, clean_test = x[:2400], x[4000:4400]
    rng = np.random.default_rng(0)
    noisy_train = corrupt_images(clean_train, "gaussian", 0.5, rng)
    noisy_test = corrupt_images(clean_test, "gaussian", 0.5, rng)
    params = TRAIN.model_copy(update={"epochs": 8})
    section = {**CONV, "latent_dim": 10}
    vanilla = fit_autoencoder({**section, "variant": "vanilla"}, clean_train, None, params, seed=0).model
    dae = fit_autoencoder(
        {**section, "variant": "denoising"}, noisy_train, None, params, seed=0, train_target=clean_train
    ).model

    def mse(model):
        return float(np.mean((predict(model, noisy_test) - clean_test) ** 2))

    noisy = float(np.mean((noisy_test - clean_test) ** 2))
    assert mse(dae) < 0.5 * mse(vanilla) and mse(dae) < 0.5 * noisy, (mse(dae), mse(vanilla), noisy)


def test_noise_is_deterministic_and_at_the_requested_level(data):
    x = data["test"]
    a = corrupt_images(x, "masking", 0.3, np.random.default_rng(5))
    b = corrupt_images(x, "masking", 0.3, np.random.default_rng(5))
    assert a.tobytes() == b.tobytes()
    assert ((a == 0) & (x > 0)).sum() / (x > 0).sum() == pytest.approx(0.3, abs=0.01)
    sp = corrupt_images(x, "salt_pepper", 0.2, np.random.default_rng(1))
    changed = np.isin(sp, [0.0, 1.0]) & (sp != x)
    assert 0.1 < changed.mean() < 0.2  # 20 % hit, about half of them already had that value
    g = corrupt_images(np.full((200, 1, 28, 28), 0.5, np.float32), "gaussian", 0.1, np.random.default_rng(2))
    assert g.std() == pytest.approx(0.1, rel=0.02)


# -------------------------------------------------------------------------------------------- VAE
@pytest.fixture(scope="module")
def vae(data):
    return train("vae", data, latent_dim=8)


def test_vae_kl_is_the_closed_form(vae):
    mu, std = torch.randn(5, 8), torch.rand(5, 8) + 0.1
    analytic = 0.5 * (mu**2 + std**2 - 1 - torch.log(std**2)).sum(1).mean()
    assert float(vae.reg_loss(None, None, {"mu": mu, "std": std})) == pytest.approx(float(analytic), rel=1e-5)
    assert float(kl_divergence(Normal(mu, std), Normal(0, 1)).sum(1).mean()) == pytest.approx(float(analytic))


def test_vae_elbo_and_importance_weighted_nll(vae, data):
    torch.manual_seed(0)
    x, _ = vae.prepare_batch(torch.from_numpy(data["test"][:200]), torch.from_numpy(data["test"][:200]))
    assert set(torch.unique(x).tolist()) <= {0.0, 1.0}  # Bernoulli likelihood on binarised digits
    neg_elbo = float(-vae.elbo(x).mean())
    nll = float(vae.iwae_nll(x, k=100).mean())
    assert 60 < nll < neg_elbo < 250  # nats per digit; the K=100 bound is tighter than the ELBO
    d = diag(vae, data)
    assert d["iwae_samples"] == 100 and d["iwae_nll_nats"] < d["neg_elbo_nats"]


def test_vae_sampling_and_interpolation(vae, data):
    samples = vae.sample(6, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (6, 1, 28, 28) and samples.min() >= 0 and samples.max() <= 1
    a, b = torch.from_numpy(data["test"][0]), torch.from_numpy(data["test"][1])
    path = vae.interpolate(a, b, steps=5)
    assert path.shape == (5, 1, 28, 28)
    assert torch.allclose(path[0], vae(a[None])[0], atol=1e-5) and torch.allclose(
        path[-1], vae(b[None])[0], atol=1e-5
    )


@pytest.mark.parametrize("likelihood", ["continuous_bernoulli", "gaussian"])
def test_vae_grey_value_likelihoods_train(likelihood, data):
    model = build_model({**COMMON, "variant": "vae", "likelihood": likelihood}, [1, 28, 28])
    x = torch.from_numpy(data["train"][:64])
    assert torch.equal(model.prepare_batch(x, x)[1], x)  # grey values are kept, not binarised
    loss, logs = model.model_step((x, x))
    assert torch.isfinite(loss) and float(logs["reg"].detach()) >= 0
