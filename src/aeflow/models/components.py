"""Plain ``nn.Module`` encoders and decoders, shared by every variant.

Encoders map an input of shape ``input_shape`` to a flat code of ``latent_dim`` features (no activation:
variants decide what the code means, e.g. a sigmoid for sparsity or two heads for a VAE). Decoders map a
code back to *logits* of the input's shape; the model applies the output activation, so a BCE loss can use
the numerically stable ``binary_cross_entropy_with_logits``.

Images and spectrogram patches are ``(C, H, W)`` (:class:`ConvEncoder2d`); windows of multivariate time
series are ``(C, T)``, sensors by time steps (:class:`ConvEncoder1d`, :class:`LSTMEncoder`). The one
exception to the flat code is :class:`TemporalConvEncoder`: a code per time step, ``(latent_dim, T)``.
"""

from __future__ import annotations

import contextlib
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


_CONV: dict[int, tuple[type[nn.Module], type[nn.Module], type[nn.Module]]] = {
    1: (nn.Conv1d, nn.ConvTranspose1d, nn.BatchNorm1d),
    2: (nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d),
}


def _conv_block(
    cin: int,
    cout: int,
    stride: int,
    batch_norm: bool,
    transpose: bool = False,
    output_padding: int | tuple[int, ...] = 0,
    dims: int = 2,
) -> list[nn.Module]:
    """Kernel-3 convolution (halving the size at stride 2) → optional BatchNorm → GELU, in 1-D or 2-D."""
    conv_cls, transpose_cls, norm_cls = _CONV[dims]
    if transpose:
        conv: nn.Module = transpose_cls(cin, cout, 3, stride, 1, output_padding=output_padding)
    else:
        conv = conv_cls(cin, cout, 3, stride, 1)
    return [conv, *([norm_cls(cout)] if batch_norm else []), _act()]


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


