"""Figures as PNG bytes. Pure functions: arrays in, bytes out; callers decide where the bytes go.

Image grids are drawn with Pillow (fast, no matplotlib start-up in the training loop); charts use
matplotlib with the non-interactive Agg backend.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def _to_uint8(images: np.ndarray) -> np.ndarray:
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 4:
        x = x[:, 0]
    return (np.clip(x, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def image_rows(rows: Sequence[np.ndarray], labels: Sequence[str] = (), scale: int = 3, pad: int = 2) -> bytes:
    """Stack rows of images (each (N, [1,] H, W) in [0, 1]) into one PNG, with an optional label per row.

    Used for "originals above, reconstructions below" and for AE-vs-PCA comparisons.
    """
    tiles = [_to_uint8(r) for r in rows]
    n = max(len(t) for t in tiles)
    h, w = tiles[0].shape[1:]
    # Row labels: dark text on white, as large as a third of a row and never wider than their column, so
    # they stay readable when the browser scales a wide strip down.
    font = ImageFont.load_default(size=max(12, min(h * scale // 3, 22)))
    measure = ImageDraw.Draw(Image.new("L", (1, 1)))
    text_w = max((measure.textlength(t, font=font) for t in labels), default=0.0)
    label_w = -(-int(text_w + 12) // scale) if labels else 0  # in unscaled pixels, rounded up
    canvas = np.full((len(tiles) * (h + pad) + pad, label_w + n * (w + pad) + pad), 128, dtype=np.uint8)
    canvas[:, :label_w] = 255
    for r, row in enumerate(tiles):
        for c, img in enumerate(row):
            y, x = pad + r * (h + pad), label_w + pad + c * (w + pad)
            canvas[y : y + h, x : x + w] = img
    image = Image.fromarray(canvas).resize((canvas.shape[1] * scale, canvas.shape[0] * scale), Image.NEAREST)
    if labels:
        draw = ImageDraw.Draw(image)
        for r, text in enumerate(labels):
            middle = (pad + r * (h + pad)) * scale + h * scale // 2
            draw.text((6, middle), text, fill=0, font=font, anchor="lm")
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _axes(width: float, height: float) -> tuple[Any, Any]:
    """A new figure and axes on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height), dpi=110)


