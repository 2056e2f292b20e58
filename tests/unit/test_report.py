"""Figures are real PNGs of the expected size; the HTML page is self-contained and escapes its text."""

from __future__ import annotations

import io
import re

import numpy as np
from PIL import Image

from aeflow.report import html as h
from aeflow.report.figures import bar_chart, image_rows, line_chart, scatter


def test_image_rows_layout():
    rows = [np.zeros((5, 1, 28, 28)), np.ones((5, 28, 28))]
    png = image_rows(rows, labels=["a", "b"], scale=2, pad=2)
    img = Image.open(io.BytesIO(png))
    label_w = img.size[0] // 2 - (5 * 30 + 2)  # the label column, in unscaled pixels
    assert 4 <= label_w <= 20 and img.size[1] == (2 * 30 + 2) * 2  # as wide as the labels need
    pixels = np.asarray(img)
    assert pixels[(2 + 30 + 10) * 2, (label_w + 2 + 10) * 2] == 255  # second row holds the ones
    assert pixels[(2 + 10) * 2, (label_w + 2 + 10) * 2] == 0  # first row the zeros


def test_image_rows_labels_are_readable():
    """Row labels are dark text on white at a third of a row's height (at most 22 px): readable when a
    browser shows a wide strip scaled down, never clipped by their column."""
    rows = [np.full((10, 28, 28), 0.5), np.full((10, 28, 28), 0.5)]
    labels = ["input", "AE k=10"]
    img = np.asarray(Image.open(io.BytesIO(image_rows(rows, labels=labels, scale=3))))
    column = img[:, : img.shape[1] - 10 * 30 * 3 - 2 * 3]
    ink = column < 100
    assert ink.any() and (column[~ink] > 200).mean() > 0.95  # dark on white
    rows_with_ink = np.flatnonzero(ink.any(axis=1))
    assert rows_with_ink.size >= 2 * 12  # two labels, each at least 12 px tall
    assert not ink[:, -3:].any()  # the longest label ends inside its column


def test_charts_are_pngs():
    for png in (
        line_chart([1, 2, 3], {"a": [3.0, 2.0, None]}, "x", "y", "t", logy=True, marks={"m": 2}),
        scatter(np.random.default_rng(0).normal(size=(50, 2)), np.arange(50) % 10, "s"),
        bar_chart(["0", "1"], {"a": [1, 2], "b": [2, 1]}, "n", "t"),
    ):
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and Image.open(io.BytesIO(png)).size[0] > 300


def test_page_is_self_contained_and_escaped():
    doc = h.page("t <x>", [("a", "A & B", h.table(["k", "v"], [("<b>", 0.123456)]) + h.img(b"png", "alt"))])
    assert "t &lt;x&gt;" in doc and "A &amp; B" in doc and "&lt;b&gt;" in doc and "0.1235" in doc
    assert not re.search(r'(src|href)="https?://', doc)
    assert 'src="data:image/png;base64,' in doc
