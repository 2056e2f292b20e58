"""``aeflow score``'s checks and helpers that need no Spark: input files, columns against the model's
signature, time order of a series, and an output replaced only when complete."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aeflow.errors import DataError
from aeflow.scoring import ScoringModel, check_inputs, in_time_order, input_files, replacing

MODEL = ScoringModel("models:/aeflow-x/1", "rows", [("a", "double"), ("b", "double")], [("score", "double")])


def test_input_files_are_one_file_or_a_folder_of_one_format(tmp_path):
    with pytest.raises(DataError, match=r"no such file or folder"):
        input_files(tmp_path / "nowhere")
    with pytest.raises(DataError, match=r"no \.csv or \.parquet files"):
        input_files(tmp_path)
    pd.DataFrame({"a": [1.0]}).to_csv(tmp_path / "b.csv", index=False)
    pd.DataFrame({"a": [1.0]}).to_csv(tmp_path / "a.csv", index=False)
    (tmp_path / "notes.txt").write_text("ignored")
    assert [p.name for p in input_files(tmp_path)] == ["a.csv", "b.csv"]
    pd.DataFrame({"a": [1.0]}).to_parquet(tmp_path / "c.parquet")
    with pytest.raises(DataError, match=r"mixes CSV and Parquet"):
        input_files(tmp_path)


def test_columns_are_checked_against_the_signature_in_every_file(tmp_path):
    pd.DataFrame({"id": [1], "a": [1.0], "b": [2.0]}).to_csv(tmp_path / "1.csv", index=False)
    assert check_inputs(MODEL, [tmp_path / "1.csv"], None) == ["id", "a", "b"]
    pd.DataFrame({"id": [1], "a": [1.0]}).to_csv(tmp_path / "2.csv", index=False)
    with pytest.raises(DataError, match=r"2\.csv: missing column\(s\) 'b' that the model"):
        check_inputs(MODEL, [tmp_path / "1.csv", tmp_path / "2.csv"], None)
    with pytest.raises(DataError, match=r"missing column\(s\) 'plant'"):
        check_inputs(MODEL, [tmp_path / "1.csv"], "plant")
    pd.DataFrame({"a": [1.0], "b": [2.0], "id": [1]}).to_csv(tmp_path / "3.csv", index=False)
    with pytest.raises(DataError, match=r"3\.csv: its columns .* differ from 1\.csv's"):
        check_inputs(MODEL, [tmp_path / "1.csv", tmp_path / "3.csv"], None)
    pd.DataFrame({"a": [1.0], "b": [2.0], "score": [0.5]}).to_csv(tmp_path / "4.csv", index=False)
    with pytest.raises(DataError, match=r"'score' would be overwritten"):
        check_inputs(MODEL, [tmp_path / "4.csv"], None)


def test_a_series_is_put_in_time_order_numbers_as_numbers_times_as_times():
    frame = pd.DataFrame({"t": ["10", "9", "100"], "pos": [0, 1, 2]})
    assert in_time_order(frame, "t")["t"].tolist() == ["9", "10", "100"]  # not text order
    times = pd.DataFrame({"t": ["2026-01-02 00:00", "2026-01-01T23:00:00Z", "2026-01-01 22:00"]})
    assert in_time_order(times, "t").index.tolist() == [2, 1, 0]
    ties = pd.DataFrame({"t": [1, 1, 0], "pos": [5, 3, 9]})
    assert in_time_order(ties, "t", "pos")["pos"].tolist() == [9, 3, 5]  # ties in input order
    assert in_time_order(ties, None, "pos")["pos"].tolist() == [3, 5, 9]


def test_output_is_replaced_only_when_complete(tmp_path: Path):
    out = tmp_path / "scores.parquet"
    out.write_bytes(b"previous")
    with pytest.raises(RuntimeError), replacing(out) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed mid-way")
    assert out.read_bytes() == b"previous" and sorted(p.name for p in tmp_path.iterdir()) == [
        "scores.parquet"
    ]
    with replacing(out) as tmp:
        tmp.mkdir()
        (tmp / "part-0.parquet").write_bytes(b"new")
    assert (out / "part-0.parquet").read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.parquet"]
    np.testing.assert_equal(len(list(out.iterdir())), 1)
