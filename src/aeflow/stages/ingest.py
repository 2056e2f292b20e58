"""ingest: bring a source's data into ``<out>/{train,val,test}.npz`` + ``info.json``."""

from __future__ import annotations

from pathlib import Path

from aeflow.config import Params
from aeflow.io import atomic_dir, save_arrays, write_json


def run(use_case: str, params: Params, out: Path) -> dict[str, object]:
    """Ingest ``use_case`` into the folder ``out`` (replaced as a whole, only on success)."""
    if use_case == "mnist":
        from aeflow.data.mnist import ingest_mnist

        result = ingest_mnist(params.mnist.ingest, params.seed)
        with atomic_dir(out) as tmp:
            for name, (images, labels) in result.splits.items():
                save_arrays(tmp / f"{name}.npz", {"images": images, "labels": labels})
            write_json(tmp / "info.json", result.info)
        return result.info
    if use_case == "speech":
        from aeflow.data.speech import ingest_speech, write_corpus

        corpus = ingest_speech(params.speech.ingest, params.seed)
        write_corpus(corpus, out)
        return corpus.info
    if use_case == "sensor":
        from aeflow.data.sensor import ingest_sensor, write_series

        series = ingest_sensor(params.sensor.ingest, params.seed)
        write_series(series, out, params.sensor.ingest)
        return {"counts": {s.name: len(s.frame) for s in series}, "origin": series[0].origin}
    raise NotImplementedError(use_case)
