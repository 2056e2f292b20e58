"""``aeflow score``'s checks and helpers that need no Spark: input files, columns against the model's
signature, time order of a series, an output replaced only when complete, and what a Spark task's Python
worker does with its rows (series put together across Arrow batches, answers beside the input columns as
they came, one part file per task however often it is tried)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aeflow.errors import DataError
from aeflow.scoring import (
    PartFile,
    ScoringModel,
    check_inputs,
    finish_parts,
    in_time_order,
    input_files,
    replacing,
    series_runs,
    with_answer,
)

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


def test_series_come_together_across_arrow_batches_a_missing_key_being_one_series():
    """Rows sorted by series, cut into batches anywhere (as Spark hands them over): one table per series,
    every row once, in the order they came."""
    import pyarrow as pa

    keys = ["a", "a", "a", "b", "b", "c", None, None, "d"]
    table = pa.table({"plant": keys, "x": np.arange(9.0)})
    for size in (1, 2, 4, 9):
        runs = list(series_runs(iter(table.to_batches(max_chunksize=size)), "plant"))
        assert [r.column("plant")[0].as_py() for r in runs] == ["a", "b", "c", None, "d"], size
        assert [r.column("x").to_pylist() for r in runs] == [[0, 1, 2], [3, 4], [5], [6, 7], [8]], size
    assert list(series_runs(iter([]), "plant")) == []
    numbers = pa.table({"plant": [1.0, 1.0, float("nan"), float("nan"), 2.0], "x": np.arange(5.0)})
    runs = list(series_runs(iter(numbers.to_batches(max_chunksize=2)), "plant"))
    assert [r.num_rows for r in runs] == [2, 2, 1]


class _Doubling:
    """A pyfunc's stand-in: the answer is computed from the frame it is given."""

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"score": frame["a"] * 2.0, "flag": frame["a"] > 1.5})


def test_the_answer_goes_beside_the_input_columns_as_they_came_source_last():
    import pyarrow as pa

    model = ScoringModel("m", "rows", [("a", "double")], [("score", "double"), ("flag", "boolean")])
    when = pa.array([0, 60_000_000], type=pa.timestamp("us", tz="UTC"))
    rows = pa.table({"a": [1.0, 2.0], "source": ["f.csv", "f.csv"], "when": when, "id": pa.array([7, 8])})
    out = with_answer(model, _Doubling(), rows)
    assert out.column_names == ["a", "when", "id", "score", "flag", "source"]
    assert out.schema.field("when").type == pa.timestamp("us", tz="UTC")  # as Spark sent it
    assert out.schema.field("id").type == pa.int64() and out.schema.field("flag").type == pa.bool_()
    assert out.column("score").to_pylist() == [2.0, 4.0] and out.column("flag").to_pylist() == [False, True]


def test_a_task_writes_one_part_however_often_it_is_tried_and_leftovers_go(tmp_path: Path):
    """Outside Spark a part is partition 0, attempt 0: a second attempt replaces the first's part (same
    name), a failed attempt's unfinished file is removed when the job ends, and no rows at all stops."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for value in (1.0, 2.0):  # two attempts of one task
        part = PartFile(str(tmp_path))
        part.write(pa.table({"a": [value, value]}))
        counted = part.close()
        assert counted.column(0).to_pylist() == [2]
    unfinished = PartFile(str(tmp_path))
    unfinished.write(pa.table({"a": [9.0]}))  # an attempt that died here: its writer never closed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["_attempt-00000-0.parquet", "part-00000.parquet"]
    finish_parts(tmp_path, [tmp_path / "in.csv"], 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["_SUCCESS", "part-00000.parquet"]
    assert pq.read_table(tmp_path).column("a").to_pylist() == [2.0, 2.0]
    with pytest.raises(DataError, match=r"in\.csv: no rows to score"):
        finish_parts(tmp_path, [tmp_path / "in.csv"], 0)
