"""Latent codes in two and three dimensions: a static PNG for the report and MLflow, and one offline,
interactive HTML page (hover a point to see its label; drag the 3-D view to rotate it).

How codes become 2-D or 3-D is :func:`aeflow.evaluation.latent.project` (the code itself when it is
small enough, else its principal components); this module only draws. The HTML page is a single file
with its script and style inline and the data embedded as JSON: no CDN, no font, no network request,
so it opens from disk, from a CI artefact or from MLflow alike.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from aeflow.evaluation.latent import project
from aeflow.report.figures import _png

# matplotlib's tab10, so the PNG and the HTML page colour each class alike.
TAB10 = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip


def _classes(labels: Sequence[Any] | np.ndarray) -> tuple[list[Any], np.ndarray]:
    """Sorted distinct labels and each point's position in that list (its colour index)."""
    names, index = np.unique(np.asarray(labels), return_inverse=True)
    return names.tolist(), index.ravel()


def projection_png(points: np.ndarray, labels: Sequence[Any] | np.ndarray, title: str) -> bytes:
    """Scatter of (N, 2) or (N, 3) points coloured by label, with a legend; 3 columns give 3-D axes.

    A legend rather than a colour bar because labels are categories (digits), not a scale.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] not in (2, 3):
        raise ValueError(f"projection_png needs (N, 2) or (N, 3) points, got shape {pts.shape}")
    names, index = _classes(labels)
    three = pts.shape[1] == 3
    fig = plt.figure(figsize=(5.2, 4.4), dpi=110)
    ax = fig.add_subplot(projection="3d" if three else None)
    # One scatter call in a fixed shuffled order: drawing class by class would paint the last class over
    # the others (and, in 3-D, ignore depth between classes).
    order = np.random.default_rng(0).permutation(len(pts))
    colours = np.asarray(TAB10)[index[order] % 10]
    extra = {"depthshade": False} if three else {}  # depth shading would fade the legend's colours
    ax.scatter(*pts[order].T, s=5, alpha=0.75, c=colours, **extra)
    handles = [
        Line2D([], [], ls="", marker="o", ms=4, color=TAB10[c % 10], label=str(name))
        for c, name in enumerate(names)
    ]
    ax.set_title(title, fontsize=9)
    ax.legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    return _png(fig)


def _subsample(n: int, cap: int) -> np.ndarray:
    """Evenly spaced indices, at most ``cap``: deterministic, and it keeps every class of sorted data."""
    if n <= cap:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, cap).round().astype(np.int64))


def _normalised(points: np.ndarray) -> list[float]:
    """Centred on the middle of their range and scaled into the unit disc or ball, rounded to 4 decimals
    and flattened: only the shape is drawn, the unit ball stays on the canvas however the 3-D view is
    turned, and short numbers keep the page small."""
    p = np.asarray(points, dtype=np.float64)
    p = p - (p.max(axis=0) + p.min(axis=0)) / 2
    scale = float(np.sqrt((p**2).sum(axis=1)).max()) if p.shape[1] == 3 else float(np.abs(p).max())
    return np.round(p / (scale or 1.0), 4).ravel().tolist()


_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1rem 2rem;color:#1d2430}
h1{font-size:1.2rem}.views{display:flex;flex-wrap:wrap;gap:1.2rem;align-items:flex-start}
figure{margin:0}figcaption{font-size:.8rem;color:#555;max-width:440px}
canvas{border:1px solid #cfd6e0;background:#fff;touch-action:none}#v3{cursor:grab}
#tip{position:fixed;pointer-events:none;background:#1d2430;color:#fff;font-size:.75rem;padding:2px 6px;
border-radius:3px;display:none}
#legend{list-style:none;padding:0;font-size:.85rem}#legend li{cursor:pointer;user-select:none;margin:2px 0}
#legend li.off{opacity:.3}#legend span{display:inline-block;width:.8rem;height:.8rem;margin-right:.4rem;
border-radius:50%;vertical-align:-1px}
"""

