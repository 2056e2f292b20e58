"""The offline HTML report: one self-contained file (images inlined as data URIs, CSS inline, no
scripts or fonts from a CDN), so it opens from disk, from a CI artefact or from MLflow alike.

Everything here is pure: small builder functions return HTML strings from plain data.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from typing import Any

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1100px;
padding:1rem 2rem;color:#1d2430;line-height:1.45}
h1{border-bottom:2px solid #3b6ea8;padding-bottom:.3rem}h2{margin-top:2.2rem;color:#3b6ea8}
table{border-collapse:collapse;margin:.6rem 0}th,td{border:1px solid #cfd6e0;padding:.25rem .6rem;
text-align:right}th{background:#eef2f7}td:first-child,th:first-child{text-align:left}
.ok{color:#1b7f3b;font-weight:600}.bad{color:#b3261e;font-weight:600}
figure{display:inline-block;margin:.4rem .6rem .8rem 0;vertical-align:top}
figcaption{font-size:.8rem;color:#555}img{image-rendering:pixelated;max-width:100%}
.note{background:#f6f8fb;border-left:4px solid #3b6ea8;padding:.5rem .8rem}
code{background:#eef2f7;padding:0 .25rem;border-radius:3px}
nav a{margin-right:1rem}
.wide{overflow-x:auto;max-width:100%}
"""


def esc(value: Any) -> str:
    return html.escape(str(value))


def fmt(value: Any, digits: int = 4) -> str:
    """Numbers with ``digits`` significant digits; everything else as text."""
    if isinstance(value, bool) or value is None:
        return esc("—" if value is None else value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return esc(value)


def img(png: bytes, alt: str, caption: str = "", width: int | None = None) -> str:
    """An inline PNG with a caption."""
    src = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    w = f' width="{width}"' if width else ""
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{src}" alt="{esc(alt)}"{w}>{cap}</figure>'


def audio(wav: bytes, caption: str) -> str:
    """An inline WAV player (data URI: the report stays one self-contained file)."""
    src = "data:audio/wav;base64," + base64.b64encode(wav).decode("ascii")
    return (
        f'<figure><audio controls preload="none" src="{src}"></audio>'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], raw_cells: bool = False) -> str:
    """A simple table; cells are formatted with :func:`fmt` unless ``raw_cells`` (pre-built HTML)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{c if raw_cells else fmt(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    # a table wider than the page scrolls inside its own box instead of running past the page's edge
    return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def page(title: str, sections: Sequence[tuple[str, str, str]], intro: str = "") -> str:
    """The whole document from ``(anchor, heading, html)`` sections."""
    nav = "".join(f'<a href="#{esc(a)}">{esc(h)}</a>' for a, h, _ in sections)
    body = "".join(
        f'<section id="{esc(a)}"><h2>{esc(h)}</h2>{content}</section>' for a, h, content in sections
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{esc(title)}</title>'
        f"<style>{CSS}</style></head><body><h1>{esc(title)}</h1>{intro}<nav>{nav}</nav>{body}</body></html>\n"
    )
