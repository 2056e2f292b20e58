"""What a person sees, in a real headless Chromium: the MLflow UI and the HTML report of one tiny real run.

One module fixture runs the real stages through the library on a few hundred real digits (ingest,
validate, train for 2 epochs, evaluate, a one-size sweep) into a temporary MLflow sqlite store, and builds
the report's MNIST section from those files. ``mlflow ui`` then serves that store on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import struct
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from aeflow.tracking.server import ServerError, wait_healthy
from tests.browser.chrome import Browser, off_machine

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BIN = Path(sys.executable).parent
TINY = {
    "ingest": {"max_train": 300, "max_test": 100},
    "model": {"architecture": "mlp", "hidden_dims": [64]},  # an MLP trains ~3× faster than conv on CPU
    "train": {"epochs": 2, "batch_size": 32, "lr": 0.01, "num_recon_images": 8, "progress_bar": False},
    "sweep": {"latent_dims": [2], "epochs": 1},
}


@dataclass(frozen=True)
class TinyRun:
    root: Path
    run: dict
    metrics: dict[str, float]
    report: Path
    base: str  # where mlflow ui will listen; the report links there


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> TinyRun:
    from aeflow.io import write_text
    from aeflow.params import parse_params
    from aeflow.report import html
    from aeflow.stages import evaluate, ingest, noise, report, sweep, train, validate
    from aeflow.usecases.mnist.report import mnist_section

    root = tmp_path_factory.mktemp("browser")
    base = f"http://127.0.0.1:{free_port()}"
    params = parse_params(
        {
            "tracking": {
                "tracking_uri": f"sqlite:///{root / 'mlflow.db'}",
                "artifact_location": str(root / "mlartifacts"),
                "ui_url": base,
            },
            "mnist": TINY,
        },
        "tiny params",
    )
    raw, validation = root / "data/raw/mnist", root / "data/validation/mnist.json"
    models, plots, results = root / "models/mnist", root / "plots/mnist", root / "results/mnist"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        ingest.run("mnist", params, raw)
        validate.run("mnist", params, raw, validation)
        noisy = root / "data/interim/mnist"
        noise.run("mnist", params, raw, noisy)
        train.run("mnist", params, raw, validation, models, plots, noisy)
        evaluate.run(
            "mnist",
            params,
            raw,
            noisy,
            models,
            results / "evaluation",
            root / "metrics/mnist.json",
            plots / "evaluation",
        )
        sweep.run("mnist", params, raw, validation, results / "sweep.json", plots)
    inputs = report.ReportInputs(
        results=results.parent, plots=root / "plots", models=root / "models", validation=validation.parent
    )
    out = root / "reports/index.html"
    section = mnist_section(params, inputs)
    write_text(out, html.page("aeflow report", [("mnist", "MNIST compression", section)]))

    from mlflow.tracking import MlflowClient

    run = json.loads((models / "run.json").read_text())
    logged = MlflowClient(params.tracking.tracking_uri).get_run(run["run_id"]).data.metrics
    return TinyRun(root=root, run=run, metrics=logged, report=out, base=base)


@contextlib.contextmanager
def serving(cmd: list[str], cwd: Path, base: str, timeout: float = 90) -> Iterator[subprocess.Popen]:
    """Start a server, wait until ``<base>/health`` answers, stop it afterwards."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    log = (cwd / "mlflow-ui.log").open("wb")
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
    )
    try:
        try:
            wait_healthy(base, proc, cwd / "mlflow-ui.log", timeout_s=timeout)
        except ServerError as exc:
            raise AssertionError(f"{' '.join(cmd[:2])} did not start: {exc}") from None
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def mlflow_ui(tiny: TinyRun) -> Iterator[str]:
    port = tiny.base.rsplit(":", 1)[1]
    cmd = [
        str(BIN / "mlflow"),
        "ui",
        "--backend-store-uri",
        f"sqlite:///{tiny.root / 'mlflow.db'}",
        "--host",
        "127.0.0.1",
        "--port",
        port,
        "--workers",
        "1",
    ]
    with serving(cmd, tiny.root, tiny.base):
        yield tiny.base


def _text(browser: Browser) -> str:
    return browser.driver.execute_script("return document.body ? document.body.innerText : ''")


def _images(browser: Browser) -> list[dict]:
    return browser.driver.execute_script(
        "return [...document.images].map(i => ({src: i.currentSrc || i.src, alt: i.alt,"
        " complete: i.complete, width: i.naturalWidth, height: i.naturalHeight,"
        " shown: i.getBoundingClientRect().width > 0}))"
    )


def _visible_text(driver, text: str) -> bool:
    """Some element whose own text is exactly ``text`` is laid out at its full height."""
    return driver.execute_script(
        "const it = document.evaluate(`//*[normalize-space(text())='${arguments[0]}']`, document, null,"
        " XPathResult.ORDERED_NODE_SNAPSHOT_TYPE, null);"
        "for (let i = 0; i < it.snapshotLength; i++) {"
        "  const r = it.snapshotItem(i).getBoundingClientRect();"
        "  if (r.width > 0 && r.height >= 12) return true; }"
        "return false;",
        text,
    )


def _metric_shown(name: str, value: float):
    """The metric's name and the value MLflow stored, side by side in the page text."""
    pattern = re.compile(rf"(^|\n){re.escape(name)}\s*\n\s*{re.escape(repr(value))}\s*(\n|$)")
    return lambda driver: pattern.search(driver.execute_script("return document.body.innerText"))