class ConvEncoder1d(nn.Module):
    """Windows ``(C, T)`` → stride-2 Conv1d stages over time (sensors are the input channels) → FC → code.

    The 1-D twin of :class:`ConvEncoder2d`: each stage halves the time axis (``(t + 1) // 2``) and may be
    followed by ``blocks_per_stage`` same-length blocks; the flattened features go through ``hidden_dims``
    to ``out_features or latent_dim`` units. Sensors are channels rather than a second spatial axis because
    they have no order: a kernel sliding across sensors would assume neighbouring sensors are related.
    """

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
        cin, length = input_shape
        layers: list[nn.Module] = []
        for cout in channels:
            layers += _conv_block(cin, cout, 2, batch_norm, dims=1)
            for _ in range(blocks_per_stage):
                layers += _conv_block(cout, cout, 1, batch_norm, dims=1)
            cin = cout
        self.features = nn.Sequential(*layers)
        t = conv_sizes(length, len(channels))[-1]
        self.feature_shape = (cin, t)
        self.head = nn.Sequential(
            nn.Flatten(), *_mlp([cin * t, *hidden_dims, out_features or latent_dim], False, False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class ConvDecoder1d(nn.Module):
    """Code → FC layers → (channels, t) features → stride-2 ConvTranspose1d stages back to ``(C, T)``.

    Mirrors :class:`ConvEncoder1d`; ``output_padding`` restores the exact length at every stage, so odd
    window lengths (e.g. 33) come back unchanged.
    """

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
        cout_final, length = output_shape
        ts = conv_sizes(length, len(channels))
        self.feature_shape = (channels[-1], ts[-1])
        self.head = nn.Sequential(
            *_mlp([latent_dim, *reversed(hidden_dims), math.prod(self.feature_shape)], False, True)
        )
        layers: list[nn.Module] = []
        rev = list(reversed(channels))
        for i, cin in enumerate(rev):
            for _ in range(blocks_per_stage):
                layers += _conv_block(cin, cin, 1, batch_norm, dims=1)
            # A stride-2 transposed conv gives 2t - 1; output_padding 1 makes it 2t when the length was even.
            pad = ts[-2 - i] - (2 * ts[-1 - i] - 1)
            if i == len(rev) - 1:
                layers.append(nn.ConvTranspose1d(cin, cout_final, 3, 2, 1, output_padding=pad))
            else:
                layers += _conv_block(cin, rev[i + 1], 2, batch_norm, True, pad, dims=1)
        self.features = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.features(self.head(z).view(-1, *self.feature_shape))


def lstm_hidden_size(hidden_dims: Sequence[int]) -> int:
    """The LSTM width: ``hidden_dims[0]``, or 64 when ``hidden_dims`` is empty."""
    return hidden_dims[0] if hidden_dims else 64


def lstm_num_layers(blocks_per_stage: int) -> int:
    """Stacked LSTM layers: ``max(1, blocks_per_stage)`` (the depth knob the conv models also use)."""
    return max(1, blocks_per_stage)


class LSTMEncoder(nn.Module):
    """Windows ``(C, T)`` → bidirectional LSTM over time → last hidden states → FC → code.

    * width ``hidden_dims[0]`` (64 if empty) per direction, ``max(1, blocks_per_stage)`` stacked layers;
      the remaining ``hidden_dims[1:]`` are FC layers between the LSTM and the code;
    * the code reads the top layer's final state of *both* directions: a forward-only summary must carry
      the window's first steps through every later one, while the backward direction ends on them (on
      periodic test sines, where the start is predictable from the end, the two measured alike);
    * ``channels`` and ``batch_norm`` do not apply (no convolutions; BatchNorm inside a recurrence would mix
      time steps' statistics), and the head has no BatchNorm either, like the conv heads.

    Deterministic on CPU (PyTorch's CPU LSTM has no atomics). cuDNN's fused LSTM cannot be differentiated
    twice, nor backpropagated in eval mode, and the contractive penalty and the Jacobian diagnostic need
    both; so when the input itself requires a gradient (only those do) the forward pass runs PyTorch's
    native, fully differentiable LSTM kernels instead, and ordinary training keeps cuDNN's speed.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        hidden_dims: Sequence[int],
        latent_dim: int,
        blocks_per_stage: int = 1,
        out_features: int | None = None,
    ) -> None:
        super().__init__()
        channels, _ = input_shape
        hidden = lstm_hidden_size(hidden_dims)
        self.lstm = nn.LSTM(
            channels,
            hidden,
            num_layers=lstm_num_layers(blocks_per_stage),
            batch_first=True,
            bidirectional=True,
        )
        # Registered after the LSTM so the code layer is the encoder's last ``nn.Linear`` (the sparse
        # variant initialises that layer's bias).
        self.head = nn.Sequential(
            *_mlp([2 * hidden, *hidden_dims[1:], out_features or latent_dim], False, False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Only this call changes cuDNN flags: ``flags()`` would also reset benchmark/deterministic.
        native = x.is_cuda and x.requires_grad and torch.is_grad_enabled()
        with torch.backends.cudnn.flags(enabled=False) if native else contextlib.nullcontext():
            _, (h, _) = self.lstm(x.transpose(1, 2))  # h: (layers * 2, N, hidden), top layer last
        return self.head(torch.cat([h[-2], h[-1]], dim=1))


class LSTMDecoder(nn.Module):
    """Code → initial LSTM state and per-step input → LSTM → Linear per step → ``(C, T)``.

    Feeding the code at every step (not only through the initial state) keeps it available to the whole
    window instead of fading through the recurrence; a learned per-step embedding added to that input tells
    the steps apart, so the decoder is not left to count time steps with its state alone (without it, one
    of two seeds of the sine test stalled at 3.5× below the data variance instead of 13×). Width and depth
    follow :class:`LSTMEncoder` (unidirectional: generation runs forward in time).
    """

    def __init__(
        self,
        output_shape: Sequence[int],
        hidden_dims: Sequence[int],
        latent_dim: int,
        blocks_per_stage: int = 1,
    ) -> None:
        super().__init__()
        channels, self.length = output_shape
        hidden = lstm_hidden_size(hidden_dims)
        self.num_layers = lstm_num_layers(blocks_per_stage)
        self.hidden = hidden
        self.head = nn.Sequential(*_mlp([latent_dim, *reversed(hidden_dims[1:]), hidden], False, True))
        self.init_state = nn.Linear(hidden, 2 * self.num_layers * hidden)
        self.position = nn.Parameter(torch.zeros(self.length, hidden))
        nn.init.normal_(self.position, std=0.02)
        self.lstm = nn.LSTM(hidden, hidden, num_layers=self.num_layers, batch_first=True)
        self.out = nn.Linear(hidden, channels)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        u = self.head(z)  # (N, hidden)
        h0, c0 = self.init_state(u).view(-1, 2 * self.num_layers, self.hidden).transpose(0, 1).chunk(2)
        steps = u.unsqueeze(1) + self.position  # (N, T, hidden)
        y, _ = self.lstm(steps, (torch.tanh(h0).contiguous(), c0.contiguous()))
        return self.out(y).transpose(1, 2)  # (N, C, T)


def temporal_width(hidden_dims: Sequence[int]) -> int:
    """Channels of the temporal convolutions: ``hidden_dims[0]``, or 128 when ``hidden_dims`` is empty."""
    return hidden_dims[0] if hidden_dims else 128


class _DilatedBlock(nn.Module):
    """``h + GELU(norm(conv_d(h)))``: a kernel-3 convolution over time, dilated ``dilation`` frames.

    Residual, so a stack of them starts out as the identity and each block only adds the context its
    dilation brings (1, 2, 4, … frames apart); padding ``dilation`` keeps the length.
    """

    def __init__(self, width: int, dilation: int, batch_norm: bool) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation),
            *([nn.BatchNorm1d(width)] if batch_norm else []),
            _act(),
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.body(h)


class TemporalConvEncoder(nn.Module):
    """``(…, T)`` → a code of ``latent_dim`` features *per time step*, ``(latent_dim, T)``.

    Every axis but the last (channels × frequency bins of a spectrogram patch, or the sensors of a window)
    is one step's feature vector: a 1×1 convolution maps it to ``hidden_dims[0]`` channels, then
    ``blocks_per_stage`` residual kernel-3 convolutions dilated 1, 2, 4, … steps give each step context
    of ±(2^blocks − 1) steps, and a 1×1 convolution makes the code. Why a code per step instead of one per
    patch: a flat code must describe the whole patch at once, so what it keeps of one frame competes with
    every other frame, and its FC layers grow with the patch; a temporal code is a bottleneck on each frame
    (``latent_dim`` < bins) that sees its neighbours, with a size independent of the patch length, so a
    longer patch buys context at no cost in parameters.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        hidden_dims: Sequence[int],
        latent_dim: int,
        blocks_per_stage: int,
        batch_norm: bool = True,
        out_features: int | None = None,
    ) -> None:
        super().__init__()
        width = temporal_width(hidden_dims)
        self.inp = nn.Sequential(nn.Conv1d(math.prod(input_shape[:-1]), width, 1), _act())
        self.blocks = nn.Sequential(
            *(_DilatedBlock(width, 2**i, batch_norm) for i in range(blocks_per_stage))
        )
        self.out = nn.Conv1d(width, out_features or latent_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.blocks(self.inp(x.flatten(1, -2))))


class TemporalConvDecoder(nn.Module):
    """Per-step code ``(latent_dim, T)`` → ``output_shape``: the mirror of :class:`TemporalConvEncoder`
    (dilations in reverse order, so the widest context is nearest the code on both sides)."""

    def __init__(
        self,
        output_shape: Sequence[int],
        hidden_dims: Sequence[int],
        latent_dim: int,
        blocks_per_stage: int,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        width = temporal_width(hidden_dims)
        self.output_shape = tuple(output_shape)
        self.inp = nn.Sequential(nn.Conv1d(latent_dim, width, 1), _act())
        dilations = [2**i for i in reversed(range(blocks_per_stage))]
        self.blocks = nn.Sequential(*(_DilatedBlock(width, d, batch_norm) for d in dilations))
        self.out = nn.Conv1d(width, math.prod(output_shape[:-1]), 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        y = self.out(self.blocks(self.inp(z)))
        return y.view(-1, *self.output_shape[:-1], y.shape[-1])