_SCRIPT = """
(function(){
const D=JSON.parse(document.getElementById('data').textContent);
const P=D.palette,n=D.label.length,hidden=new Set(),S=440,M=14;
function setup(id){const c=document.getElementById(id);if(!c)return null;const r=window.devicePixelRatio||1;
c.width=S*r;c.height=S*r;c.style.width=S+'px';c.style.height=S+'px';const g=c.getContext('2d');
g.setTransform(r,0,0,r,0,0);return {c:c,g:g};}
function colour(i){return P[D.label[i]%P.length];}
function dot(g,x,y,i,rad){g.fillStyle=colour(i);g.beginPath();g.arc(x,y,rad,0,6.2832);g.fill();}
const v2=setup('v2'),xy=new Float32Array(2*n);
function draw2(){const g=v2.g;g.clearRect(0,0,S,S);g.globalAlpha=.75;
for(let i=0;i<n;i++){const x=M+(D.p2[2*i]+1)/2*(S-2*M),y=S-M-(D.p2[2*i+1]+1)/2*(S-2*M);
xy[2*i]=x;xy[2*i+1]=y;if(!hidden.has(D.label[i]))dot(g,x,y,i,2.2);}g.globalAlpha=1;}
const tip=document.getElementById('tip');
v2.c.addEventListener('mousemove',e=>{const b=v2.c.getBoundingClientRect(),mx=e.clientX-b.left,
my=e.clientY-b.top;let best=-1,bd=49;for(let i=0;i<n;i++){if(hidden.has(D.label[i]))continue;
const dx=xy[2*i]-mx,dy=xy[2*i+1]-my,d=dx*dx+dy*dy;if(d<bd){bd=d;best=i;}}
if(best<0){tip.style.display='none';return;}
tip.textContent='label '+D.names[D.label[best]]+' \\u00b7 index '+D.index[best];
tip.style.left=(e.clientX+12)+'px';tip.style.top=(e.clientY+12)+'px';tip.style.display='block';});
v2.c.addEventListener('mouseleave',()=>{tip.style.display='none';});
const v3=D.p3?setup('v3'):null;let yaw=0.6,pitch=-0.4;const order=new Int32Array(n),z=new Float32Array(n),
sx=new Float32Array(n),sy=new Float32Array(n);
function draw3(){if(!v3)return;const g=v3.g,cy=Math.cos(yaw),sy_=Math.sin(yaw),cp=Math.cos(pitch),
sp=Math.sin(pitch),h=(S-2*M)/2;g.clearRect(0,0,S,S);
function rot(x,y,w){const x1=cy*x+sy_*w,w1=-sy_*x+cy*w,y1=cp*y-sp*w1,w2=sp*y+cp*w1;return [x1,y1,w2];}
g.strokeStyle='#9aa4b2';g.lineWidth=1;g.font='11px sans-serif';g.fillStyle='#6b7686';
[[1,0,0,'1'],[0,1,0,'2'],[0,0,1,'3']].forEach(a=>{const q=rot(a[0],a[1],a[2]);g.beginPath();
g.moveTo(S/2,S/2);g.lineTo(S/2+q[0]*h*.8,S/2-q[1]*h*.8);g.stroke();g.fillText(a[3],S/2+q[0]*h*.86,
S/2-q[1]*h*.86);});
for(let i=0;i<n;i++){const q=rot(D.p3[3*i],D.p3[3*i+1],D.p3[3*i+2]);sx[i]=S/2+q[0]*h;sy[i]=S/2-q[1]*h;
z[i]=q[2];order[i]=i;}
order.sort((a,b)=>z[a]-z[b]);g.globalAlpha=.8;
for(const i of order){if(!hidden.has(D.label[i]))dot(g,sx[i],sy[i],i,2.2);}g.globalAlpha=1;}
if(v3){let drag=null;v3.c.addEventListener('pointerdown',e=>{drag=[e.clientX,e.clientY];
v3.c.setPointerCapture(e.pointerId);v3.c.style.cursor='grabbing';});
v3.c.addEventListener('pointermove',e=>{if(!drag)return;yaw+=(e.clientX-drag[0])*0.01;
pitch=Math.max(-1.57,Math.min(1.57,pitch+(e.clientY-drag[1])*0.01));drag=[e.clientX,e.clientY];draw3();});
const stop=()=>{drag=null;v3.c.style.cursor='grab';};v3.c.addEventListener('pointerup',stop);
v3.c.addEventListener('pointercancel',stop);}
const legend=document.getElementById('legend');
D.names.forEach((name,c)=>{const li=document.createElement('li');
const sw=document.createElement('span');sw.style.background=P[c%P.length];li.appendChild(sw);
li.appendChild(document.createTextNode(String(name)));li.title='click to show or hide';
li.addEventListener('click',()=>{if(hidden.has(c))hidden.delete(c);else hidden.add(c);
li.classList.toggle('off');draw2();draw3();});legend.appendChild(li);});
draw2();draw3();
})();
"""


