"""The tabular use case's parts: reading tables (and the messages bad ones get), the split and the injected
anomalies, the encoder, validation, the scorer's attribution, the pyfunc's answers and ``aeflow monitor``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from aeflow.errors import DataError, ParamsError
from aeflow.models.registry import build_model, save_model
from aeflow.usecases.tabular.corrupt import break_dependency, inject, read_split, split_info, split_rows
from aeflow.usecases.tabular.encoding import Encoder
from aeflow.usecases.tabular.params import TabularIngestParams, TabularValidateParams
from aeflow.usecases.tabular.scorer import RowMonitor, TabularScorer
from aeflow.usecases.tabular.sources import read_table, read_table_files, simulate_transactions, write_table


def _file_params(path, **kw) -> TabularIngestParams:
    return TabularIngestParams(source="file", path=str(path), **kw)


def _csv(path, rows: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=rows)
    frame = pd.DataFrame(
        {
            "a": a.round(4),
            "b": (2 * a + rng.normal(0, 0.1, rows)).round(4),
            "shop": rng.choice(["x", "y", "z"], rows),
            "fraud": (rng.random(rows) < 0.05).astype(int),
        }
    )
    frame.to_csv(path, index=False)
    return frame


# ------------------------------------------------------------------------------------------ sources
def test_csv_is_typed_and_labels_split_off(tmp_path):
    _csv(tmp_path / "t.csv")
    table = read_table_files(tmp_path / "t.csv", _file_params(tmp_path / "t.csv", label_column="fraud"), 0)
    assert table.numeric == ["a", "b"] and table.categorical == ["shop"]
    assert table.labels is not None and set(table.labels.unique()) <= {0, 1}
    assert "fraud" not in table.frame.columns and len(table.frame) == 300


def test_a_text_in_a_numeric_column_names_file_column_row_and_line(tmp_path):
    frame = _csv(tmp_path / "t.csv")
    frame["a"] = frame["a"].astype(object)
    frame.loc[17, "a"] = "12,5kg"
    frame.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DataError) as exc:
        read_table_files(tmp_path / "t.csv", _file_params(tmp_path / "t.csv"), 0)
    msg = str(exc.value)
    assert str(tmp_path / "t.csv") in msg and "column 'a'" in msg and "row 17 (line 19)" in msg
    assert "'12,5kg' is not a number" in msg and "categorical_columns" in msg


def test_folder_files_must_share_columns_and_the_odd_one_is_named(tmp_path):
    _csv(tmp_path / "1.csv")
    _csv(tmp_path / "2.csv", seed=1)
    table = read_table_files(tmp_path, _file_params(tmp_path, label_column="fraud"), 0)
    assert len(table.frame) == 600 and len(table.files) == 2
    _csv(tmp_path / "3.csv").rename(columns={"b": "B"}).to_csv(tmp_path / "3.csv", index=False)
    with pytest.raises(DataError, match=r"3\.csv: its columns differ .*missing: b; extra: B"):
        read_table_files(tmp_path, _file_params(tmp_path, label_column="fraud"), 0)


def test_missing_label_column_and_unknown_drop_column_are_named(tmp_path):
    _csv(tmp_path / "t.csv")
    with pytest.raises(DataError, match=r"no label column 'label'.*columns are a, b, shop, fraud"):
        read_table_files(tmp_path / "t.csv", _file_params(tmp_path / "t.csv", label_column="label"), 0)
    with pytest.raises(ParamsError, match="drop_columns names id"):
        read_table_files(tmp_path / "t.csv", _file_params(tmp_path / "t.csv", drop_columns=["id"]), 0)


def test_adbench_npz_layout_and_max_rows_keeps_the_anomaly_share(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(1000, 12)), (rng.random(1000) < 0.1).astype(np.int64)
    np.savez(tmp_path / "d.npz", X=x, y=y)
    table = read_table_files(tmp_path / "d.npz", _file_params(tmp_path / "d.npz", max_rows=400), 0)
    assert table.numeric == [f"x{i:02d}" for i in range(12)] and len(table.frame) == 400
    assert table.labels.mean() == pytest.approx(y.mean(), abs=0.01)
    assert "random sample of 400 of 1,000 rows" in table.origin
    np.savez(tmp_path / "bad.npz", data=x)
    with pytest.raises(DataError, match=r"bad\.npz: no array 'X' \(found data\)"):
        read_table_files(tmp_path / "bad.npz", _file_params(tmp_path / "bad.npz"), 0)


def test_download_source_fetches_the_file_over_http(tmp_path, http_server):
    served = tmp_path / "srv"
    served.mkdir()
    _csv(served / "t.csv")
    url = http_server(served) + "t.csv"
    p = TabularIngestParams(
        source="download", url=url, download_dir=str(tmp_path / "dl"), label_column="fraud"
    )
    from aeflow.usecases.tabular.sources import ingest_table

    table = ingest_table(p, 0)
    assert (tmp_path / "dl" / "t.csv").is_file() and len(table.frame) == 300


# ------------------------------------------------------------------------------------------ split
def test_semi_supervised_trains_on_normal_rows_only_and_unsupervised_on_all():
    y = np.zeros(1000, dtype=np.int8)
    y[::10] = 1
    semi = split_rows(y, 0.3, 0.15, "semi_supervised", 0)
    unsup = split_rows(y, 0.3, 0.15, "unsupervised", 0)
    assert y[semi["train"]].sum() == 0 and y[semi["val"]].sum() == 0
    assert y[unsup["train"]].sum() > 0
    np.testing.assert_array_equal(semi["test"], unsup["test"])  # the same test split in both
    assert len(semi["test"]) == 300 and y[semi["test"]].mean() == pytest.approx(0.1)
    assert not set(semi["train"]) & set(semi["test"])


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    from aeflow.params import parse_params

    root = tmp_path_factory.mktemp("tabular")
    write_table(simulate_transactions(2000, 3), root / "raw")
    params = parse_params({"tabular": {"anomalies": {"fraction": 0.1}}})
    info = inject(params, root / "raw", root / "interim")
    return root, info


def test_injected_anomalies_of_four_kinds_land_in_the_test_split_only(split):
    root, info = split
    assert info["injected"] == {"local": 15, "global": 15, "dependency": 15, "clustered": 15}
    test, meta = read_split(root / "interim", "test")
    for name in ("train", "val"):
        assert read_split(root / "interim", name)[1]["label"].sum() == 0
    assert meta["label"].sum() == 60 and set(meta.loc[meta["label"] == 1, "kind"]) == set(info["injected"])
    assert split_info(root / "interim")["anomalies"]["test"] == 60
    # a dependency anomaly names its corrupted column, whose value differs from the source row's
    raw = read_table(root / "raw").frame
    dep = meta[meta["kind"] == "dependency"]
    for i, row in dep.iterrows():
        column = row["corrupted"]
        assert column in raw.columns and test.at[i, column] != raw.at[int(row["source_row"]), column]
    # generated global rows reach beyond the training range in at least one column
    glob = test[(meta["kind"] == "global").to_numpy()]
    train = read_split(root / "interim", "train")[0]
    assert ((glob["amount"] > train["amount"].max()) | (glob["amount"] < train["amount"].min())).any()


def test_break_dependency_moves_values_far_from_their_own():
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"a": rng.normal(size=500), "b": rng.normal(size=500)})
    rows = ref.iloc[:50].copy()
    out, changed = break_dependency(rows, ref, 1, rng)
    for i, cols in enumerate(changed):
        (c,) = cols
        before = (ref[c] < rows[c].iat[i]).mean()
        after = (ref[c] < out[c].iat[i]).mean()
        assert abs(after - before) >= 1 / 3 - 0.01, (c, before, after)


def test_break_dependency_always_changes_sparse_and_constant_columns_are_left_alone():
    """In a mostly-zero column a 0 must not be "replaced" by another 0 (a corruption that changes nothing
    cannot be found by any attribution); a column with one value cannot be changed and is never chosen."""
    rng = np.random.default_rng(1)
    ref = pd.DataFrame(
        {
            "sparse": (rng.random(1000) < 0.1).astype(float) * rng.integers(1, 5, 1000),
            "binary": (rng.random(1000) < 0.05).astype(float),
            "flat": np.full(1000, 3.0),
        }
    )
    rows = ref[(ref["sparse"] == 0) & (ref["binary"] == 0)].iloc[:200]
    out, changed = break_dependency(rows, ref, 1, rng)
    assert {c for (c,) in changed} == {"sparse", "binary"}
    for i, (c,) in enumerate(changed):
        assert out[c].iat[i] != rows[c].iat[i] and out[c].iat[i] in set(ref[c]), (c, out[c].iat[i])
    assert (out["flat"] == 3.0).all()


# ------------------------------------------------------------------------------------------ encoder
def test_encoder_scales_on_training_rows_and_one_hots_with_an_other_slot():
    train = pd.DataFrame({"a": [1.0, 2.0, 3.0, np.nan], "c": ["x", "x", "y", None]})
    enc = Encoder.fit(train, ["a"], ["c"], "standard", 20)
    assert enc.width == 1 + 3 and [c for c, _ in enc.groups] == ["a", "c"]
    x = enc.transform(pd.DataFrame({"a": [2.0, np.nan], "c": ["y", "never seen"]}))
    assert x[0, 0] == pytest.approx((2.0 - np.mean([1, 2, 3, 2])) / np.std([1, 2, 3, 2]))
    assert x[1, 0] == x[0, 0]  # missing → the training median (2.0)
    np.testing.assert_array_equal(x[:, 1:], [[0, 1, 0], [0, 0, 1]])  # unseen → other
    again = Encoder.from_json(enc.to_json())
    np.testing.assert_array_equal(again.transform(train), enc.transform(train))
    sums = enc.column_sums(np.ones((2, 4)))
    np.testing.assert_array_equal(sums, [[1, 3], [1, 3]])
    with pytest.raises(DataError, match=r"request: row 1, column 'a' is 'abc', not a number"):
        enc.transform(pd.DataFrame({"a": ["1", "abc"], "c": ["x", "y"]}), "request")
    with pytest.raises(DataError, match=r"missing column\(s\) 'c' and unknown column\(s\) 'd'"):
        enc.check_columns(["a", "d"], "request")


# ------------------------------------------------------------------------------------------ validation
def test_validation_names_constant_columns_ids_and_bad_labels():
    from aeflow.usecases.tabular.sources import Table
    from aeflow.usecases.tabular.validation import table_suites
    from aeflow.validation.core import run_suites

    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "const": 1.0,
            "id": [f"u{i}" for i in range(n)],
            "c": rng.choice(["p", "q"], n),
        }
    )
    labels = pd.Series(np.where(np.arange(n) == 7, 2, 0))
    table = Table(frame, ["a", "const"], ["id", "c"], labels)
    report = run_suites(table_suites(table, "t.csv", TabularValidateParams()), "tabular")
    failed = {(e["what"], tuple(e["unexpected_rows"])) for e in report["results"] if not e["success"]}
    whats = {w for w, _ in failed}
    assert "labels in {0, 1}" in whats and ("labels in {0, 1}", (7,)) in failed
    assert "column 'const': 1 distinct value(s)" in whats and "column 'id': 300 distinct value(s)" in whats
    assert len(failed) == 3
    ok = run_suites(
        table_suites(table, "t.csv", TabularValidateParams(allow_constant_columns=True, max_categories=500)),
        "t",
    )
    assert [e["what"] for e in ok["results"] if not e["success"]] == ["labels in {0, 1}"]


# ------------------------------------------------------------------------------------------ scorer
@pytest.fixture(scope="module")
def scorer() -> TabularScorer:
    torch.manual_seed(0)
    train = pd.DataFrame({"a": np.linspace(0, 1, 50), "b": np.linspace(1, 0, 50), "c": ["x", "y"] * 25})
    enc = Encoder.fit(train, ["a", "b"], ["c"], "standard", 20)
    model = build_model(
        {"variant": "vanilla", "architecture": "mlp", "latent_dim": 2, "hidden_dims": [8], "loss": "mse"},
        [enc.width],
        output="identity",
    ).eval()
    model.data_config = {"use_case": "tabular", "encoder": enc.to_json(), "threshold": 5.0}
    return TabularScorer.from_model(model)


def test_answer_names_the_top_columns_with_their_share_of_the_error(scorer):
    frame = pd.DataFrame({"a": [0.5, 40.0], "b": [0.5, 0.5], "c": ["x", "y"]})
    answer = scorer.answer(frame, top_k=2)
    assert list(answer.columns) == [
        "score",
        "flag",
        "threshold",
        "feature_1",
        "share_1",
        "feature_2",
        "share_2",
    ]
    assert answer.at[1, "feature_1"] == "a" and answer.at[1, "share_1"] > 0.9  # the column sent far out
    assert bool(answer.at[1, "flag"]) and answer.at[1, "score"] > answer.at[0, "score"]
    errors = scorer.column_errors(scorer.encoder.transform(frame))
    np.testing.assert_allclose(answer["score"], errors.mean(axis=1))
    assert (answer["share_1"] >= answer["share_2"]).all()


def test_pyfunc_answers_and_refuses_bad_requests_with_400(scorer, tmp_path):
    from mlflow.exceptions import MlflowException

    from aeflow.usecases.tabular.serving import TabularModel, signature

    save_model(scorer.model, str(tmp_path / "model.pt"))
    pm = TabularModel()
    pm.load_context(type("C", (), {"artifacts": {"model": str(tmp_path / "model.pt")}})())
    ok = pm.predict(None, pd.DataFrame({"a": [0.1], "b": [0.2], "c": ["x"], "id": [7]}), {"top_k": 1})
    assert list(ok.columns) == ["score", "flag", "threshold", "feature_1", "share_1"]  # extra columns ignored
    for bad, words in (
        (pd.DataFrame({"a": [0.1], "c": ["x"]}), "missing column(s) 'b'"),
        (pd.DataFrame({"a": ["oops"], "b": [0.2], "c": ["x"]}), "row 0, column 'a' is 'oops'"),
    ):
        with pytest.raises(MlflowException) as exc:
            pm.predict(None, bad)
        assert words in str(exc.value) and exc.value.get_http_status_code() == 400
    sig, example = signature(scorer)
    assert list(example.columns) == ["a", "b", "c"]
    assert [c.name for c in sig.inputs.inputs] == ["a", "b", "c"] and sig.params.to_dict()[0][
        "name"
    ] == "top_k"


def test_monitor_scores_table_rows_and_names_columns(scorer, tmp_path):
    from typer.testing import CliRunner

    from aeflow.cli import app

    monitor = RowMonitor(scorer, top_k=2)
    score, flag, note = monitor.push({"a": "40", "b": "0.5", "c": "y"})
    assert score > scorer.threshold
    assert flag and note.startswith("a ") and note.count(",") == 1
    with pytest.raises(DataError, match="column 'a': 'n/a' is not a number"):
        monitor.push({"a": "n/a", "b": "0.5", "c": "y"})
    save_model(scorer.model, str(tmp_path / "model.pt"))
    pd.DataFrame({"a": [0.5, 40.0], "b": [0.5, 0.5], "c": ["x", "y"]}).to_csv(
        tmp_path / "rows.csv", index=False
    )
    res = CliRunner().invoke(
        app, ["monitor", "--model", str(tmp_path / "model.pt"), "--input", str(tmp_path / "rows.csv")]
    )
    assert res.exit_code == 0, res.output
    lines = [line for line in res.output.splitlines() if line.startswith("row ")]
    assert len(lines) == 1 and lines[0].startswith("row 2\t") and "ANOMALY" in lines[0] and "\ta " in lines[0]


@pytest.mark.shared_data
def test_reads_a_real_adbench_file_in_place(shared_datasets):
    path = shared_datasets / "adbench" / "6_cardio.npz"
    table = read_table_files(path, _file_params(path), 0)
    assert table.frame.shape == (1831, 21) and int(table.labels.sum()) == 176
    assert table.files == [str(path)]
