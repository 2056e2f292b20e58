"""Variational autoencoder: a Gaussian posterior q(z|x), a standard normal prior and a likelihood that fits
the data.

* The encoder outputs a mean and a log-variance per latent unit; training samples z with the
  reparameterisation trick (``Normal.rsample``) and the KL term comes from ``torch.distributions``.
* ``likelihood`` says what the pixels are: ``bernoulli`` on binarised digits (so BCE is a true
  log-likelihood), ``continuous_bernoulli`` or ``gaussian`` (fixed σ) on grey values. ``binarization``
  is ``threshold`` (pixel > 0.5) or ``dynamic`` (a fresh Bernoulli sample of each grey image in every
  training batch, the usual "stochastically binarised MNIST"; thresholding at evaluation, which leaves
  already-binary test digits as they are).
* The loss is the negative ELBO in nats per example: −E_q[log p(x|z)] + β·KL(q(z|x) ‖ p(z)).
* :meth:`sample`, :meth:`interpolate`, :meth:`elbo` and :meth:`iwae_nll` (importance-weighted bound,
  Burda et al. 2016) make it a generative model that can be scored.
"""

from __future__ import annotations

import math

import torch
from torch.distributions import Bernoulli, ContinuousBernoulli, Independent, Normal, kl_divergence

from aeflow.models.base import BaseAutoencoder
from aeflow.models.configs import VAEConfig
from aeflow.models.registry import register


@register("vae", config=VAEConfig)
class VariationalAutoencoder(BaseAutoencoder):
    """Gaussian-posterior VAE with reparameterised sampling."""

    cfg: VAEConfig
    undercomplete = True
    needs_flat_code = True
    generative = True

    def encoder_out_features(self) -> int:
        if self.output == "identity" and self.cfg.likelihood != "gaussian":
            raise ValueError(
                f"likelihood {self.cfg.likelihood!r} models data in [0, 1]; standardised real-valued data "
                "(spectrograms, sensor windows) needs likelihood 'gaussian'"
            )
        return 2 * self.latent_dim

    # ---------------------------------------------------------------- posterior and likelihood
    def posterior(self, x: torch.Tensor) -> Normal:
        """q(z|x) as a diagonal Gaussian."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return Normal(mu, torch.exp(0.5 * logvar.clamp(-12, 8)))

    def prior(self, like: torch.Tensor) -> Normal:
        return Normal(torch.zeros_like(like), torch.ones_like(like))

    def likelihood(self, logits: torch.Tensor) -> torch.distributions.Distribution:
        """p(x|z) over all pixels of an example (``Independent`` sums log-probabilities over pixels)."""
        dims = len(self.input_shape)
        if self.cfg.likelihood == "bernoulli":
            base: torch.distributions.Distribution = Bernoulli(logits=logits)
        elif self.cfg.likelihood == "continuous_bernoulli":
            base = ContinuousBernoulli(logits=logits)
        else:
            base = Normal(self.activate(logits), self.cfg.gaussian_sigma)
        return Independent(base, dims)

    def prepare_batch(self, x: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.cfg.likelihood != "bernoulli":
            return x, target
        if self.training and self.cfg.binarization == "dynamic":
            sample = torch.bernoulli(target)
            return (sample, sample) if x is target else (torch.bernoulli(x), sample)
        return binarize(x), binarize(target)

    # ---------------------------------------------------------------- BaseAutoencoder hooks
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean: the deterministic code used for plots and downstream tasks."""
        return self.posterior(x).loc

    def activate(self, logits: torch.Tensor) -> torch.Tensor:
        if self.cfg.likelihood == "continuous_bernoulli":
            return ContinuousBernoulli(logits=logits).mean
        if self.cfg.likelihood == "gaussian":
            return super().activate(logits)  # sigmoid for [0, 1] data, identity for standardised values
        return torch.sigmoid(logits)

    def encode_for_training(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        q = self.posterior(x)
        return q.rsample(), {"mu": q.loc, "std": q.scale}

    def recon_loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """−log p(x|z) in nats per example (one sample of z)."""
        return -self.likelihood(logits).log_prob(target).mean()

    def reg_loss(self, x: torch.Tensor, z: torch.Tensor, extras: dict[str, torch.Tensor]) -> torch.Tensor:
        q = Normal(extras["mu"], extras["std"])
        return self.cfg.beta * kl_divergence(q, self.prior(q.loc)).sum(dim=1).mean()

    # ---------------------------------------------------------------- generative API
    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` new examples: decode z ~ N(0, I) and return the likelihood's mean."""
        z = torch.randn(n, self.latent_dim, generator=generator).to(self.device)
        return self.decode(z)

    @torch.no_grad()
    def interpolate(self, a: torch.Tensor, b: torch.Tensor, steps: int = 8) -> torch.Tensor:
        """Decode ``steps`` codes on the line between the posterior means of ``a`` and ``b``."""
        za, zb = self.encode(a.unsqueeze(0)), self.encode(b.unsqueeze(0))
        t = torch.linspace(0, 1, steps, device=za.device).unsqueeze(1)
        return self.decode((1 - t) * za + t * zb)

    @torch.no_grad()
    def elbo(self, x: torch.Tensor) -> torch.Tensor:
        """Per-example ELBO (nats, β = 1, one sample) of already-prepared inputs."""
        q = self.posterior(x)
        z = q.sample()
        rec = self.likelihood(self.decode_logits(z)).log_prob(x)
        return rec - kl_divergence(q, self.prior(q.loc)).sum(dim=1)

    @torch.no_grad()
    def iwae_nll(self, x: torch.Tensor, k: int = 100, chunk: int = 25) -> torch.Tensor:
        """Per-example −log p(x) estimated with ``k`` importance samples (an upper bound on the NLL)."""
        q = self.posterior(x)
        terms = []
        for start in range(0, k, chunk):
            n = min(chunk, k - start)
            z = q.sample((n,))  # (n, N, k)
            logits = self.decode_logits(z.flatten(0, 1)).view(n, x.shape[0], *self.input_shape)
            log_px = self.likelihood(logits).log_prob(x.expand(n, *x.shape))
            log_pz = self.prior(z).log_prob(z).sum(-1)
            log_qz = q.log_prob(z).sum(-1)
            terms.append(log_px + log_pz - log_qz)
        w = torch.cat(terms, dim=0)
        return -(torch.logsumexp(w, dim=0) - math.log(k))

    def variant_diagnostics(self, x: torch.Tensor, *, iwae_samples: int = 100) -> dict[str, float]:
        """Negative ELBO and the importance-weighted NLL bound, in nats per example."""
        xb, _ = self.prepare_batch(x, x)
        return {
            "neg_elbo_nats": float(-self.elbo(xb).mean()),
            "iwae_nll_nats": float(self.iwae_nll(xb, k=iwae_samples).mean()),
            "iwae_samples": float(iwae_samples),
        }


def binarize(x: torch.Tensor) -> torch.Tensor:
    """Threshold grey values at 0.5: the fixed binarisation used for Bernoulli likelihoods."""
    return (x > 0.5).to(x.dtype)