def projection_html(
    points2: np.ndarray,
    points3: np.ndarray | None,
    labels: Sequence[Any] | np.ndarray,
    title: str,
    *,
    max_points: int = 3000,
    captions: tuple[str, str] = (
        "2-D view: hover a point for its label and index",
        "3-D view: drag to rotate",
    ),
) -> str:
    """One self-contained interactive page: a 2-D scatter with hover tooltips and a rotatable 3-D one.

    The page draws on ``<canvas>`` with a small inline script (orthographic rotation, painter's order by
    depth), so it needs no library and makes no network request. At most ``max_points`` evenly spaced
    points are embedded (3,000 keep the page ≈ 140 kB and the redraw smooth); coordinates are centred,
    scaled into the unit disc (2-D) or ball (3-D) and rounded to 4 decimals. Clicking a legend entry
    hides or shows that class.
    ``points3=None`` (e.g. a 2-D code, which has no third axis) leaves the 3-D view out.
    """
    p2 = np.asarray(points2, dtype=np.float64)
    if p2.ndim != 2 or p2.shape[1] != 2:
        raise ValueError(f"points2 must have shape (N, 2), got {p2.shape}")
    p3 = None if points3 is None else np.asarray(points3, dtype=np.float64)
    if p3 is not None and (p3.shape != (len(p2), 3)):
        raise ValueError(f"points3 must have shape ({len(p2)}, 3), got {p3.shape}")
    names, index = _classes(labels)
    if len(index) != len(p2):
        raise ValueError(f"{len(index)} labels for {len(p2)} points")
    keep = _subsample(len(p2), max_points)
    data = {
        "names": [str(n) for n in names],
        "palette": list(TAB10),
        "label": index[keep].tolist(),
        "index": keep.tolist(),
        "p2": _normalised(p2[keep]),
        "p3": None if p3 is None else _normalised(p3[keep]),
    }
    # "</" cannot end the script element early once escaped; JSON.parse reads "<\/" back as "</".
    blob = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    shown = f"{len(keep):,} of {len(p2):,} points" if len(keep) < len(p2) else f"{len(p2):,} points"
    view3 = (
        f'<figure><canvas id="v3" aria-label="3-D scatter"></canvas>'
        f"<figcaption>{html.escape(captions[1])}</figcaption></figure>"
        if p3 is not None
        else ""
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{shown}, coloured by label.</p>"
        '<div class="views"><figure><canvas id="v2" aria-label="2-D scatter"></canvas>'
        f"<figcaption>{html.escape(captions[0])}</figcaption></figure>{view3}"
        '<ul id="legend"></ul></div><div id="tip"></div>'
        f'<script type="application/json" id="data">{blob}</script>'
        f"<script>{_SCRIPT}</script></body></html>"
    )


def latent_projections(codes: np.ndarray, labels: Sequence[Any] | np.ndarray, title: str) -> dict[str, Any]:
    """2-D and 3-D views of ``codes`` via :func:`~aeflow.evaluation.latent.project`, drawn both ways.

    Returns ``png_2d``, ``png_3d`` (``None`` when the code has fewer than 3 dimensions: a 2-D code has
    no honest third axis), ``html`` and ``how_2d``/``how_3d`` (what the axes are: the code itself or
    its principal components), for captions.
    """
    c = np.asarray(codes, dtype=np.float64).reshape(len(codes), -1)
    p2, how2 = project(c, 2)
    if p2.shape[1] < 2:  # a 1-D code: spread it along x only
        p2 = np.column_stack([p2, np.zeros(len(p2))])
    p3, how3 = project(c, 3) if c.shape[1] >= 3 else (None, "")
    return {
        "png_2d": projection_png(p2, labels, f"{title} ({how2})"),
        "png_3d": None if p3 is None else projection_png(p3, labels, f"{title} ({how3})"),
        "html": projection_html(p2, p3, labels, title),
        "how_2d": how2,
        "how_3d": how3,
    }
