"""The report's shared parts: where a use case's files are, and the blocks every section uses (loss curve,
validation table, latent sweep, links to MLflow, the promotion history). Use cases write their own sections
with these (``aeflow.usecases.<name>.report``); the report stage puts the sections together."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aeflow.errors import DataError
from aeflow.io import read_json
from aeflow.layout import SCORES, Layout
from aeflow.report import html as h
from aeflow.sections import GateParams

if TYPE_CHECKING:
    from aeflow.config import Params


@dataclass(frozen=True)
class ReportInputs:
    """Folders holding each use case's outputs."""

    results: Path
    plots: Path
    models: Path
    validation: Path
    registry: Path = Path("registry")

    def result(self, uc: str, name: str, required: bool = True) -> Path:
        """A stage's results of use case ``uc`` (``evaluation``, ``sweep.json``, …; see
        :meth:`aeflow.layout.Layout.result`); a missing ``required`` one is an error naming it."""
        path = Layout(uc, self.results.parent).result(name)
        return need(path) if required else path

    def scores(self, uc: str) -> Path:
        """Every number the evaluate stage of ``uc`` measured."""
        return need(self.result(uc, "evaluation") / SCORES)


def need(path: Path) -> Path:
    if not path.exists():
        raise DataError(f"{path}: missing. Fix: run the earlier stages first (dvc repro).")
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def loss_figure(csv_path: Path) -> str:
    """Train/validation loss per epoch from the ``loss.csv`` a train stage wrote."""
    from aeflow.report.figures import line_chart

    history = read_csv(need(csv_path))
    epochs = [int(r["epoch"]) for r in history]
    series = {
        name: [float(r[name]) if r.get(name) else None for r in history]
        for name in ("train_loss", "val_loss")
        if any(r.get(name) for r in history)
    }
    return h.img(line_chart(epochs, series, "epoch", "loss", "Loss per epoch"), "loss curve")


def mlflow_link(params: Params, experiment_id: str | None, run_id: str | None) -> str:
    if not run_id:  # trained while the tracking store was unreachable
        return "offline: pending <code>aeflow sync</code>"
    url = f"{params.tracking.ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
    return f'<a href="{h.esc(url)}">{h.esc(run_id)}</a>'


def validation_table(validation: dict[str, Any]) -> str:
    return h.table(
        ["file", "expectation", "checks", "result"],
        [
            (
                h.esc(Path(e["file"]).name),
                h.esc(e["expectation"]),
                h.esc(e["what"]),
                '<span class="ok">pass</span>' if e["success"] else '<span class="bad">fail</span>',
            )
            for e in validation["results"]
        ],
        raw_cells=True,
    )


def sweep_block(sweep: dict[str, Any], folder: Path, unit: str) -> str:
    """AE against PCA at each latent size, with the rule of thumb and the knee, for any use case."""
    rows = sorted(((int(key[1:]), v) for key, v in sweep["by_k"].items()), key=lambda kv: kv[0])
    wins = [k for k, v in rows if v["ae_over_pca"] < 1]
    verdict = (
        f"the autoencoder beats PCA at k = {', '.join(map(str, wins))}"
        if wins
        else "PCA reconstructs these inputs better at every size tried: the data is close to linear, "
        "and a linear code is all it needs"
    )
    return (
        "<h3>Latent size: AE against PCA</h3>"
        + h.table(
            ["k", "AE MSE", "PCA MSE", "AE / PCA"],
            [(k, v["ae_mse"], v["pca_mse"], v["ae_over_pca"]) for k, v in rows],
        )
        + f"<p>Test MSE per {h.esc(unit)}, each AE trained {sweep['epochs']} epochs. Rule of thumb "
        f"round(log2({sweep.get('input_size', '?')})) = {sweep['rule_of_thumb_k']}; knee (smallest k within "
        f"10 % of the best AE error) = {sweep['smallest_k_within_10pct_of_best_ae']}; {h.esc(verdict)}.</p>"
        + h.img(need(folder / "mse_vs_k.png").read_bytes(), "MSE against latent size")
    )


def num(text: str | None) -> str:
    try:
        return h.fmt(float(text)) if text not in (None, "") else ""
    except ValueError:
        return h.esc(text)


def promotion_section(params: Params, uc: str, registry: Path) -> str:
    """The registered versions of the use case's model, their aliases and the gate's decisions, as the
    export_registry stage wrote them to ``registry/<uc>.json`` (a declared DVC dependency: the report never
    reads the live registry, so it is a function of its files)."""
    export = read_json(need(registry / f"{uc}.json"))
    name, rows = export["registered_model"], export["versions"]
    if export.get("error"):  # the store was unreachable when the stage ran
        return f"<h3>Promotion history</h3><p>MLflow registry not readable ({h.esc(export['error'])}).</p>"
    if not rows:
        return f"<h3>Promotion history</h3><p>No registered versions of <code>{h.esc(name)}</code> yet.</p>"
    gate = GateParams.model_validate(export["gate"])
    better = "lower" if gate.mode == "min" else "higher"
    body = []
    for r in rows[:20]:
        g = r["gate"]
        run = mlflow_link(params, r["experiment_id"], r["run_id"]) if r.get("experiment_id") else "—"
        body.append(
            [
                h.esc(r["version"]),
                h.esc(r["created"]),
                h.esc(", ".join(r["aliases"]) or "—"),
                h.esc(g.get("decision", "—")),
                num(g.get("challenger_score")),
                num(g.get("champion_score"))
                + (f" (v{h.esc(g['champion_version'])})" if g.get("champion_version") else ""),
                h.esc(g.get("reason", "")),
                run,
            ]
        )
    return (
        f"<h3>Promotion history of <code>{h.esc(name)}</code></h3>"
        f"<p>Gate: <code>{h.esc(gate.metric)}</code> ({better} is better), margin {h.esc(gate.margin)} "
        f"({h.esc(gate.margin_type)}); <code>aeflow promote --use-case {uc}</code> "
        "or <code>aeflow retrain</code> decide, newest first.</p>"
        + h.table(
            ["version", "registered", "aliases", "decision", "challenger", "champion", "why", "run"],
            body,
            raw_cells=True,
        )
    )
