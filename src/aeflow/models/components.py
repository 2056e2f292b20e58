"""Plain ``nn.Module`` encoders and decoders, shared by every variant.

Encoders map an input of shape ``input_shape`` to a flat code of ``latent_dim`` features (no activation:
variants decide what the code means, e.g. a sigmoid for sparsity or two heads for a VAE). Decoders map a
code back to *logits* of the input's shape; the model applies the output activation, so a BCE loss can use
the numerically stable ``binary_cross_entropy_with_logits``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn


def _act() -> nn.Module:
    return nn.GELU()


def _mlp(sizes: Sequence[int], batch_norm: bool, last_activation: bool) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or last_activation:
            if batch_norm:
                layers.append(nn.BatchNorm1d(b))
            layers.append(_act())
    return layers


class MLPEncoder(nn.Module):
    """Flatten → fully connected layers → code."""

    def __init__(
        self,
        input_shape: Sequence[int],
        hidden_dims: Sequence[int],
        latent_dim: int,
        batch_norm: bool = True,
        out_features: int | None = None,
    ) -> None:
        super().__init__()
        size = math.prod(input_shape)
        self.net = nn.Sequential(
            nn.Flatten(), *_mlp([size, *hidden_dims, out_features or latent_dim], batch_norm, False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MLPDecoder(nn.Module):
    """Code → fully connected layers → logits reshaped to ``output_shape``."""

    def __init__(
        self,
        output_shape: Sequence[int],
        hidden_dims: Sequence[int],
        latent_dim: int,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        self.output_shape = tuple(output_shape)
        self.net = nn.Sequential(
            *_mlp([latent_dim, *reversed(hidden_dims), math.prod(output_shape)], batch_norm, False)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, *self.output_shape)


def _conv_block(
    cin: int,
    cout: int,
    stride: int,
    batch_norm: bool,
    transpose: bool = False,
    output_padding: int | tuple[int, int] = 0,
) -> list[nn.Module]:
    if transpose:
        conv: nn.Module = nn.ConvTranspose2d(cin, cout, 3, stride, 1, output_padding=output_padding)
    else:
        conv = nn.Conv2d(cin, cout, 3, stride, 1)
    return [conv, *([nn.BatchNorm2d(cout)] if batch_norm else []), _act()]


def conv_sizes(size: int, stages: int) -> list[int]:
    """Spatial sizes after each stride-2 stage (``(s + 1) // 2``), input size first."""
    sizes = [size]
    for _ in range(stages):
        sizes.append((sizes[-1] + 1) // 2)
    return sizes


class ConvEncoder2d(nn.Module):
    """Stride-2 convolution stages (each optionally followed by same-size blocks) → FC layers → code."""

    def __init__(
        self,
        input_shape: Sequence[int],
        channels: Sequence[int],
        blocks_per_stage: int,
        hidden_dims: Sequence[int],
        latent_dim: int,
        batch_norm: bool = True,
        out_features: int | None = None,
    ) -> None:
        super().__init__()
        cin, height, width = input_shape
        layers: list[nn.Module] = []
        for cout in channels:
            layers += _conv_block(cin, cout, 2, batch_norm)
            for _ in range(blocks_per_stage):
                layers += _conv_block(cout, cout, 1, batch_norm)
            cin = cout
        self.features = nn.Sequential(*layers)
        h, w = conv_sizes(height, len(channels))[-1], conv_sizes(width, len(channels))[-1]
        self.feature_shape = (cin, h, w)
        self.head = nn.Sequential(
            nn.Flatten(), *_mlp([cin * h * w, *hidden_dims, out_features or latent_dim], False, False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class ConvDecoder2d(nn.Module):
    """Code → FC layers → feature map → stride-2 transposed convolutions back to ``output_shape``."""

    def __init__(
        self,
        output_shape: Sequence[int],
        channels: Sequence[int],
        blocks_per_stage: int,
        hidden_dims: Sequence[int],
        latent_dim: int,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        cout_final, height, width = output_shape
        hs, ws = conv_sizes(height, len(channels)), conv_sizes(width, len(channels))
        self.feature_shape = (channels[-1], hs[-1], ws[-1])
        self.head = nn.Sequential(
            *_mlp([latent_dim, *reversed(hidden_dims), math.prod(self.feature_shape)], False, True)
        )
        layers: list[nn.Module] = []
        rev = list(reversed(channels))
        for i, cin in enumerate(rev):
            for _ in range(blocks_per_stage):
                layers += _conv_block(cin, cin, 1, batch_norm)
            target_h, target_w = hs[-2 - i], ws[-2 - i]
            # (s + 1) // 2 loses whether s was odd: output_padding restores the exact size, per axis,
            # so spectrogram patches (bins × frames) need not be square.
            pad = (target_h - (2 * hs[-1 - i] - 1), target_w - (2 * ws[-1 - i] - 1))
            if i == len(rev) - 1:
                layers.append(nn.ConvTranspose2d(cin, cout_final, 3, 2, 1, output_padding=pad))
            else:
                layers += _conv_block(cin, rev[i + 1], 2, batch_norm, transpose=True, output_padding=pad)
        self.features = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.features(self.head(z).view(-1, *self.feature_shape))