def _png(fig: Any) -> bytes:
    """Lay out, render and close ``fig``; return the PNG bytes."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def line_chart(
    x: Sequence[float],
    series: dict[str, Sequence[float]],
    xlabel: str,
    ylabel: str,
    title: str,
    logy: bool = False,
    marks: dict[str, float] | None = None,
) -> bytes:
    """A small line chart as PNG (loss curves, MSE against latent size)."""
    fig, ax = _axes(5.5, 3.4)
    for name, ys in series.items():
        pts = [(a, b) for a, b in zip(x, ys, strict=True) if b is not None and np.isfinite(b)]
        if pts:
            ax.plot(*zip(*pts, strict=True), marker="o", ms=3, label=name)
    for i, (name, xv) in enumerate((marks or {}).items()):
        colour = ("grey", "tab:red", "tab:green")[i % 3]
        ax.axvline(xv, ls="--", color=colour, lw=1)
        ax.annotate(
            name,
            (xv, 1),
            xycoords=("data", "axes fraction"),
            xytext=(3, -12 - 11 * i),
            textcoords="offset points",
            fontsize=8,
            color=colour,
        )
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def scatter(points: np.ndarray, labels: np.ndarray, title: str, axes: tuple[str, str] = ("1", "2")) -> bytes:
    """2-D scatter coloured by label (latent spaces)."""
    fig, ax = _axes(4.6, 4.0)
    sc = ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", s=5, alpha=0.75, vmin=-0.5, vmax=9.5)
    fig.colorbar(sc, ax=ax, ticks=range(10), fraction=0.046, pad=0.03)
    ax.set_xlabel(axes[0])
    ax.set_ylabel(axes[1])
    ax.set_title(title, fontsize=9)
    return _png(fig)


def bar_chart(
    categories: Sequence[str], series: dict[str, Sequence[float]], ylabel: str, title: str
) -> bytes:
    """Grouped bars (class histograms of generated samples)."""
    fig, ax = _axes(5.5, 3.2)
    width = 0.8 / max(len(series), 1)
    pos = np.arange(len(categories))
    for i, (name, values) in enumerate(series.items()):
        ax.bar(pos + i * width - 0.4 + width / 2, values, width, label=name)
    ax.set_xticks(pos, categories)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    # the legend below the axes, never over a bar; long category names turn instead of overlapping
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=len(series), frameon=False)
    if max((len(c) for c in categories), default=0) * len(categories) > 60:
        ax.tick_params(axis="x", labelrotation=20)
    return _png(fig)


def spectrograms(panels: Sequence[tuple[str, np.ndarray]], rate: int, hop: int, title: str = "") -> bytes:
    """Log-magnitude spectrograms side by side on one colour scale (e.g. noisy, denoised, clean).

    One shared colour range (from the first panel) makes "what was removed" visible at a glance.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 2.8), dpi=100, sharey=True)
    axes = np.atleast_1d(axes)
    first = np.asarray(panels[0][1])
    vmin, vmax = float(np.percentile(first, 5)), float(first.max())
    for ax, (name, spec) in zip(axes, panels, strict=True):
        spec = np.asarray(spec)
        extent = (0.0, spec.shape[1] * hop / rate, 0.0, rate / 2000)
        ax.imshow(spec, origin="lower", aspect="auto", extent=extent, vmin=vmin, vmax=vmax, cmap="magma")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("time (s)", fontsize=8)
    axes[0].set_ylabel("frequency (kHz)", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    return _png(fig)


def anomaly_timeline(
    times: np.ndarray,
    values: np.ndarray,
    sensors: Sequence[str],
    score: np.ndarray,
    threshold: float,
    windows: Sequence[tuple[int, int]],
    flags: np.ndarray,
    title: str,
    causes: np.ndarray | None = None,
) -> bytes:
    """Readings (top), reconstruction error with the threshold (bottom); true anomaly windows shaded red,
    detections marked: where the error spikes and whether that is where the faults are. With ``causes``
    (per row, the index of the series most responsible), each detection takes that series' colour from the
    top panel, so a reader sees which one went wrong."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 4.6), dpi=100, sharex=True, height_ratios=[1.3, 1])
    t = np.asarray(times)
    colours = []
    for c, name in enumerate(sensors):
        col = values[:, c]
        span = np.nanstd(col) or 1.0
        (line,) = top.plot(t, (col - np.nanmean(col)) / span + 4 * c, lw=0.6, label=name)
        colours.append(line.get_color())
    top.set_yticks([4 * c for c in range(len(sensors))], list(sensors), fontsize=7)
    bottom.plot(t, score, lw=0.7, color="#3b6ea8", label="reconstruction error")
    if np.isfinite(threshold):
        bottom.axhline(threshold, color="#b3261e", ls="--", lw=1, label=f"threshold {threshold:.3g}")
    for a, b in windows:
        for ax in (top, bottom):
            ax.axvspan(t[a], t[min(b, len(t) - 1)], color="#b3261e", alpha=0.15, lw=0)
    hits = np.flatnonzero(flags)
    if len(hits) and causes is not None:
        for c, name in enumerate(sensors):
            mine = hits[np.asarray(causes)[hits] == c]
            if len(mine):
                bottom.plot(t[mine], score[mine], "o", ms=2.5, color=colours[c], label=f"flagged: {name}")
    elif len(hits):
        bottom.plot(t[hits], score[hits], "o", ms=2, color="#b3261e", label="flagged")
    bottom.set_yscale("log")
    bottom.set_ylabel("error", fontsize=8)
    bottom.legend(fontsize=7, loc="upper left")
    top.set_title(title, fontsize=10)
    fig.autofmt_xdate()
    return _png(fig)