def test_mlflow_ui_shows_the_experiment_metrics_and_reconstructions(browser, mlflow_ui, tiny):
    exp_id, run_id = tiny.run["experiment_id"], tiny.run["run_id"]
    driver = browser.driver

    driver.get(f"{mlflow_ui}/#/experiments")
    link = browser.wait(
        lambda d: next(
            (a for a in d.find_elements("tag name", "a") if a.text.strip() == "aeflow-mnist"), None
        ),
        "the aeflow-mnist experiment in the experiment list",
    )
    assert link.is_displayed() and f"/experiments/{exp_id}" in link.get_attribute("href")
    browser.screenshot("mlflow-experiments")

    driver.get(f"{mlflow_ui}/#/experiments/{exp_id}/runs/{run_id}")
    browser.wait(lambda d: "mnist-vanilla-train" in _text(browser), "the run's name on its page")
    for name in ("val/loss", "test/mse"):
        browser.wait(
            _metric_shown(name, tiny.metrics[name]), f"{name} = {tiny.metrics[name]!r} on the run page"
        )
    metrics_table = browser.driver.find_element("xpath", "//*[normalize-space(text())='test/mse']")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", metrics_table)
    browser.screenshot("mlflow-run-metrics")

    png = next((tiny.root / "mlartifacts").rglob(f"{run_id}/artifacts/reconstructions/epoch_002.png"))
    width, height = png_size(png.read_bytes())
    driver.get(f"{mlflow_ui}/#/experiments/{exp_id}/runs/{run_id}/artifacts/reconstructions/epoch_002.png")
    shown = browser.wait(
        lambda d: [
            i for i in _images(browser) if i["width"] == width and i["height"] == height and i["shown"]
        ],
        f"the {width}×{height} reconstruction grid rendered in the artifact view",
    )
    assert all(i["src"].startswith(f"blob:{mlflow_ui}/") for i in shown), shown
    browser.wait(  # both epochs listed in the artifact tree, once its unfolding has finished
        lambda d: all(_visible_text(d, f"epoch_00{e}.png") for e in (1, 2)),
        "both epochs in the artifact tree",
    )
    browser.screenshot("mlflow-artifact-reconstruction")

    assert not off_machine(browser.drain_requests()), "the MLflow UI asked for something off this machine"


def test_report_images_render_offline_and_link_to_the_mlflow_run(browser, mlflow_ui, tiny):
    driver = browser.driver
    driver.get(tiny.report.as_uri())
    browser.wait(lambda d: d.execute_script("return document.readyState") == "complete", "the report to load")
    images = _images(browser)
    expected = tiny.report.read_text().count("<img ")
    # the AE-vs-PCA strip, the loss chart, one grid per epoch, the sweep chart and the k=2 sweep strip
    assert len(images) == expected == 6, images
    broken = [i["alt"] for i in images if not (i["complete"] and i["width"] > 0 and i["height"] > 0)]
    assert not broken, f"images that did not render: {broken}"
    text = _text(browser)
    assert "MNIST compression" in text and "AE MSE / PCA MSE" in text and "epoch 002" in text
    browser.screenshot("report", full_page=True)
    requested = browser.drain_requests()
    assert requested and all(u.startswith(("file://", "data:")) for u in requested), off_machine(requested)

    # the report's MLflow link opens the same run in the UI
    link = driver.find_element("link text", tiny.run["run_id"])
    assert link.get_attribute("href").startswith(f"{mlflow_ui}/#/experiments/")
    link.click()
    browser.wait(lambda d: "mnist-vanilla-train" in _text(browser), "the run page opened from the report")
    assert not off_machine(browser.drain_requests())


def test_dvc_plots_render_offline_with_the_vendored_vega(browser, tiny, tmp_path):
    """`dvc plots show` with the project's own `.dvc/config`: the page carries Vega inline (no CDN), and in
    a browser that reaches nothing off this machine every chart is drawn."""
    import shutil

    repo = tmp_path / "plots-repo"
    (repo / ".dvc").mkdir(parents=True)
    root = Path(__file__).resolve().parents[2]
    shutil.copy(root / ".dvc" / "config", repo / ".dvc" / "config")
    shutil.copytree(root / "vendor" / "vega", repo / "vendor" / "vega")
    for name in ("loss.csv", "sweep.csv"):
        (repo / name).write_bytes((tiny.root / "plots" / "mnist" / name).read_bytes())
    (repo / "dvc.yaml").write_text(
        "plots:\n"
        "  - loss:\n      x: epoch\n      y:\n        loss.csv: [train_loss, val_loss]\n"
        "  - sweep:\n      x: k\n      y:\n        sweep.csv: [ae_mse, pca_mse]\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DVC_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    res = subprocess.run(
        ["dvc", "plots", "show", "-o", "out"], cwd=repo, env=env, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stdout + res.stderr
    page = (repo / "out" / "index.html").read_text()
    assert "cdn.jsdelivr.net" not in page and "vega 5.20.2" in page

    browser.driver.get((repo / "out" / "index.html").as_uri())
    drawn = (  # vega draws each view into one element of class "marks" (the "..." menu icon is not one)
        "return [...document.querySelectorAll('.vega-embed .marks')]"
        ".filter(e => e.getBoundingClientRect().width > 100).length"
    )
    browser.wait(lambda d: d.execute_script(drawn) == 2, "both Vega charts to be drawn")
    browser.screenshot("dvc-plots", full_page=True)
    assert not off_machine(browser.drain_requests())
