"""The sensor detector: scaling sees training data only, batch and online scores agree, the pyfunc
answers frames of readings, and windows are what the models expect."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from aeflow.errors import DataError
from aeflow.models.registry import build_model, load_model, save_model
from aeflow.usecases.sensor.detector import AnomalyDetector, StreamScorer, flat_limits, flat_runs
from aeflow.usecases.sensor.windows import Scaler, fill_missing, make_windows, pad_front

SENSORS = ["a", "b", "c"]


def _series(n: int = 600, seed: int = 0) -> np.ndarray:
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    base = np.stack([np.sin(t / 20), np.cos(t / 20), np.sin(t / 20 + 1)], axis=1)
    return (base * [1, 2, 3] + [10, -5, 0] + rng.normal(0, 0.05, (n, 3))).astype(np.float32)


@pytest.fixture(scope="module")
def detector() -> AnomalyDetector:
    torch.manual_seed(0)
    model = build_model(
        {
            "variant": "vanilla",
            "architecture": "conv1d",
            "latent_dim": 4,
            "channels": [8],
            "hidden_dims": [16],
            "loss": "mse",
        },
        [3, 16],
        output="identity",
    ).eval()
    values = _series()
    model.data_config = {
        "use_case": "sensor",
        "sensors": SENSORS,
        "window_length": 16,
        "score_steps": 2,
        "smoothing": 3,
        "scaler": Scaler.fit(values[:300]).to_json(),
        "threshold": 1.0,
    }
    return AnomalyDetector.from_model(model)


def test_scaler_is_fitted_on_the_training_rows_only():
    values = _series()
    train = values[:300]
    changed = values.copy()
    changed[300:] *= 100  # anything after the training segment
    a, b = Scaler.fit(changed[:300], "standard"), Scaler.fit(train, "standard")
    np.testing.assert_array_equal(a.center, b.center)
    np.testing.assert_allclose(Scaler.fit(train, "standard").transform(train).std(axis=0), 1.0, atol=1e-3)
    robust = Scaler.fit(train, "robust").transform(train)
    assert np.abs(np.median(robust, axis=0)).max() < 1e-3
    constant = Scaler.fit(np.ones((10, 2), np.float32))
    assert (constant.scale == 1).all()


def test_windows_and_padding():
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    w = make_windows(x, 4, stride=2)
    assert w.shape == (4, 2, 4)
    np.testing.assert_array_equal(w[1, :, -1], x[5])  # window i ends at row i*stride + length - 1
    padded = make_windows(pad_front(x, 4), 4)
    assert len(padded) == len(x) and (padded[0] == x[0][:, None]).all()
    filled = fill_missing(np.array([[np.nan], [1.0], [np.nan], [3.0]], np.float32), np.array([7.0]))
    np.testing.assert_array_equal(
        filled[:, 0], [7, 1, 1, 3]
    )  # causal: carried forward, never from later rows


def test_stream_scoring_equals_batch_scoring_with_missing_readings(detector):
    values = _series(200, seed=1)
    values[50, 1] = np.nan
    values[51:54, 0] = np.nan
    batch = detector.score(values)
    scorer = StreamScorer(detector)
    online = np.array([scorer.push(row)[0] for row in values])
    np.testing.assert_allclose(online, batch, rtol=1e-5, atol=1e-6)
    assert len(scorer.window) == detector.length  # constant memory


def _with_history(detector: AnomalyDetector, **cfg: object) -> AnomalyDetector:
    """The fixture's detector scoring against its past (history 60, cooldown 10), with a reference level
    measured on normal readings as the train stage does."""
    from aeflow.evaluation.thresholds import history_stats

    ref = history_stats(detector.errors(_series(300, seed=5))[100:])
    config = {**detector.config, "history": 60, "history_ref": list(ref), "cooldown": 10, "threshold": 4.0}
    return AnomalyDetector(detector.model, {**config, **cfg})


def _online(d: AnomalyDetector, values: np.ndarray) -> tuple[StreamScorer, list[float], list[bool]]:
    """Scores and alarm marks of ``values`` pushed one row at a time, and the scorer that made them."""
    scorer = StreamScorer(d)
    online, online_alarms = [], []
    for row in values:
        online.append(scorer.push(row)[0])
        online_alarms.append(scorer.alarm)
    return scorer, online, online_alarms


def test_history_scores_and_cooldown_alarms_agree_online_and_in_batch(detector):
    d = _with_history(detector)
    values = _series(400, seed=4)
    values[150:160, 0] += 5  # a fault of 10 readings
    values[300, 1] -= 8  # a spike
    values[120, 2] = np.nan
    scores = d.score(values)
    flags = d.flags(scores)
    alarms = d.alarms(flags)
    scorer, online, online_alarms = _online(d, values)
    np.testing.assert_allclose(online, scores, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(online_alarms, alarms)
    assert len(scorer.recent) == d.smoothing  # constant memory: the smoothing window
    assert [len(p.past) for p in scorer.pasts] == [d.history]  # and each member's history
    # the fault is flagged over several rows but pages once; the spike pages once more
    assert flags[150:162].sum() >= 3 and alarms[150:162].sum() == 1 and alarms[300:303].sum() == 1
    assert alarms.sum() <= 4 and flags.sum() > alarms.sum()


def test_outliers_kept_out_of_the_history_agree_online_and_in_batch(detector):
    """``history_outlier``: a large fault's errors stay out of the past, online as in batch, so the smaller
    fault after it scores higher than with every error kept."""
    values = _series(500, seed=6)
    values[150:165, 0] += 12  # a large fault
    values[330:340, 1] -= 4  # a smaller one after it
    plain = _with_history(detector, history=300)
    d = _with_history(detector, history=300, history_outlier=8.0, history_outlier_rows=50)
    scores = d.score(values)
    assert scores[150:165].max() > 8  # some rows are kept out
    assert scores[330:345].max() > plain.score(values)[330:345].max() + 1
    _, online, online_alarms = _online(d, values)
    np.testing.assert_allclose(online, scores, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(online_alarms, d.alarms(d.flags(scores)))


def test_seasonal_scores_and_alarms_agree_online_and_in_batch(detector):
    """With a season, the online scorer keeps the last season of scores (constant memory) and gives the
    batch scores; a fault repeated one season later at the same time no longer alarms."""
    d = _with_history(detector, season_rows=100, season_tolerance=2, cooldown=5)
    values = _series(400, seed=4)
    values[150:153, 0] += 6  # a fault ...
    values[250:253, 0] += 6  # ... that recurs 100 rows (one "season") later
    values[330, 1] -= 8  # and a spike at a new time
    values[120, 2] = np.nan
    scores = d.score(values)
    alarms = d.alarms(d.flags(scores))
    scorer, online, online_alarms = _online(d, values)
    np.testing.assert_allclose(online, scores, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(online_alarms, alarms)
    assert len(scorer.past_scores) == 102  # season + tolerance scores, no more
    plain = _with_history(detector, cooldown=5).score(values)
    assert alarms[150:160].any() and alarms[330:335].any()
    assert plain[250:256].max() > d.threshold >= scores[250:256].max()  # the repeat: flagged only without
    # a detector trained before several seasons stored one number: the same detector as a list of one
    np.testing.assert_array_equal(
        _with_history(detector, season_rows=[100], season_tolerance=2, cooldown=5).score(values), scores
    )


def test_two_seasons_agree_online_and_in_batch(detector):
    """Two seasons (100 and 170 rows): the batch scores are the history scores less the highest score
    around either season back (what :func:`seasonal_excess` does, tested on its own), and the online
    scorer, keeping only the longer season of scores, gives the same scores and alarms."""
    from aeflow.evaluation.thresholds import seasonal_excess

    d = _with_history(detector, season_rows=[100, 170], season_tolerance=2, cooldown=5)
    values = _series(460, seed=4)
    values[100:103, 0] += 6  # a fault ...
    values[200:203, 0] += 6  # ... one short season later
    values[370:373, 0] += 6  # ... and one long season after that
    values[440, 1] -= 8  # a spike at a new time
    scores = d.score(values)
    plain = _with_history(detector, cooldown=5).score(values)
    np.testing.assert_allclose(scores, seasonal_excess(plain, [100, 170], 2))
    only_short = _with_history(detector, season_rows=100, season_tolerance=2, cooldown=5).score(values)
    assert (scores <= only_short + 1e-9).all() and scores[370:376].max() < only_short[370:376].max() - 20
    alarms = d.alarms(d.flags(scores))
    scorer, online, online_alarms = _online(d, values)
    np.testing.assert_allclose(online, scores, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(online_alarms, alarms)
    assert len(scorer.past_scores) == 172  # the longer season + tolerance
    assert alarms[100:110].any() and alarms[440:445].any()


def test_a_short_request_is_scored_against_the_reference_level(detector):
    """A 1-row request has no past of its own: it is judged against the normal level stored with the
    model, so the served model answers on the same scale as a long series."""
    d = _with_history(detector)
    values = _series(400, seed=6)
    ((mu, sd),) = d.history_refs  # a single model: one member
    one = d.score(values[:1])
    np.testing.assert_allclose(one, (d.errors(values[:1]) - mu) / sd)  # smoothing over 1 row = the row
    normal = d.score(values)
    assert np.abs(np.median(normal)) < 1.5  # normal readings sit near 0 standard deviations
    broken = values.copy()
    broken[0] += 6
    assert d.score(broken[:1])[0] > d.threshold  # and a wild single reading is flagged on its own
    with pytest.raises(DataError, match="no history_ref"):
        AnomalyDetector(d.model, {**d.config, "history_ref": None})


def test_flat_runs_count_exact_repeats_and_restart_at_gaps():
    x = np.array([[1.0], [1.0], [1.0], [2.0], [np.nan], [2.0], [2.0]], np.float32)
    np.testing.assert_array_equal(flat_runs(x)[:, 0], [1, 2, 3, 1, 0, 1, 2])
    assert flat_limits(_series(), 4) == [4, 4, 4]  # noisy live sensors never repeat: the minimum holds
    quantised = np.round(_series(), 0)  # a sensor that repeats values legitimately gets a longer limit
    assert all(limit > 4 for limit in flat_limits(quantised, 4))
    assert flat_limits(_series(), 0) is None


def test_flat_limit_covers_the_runs_a_quantised_sensor_makes_by_chance():
    """A sensor that repeats its previous reading with probability q runs r readings long with chance
    q**(r-1): the limit is the shortest run rarer than ``risk``, even where a short training segment never
    showed one (twice its longest training run would flag the live sensor about once per 1,000 rows)."""
    rng = np.random.default_rng(0)
    repeat = rng.random(200_000) < 0.25  # each reading repeats the previous one with probability 1/4
    live = np.cumsum(~repeat).astype(np.float64)[:, None]  # a new value whenever it does not repeat
    train = live[:200]
    q = float(np.mean(train[1:, 0] == train[:-1, 0]))
    assert 0.15 < q < 0.35
    old = 2 * int(flat_runs(train).max())
    limit = flat_limits(train, 2, risk=1e-4)[0]
    assert limit == 1 + int(np.ceil(np.log(1e-4) / np.log(q))) > old
    runs = flat_runs(live)[:, 0]
    assert float(np.mean(runs >= old)) > 5e-4  # the old rule alone: a false "stuck" every ~1,000 rows
    assert float(np.mean(runs >= limit)) < 3e-4  # the new limit: about as rare as the risk promises
    # A sensor that never repeats keeps the minimum; a constant one keeps twice its training run.
    assert flat_limits(np.arange(100.0)[:, None], 4) == [4]
    assert flat_limits(np.ones((50, 1)), 4) == [100]
    # Gaps (NaN) are not repeats: q comes from pairs of readings only.
    gappy = np.where(np.arange(100) % 10 == 0, np.nan, np.arange(100.0))[:, None]
    assert flat_limits(gappy, 4) == [4]


def test_a_stuck_sensor_is_flagged_though_its_error_falls(detector):
    """A frozen plausible value reconstructs *better* than live readings; the flatline guard catches it,
    in batch and online alike, and leaves normal rows (and gaps carried forward) alone."""
    cfg = {**detector.config, "flat_limits": flat_limits(_series()[:300], 4), "threshold": 1.0}
    guarded = AnomalyDetector(detector.model, cfg)
    values = _series(300, seed=3)
    values[200:230, 1] = values[199, 1]  # stuck for 30 readings
    values[100:103, 0] = np.nan  # a gap: carried forward for scoring, but not "stuck"
    plain = detector.score(values)
    scores = guarded.score(values)
    flags = guarded.flags(scores)
    assert not plain[200:230].max() > detector.threshold  # the error alone misses it
    assert flags[203:230].all() and not flags[:200].any() and not flags[232:].any()
    scorer = StreamScorer(guarded)
    online = np.array([scorer.push(row)[0] for row in values])
    np.testing.assert_allclose(online, scores, rtol=1e-5, atol=1e-6)


def _attributing(detector: AnomalyDetector) -> AnomalyDetector:
    """The fixture's detector with each sensor's normal error measured as the train stage does."""
    from aeflow.usecases.sensor.detector import sensor_error_scale

    normal = detector.per_sensor(_series(300, seed=5))[100:]
    cfg = {**detector.config, "sensor_error_scale": sensor_error_scale(normal)}
    cfg["flat_limits"] = flat_limits(_series()[:300], 4)
    return AnomalyDetector(detector.model, cfg)


@pytest.mark.parametrize("sensor", [0, 1, 2])
def test_the_faulty_sensor_takes_the_largest_share_in_batch_and_online(detector, sensor):
    """A level shift of 4 σ on one sensor: every reading of the fault after its first (whose share is
    smoothed with the normal rows before it) names that sensor first, with most of the score; normal rows
    share the score among all sensors; online shares equal batch shares."""
    d = _attributing(detector)
    values = _series(300, seed=7)
    sigma = values[:150, sensor].std()
    values[200:240, sensor] += 4 * sigma
    scores, shares = d.score_and_shares(values)
    np.testing.assert_allclose(shares.sum(axis=1), 1.0, atol=1e-9)
    assert (shares.argmax(axis=1)[201:240] == sensor).all()
    assert shares[201:240, sensor].mean() > 0.6
    assert shares[50:190, sensor].mean() < 0.5  # normal rows: no sensor stands out like that
    np.testing.assert_allclose(scores, d.score(values))
    # flagged readings share by repair: the drop in error when one sensor reads its reconstruction
    rows = np.flatnonzero(d.flags(scores))
    assert len(rows) >= 19 and set(rows) <= set(range(200, 260))
    drops = np.clip(d.repair_drops(d.windows_of(values)[rows]), 0, None)
    np.testing.assert_allclose(shares[rows], drops / drops.sum(axis=1, keepdims=True))
    scorer = StreamScorer(d)
    online = []
    for row in values:
        scorer.push(row)
        online.append(scorer.shares.copy())
    np.testing.assert_allclose(np.array(online), shares, rtol=1e-5, atol=1e-7)
    top = d.top_sensors(shares[220:221])[0]
    assert top[0][0] == SENSORS[sensor] and top[0][1] == pytest.approx(shares[220, sensor])


def test_a_stuck_sensor_takes_the_whole_share_and_the_monitor_names_it(detector):
    """A frozen sensor's error *falls*; the flatline guard flags the row and names that sensor alone."""
    from aeflow.usecases.sensor.detector import RowStream

    d = _attributing(detector)
    values = _series(300, seed=3)
    values[200:230, 1] = values[199, 1]
    _, shares = d.score_and_shares(values)
    stuck_rows = d.stuck(flat_runs(values)).any(axis=1)
    assert stuck_rows[210:230].all() and not stuck_rows[:200].any()
    np.testing.assert_array_equal(shares[stuck_rows], np.tile([0.0, 1.0, 0.0], (int(stuck_rows.sum()), 1)))
    stream = RowStream(d)
    notes = [stream.push(dict(zip(SENSORS, map(str, row), strict=True))) for row in values]
    _, flag, note = notes[225]
    assert flag and note.startswith("b 100%")


def test_a_spike_raises_the_score_at_once(detector):
    values = _series(300, seed=2)
    values[200, 2] += 30
    scores = detector.score(values)
    assert scores[200] > 5 * np.median(scores[:190])


def test_pyfunc_answers_readings_and_checks_columns(detector, tmp_path):
    from mlflow.exceptions import MlflowException

    from aeflow.usecases.sensor.serving import DetectorModel

    save_model(detector.model, str(tmp_path / "model.pt"))
    assert load_model(str(tmp_path / "model.pt")).data_config["sensors"] == SENSORS

    from types import SimpleNamespace

    pyfunc = DetectorModel()
    pyfunc.load_context(SimpleNamespace(artifacts={"model": str(tmp_path / "model.pt")}))
    values = _series(64, seed=3)
    frame = pd.DataFrame(values, columns=SENSORS).assign(
        timestamp=pd.date_range("2026-01-01", periods=64, freq="5min")
    )
    out = pyfunc.predict(None, frame)
    shares = [f"share_{c}" for c in SENSORS]
    assert list(out.columns) == ["score", "flag", "alarm", "threshold", "top_sensor", *shares]
    assert len(out) == 64 and set(out["top_sensor"]) <= set(SENSORS)
    np.testing.assert_allclose(out[shares].sum(axis=1), 1.0, atol=2e-4)  # rounded to 4 places each
    np.testing.assert_allclose(out["score"], detector.score(values), rtol=1e-6)
    one = pyfunc.predict(None, frame.iloc[:1])
    assert len(one) == 1 and np.isfinite(one["score"]).all()
    with pytest.raises(MlflowException, match="missing sensor column") as exc:
        pyfunc.predict(None, frame.drop(columns=["b"]))
    assert exc.value.get_http_status_code() == 400  # what `mlflow models serve` answers
    gap = frame.astype({"b": object})
    gap.loc[5, "b"] = None
    with pytest.raises(MlflowException, match=r"row 5, column 'b' is null, not a finite number") as exc:
        pyfunc.predict(None, gap)  # a null is a mistake in the request, not a reading to fill in
    assert exc.value.get_http_status_code() == 400
    text = frame.astype({"c": object})
    text.loc[2, "c"] = "n/a"
    with pytest.raises(MlflowException, match=r"row 2, column 'c' is 'n/a'"):
        pyfunc.predict(None, text)


def test_season_in_rows_follows_the_sampling_interval():
    from types import SimpleNamespace

    import pandas as pd

    from aeflow.sections import ThresholdParams
    from aeflow.usecases.sensor.series import season_rows

    ts = pd.date_range("2024-01-01", periods=50, freq="5min").astype(str)
    series = SimpleNamespace(name="pump", frame=pd.DataFrame({"timestamp": ts}))
    assert season_rows(series, ThresholdParams(season="1D")) == [288]
    assert season_rows(series, ThresholdParams(season="12h")) == [144]
    assert season_rows(series, ThresholdParams(season=["1D", "7D"])) == [288, 2016]
    assert season_rows(series, ThresholdParams()) == []
    with pytest.raises(DataError, match=r"pump: sensor.threshold.season '10min' is 2 row\(s\).*Fix"):
        season_rows(series, ThresholdParams(season=["1D", "10min"], season_tolerance=2))


def test_attribution_counts_flagged_fault_readings_and_pools_by_reading():
    """Top-1/top-2 over the flagged readings inside each injected fault; series pool by reading."""
    from aeflow.usecases.sensor.evaluate import attribution, pooled

    shares = np.tile([0.2, 0.3, 0.5], (20, 1))  # sensor c first, b second everywhere
    shares[10:14] = [0.7, 0.2, 0.1]  # rows 10-13 name sensor a first
    shares[15] = [0.5, 0.1, 0.4]  # row 15: b last
    flags = np.zeros(20, dtype=bool)
    flags[10:16] = True  # rows 10-15 flagged
    events = [
        {"kind": "spike", "sensor": "a", "start": 10, "end": 13},  # 3 flagged, all top 1
        {"kind": "drift", "sensor": "b", "start": 13, "end": 18},  # flagged 13-15: top 2 at 14-15 only
    ]
    got = attribution(shares, flags, events, SENSORS)
    assert got["attribution_readings"] == 6
    assert got["attribution_top1"] == pytest.approx(3 / 6)  # a at 10-12; b never first
    assert got["attribution_top2"] == pytest.approx(5 / 6)  # b second at rows 13 (a, b) and 14 (c, b)
    assert got["attribution_top1_by_kind"] == {"drift": 0.0, "spike": 1.0}
    assert attribution(shares, flags, events, ["value"]) == {}  # one sensor: nothing to name
    rows = [
        {"tp": 8, "fp": 2, "fn": 2, "tn": 88, "events_total": 2, "events_detected": 2},
        {"tp": 0, "fp": 10, "fn": 10, "tn": 880, "events_total": 3, "events_detected": 0},
    ]
    p = pooled(rows)
    assert p["pooled_f1"] == pytest.approx(16 / (16 + 12 + 12))  # not the mean of 0.8 and 0.0
    assert p["pooled_far_pct"] == pytest.approx(100 * 12 / 980, abs=1e-4)
    assert p["pooled_mar_pct"] == pytest.approx(100 * 12 / 20)
    assert p["pooled_event_recall"] == pytest.approx(2 / 5) and p["pooled_readings"] == 1000


def test_an_ensemble_scores_the_mean_of_its_members_each_on_its_own_scale(detector):
    """A detector of three members scores each member relative to its own past (its own ``history_ref``)
    and averages: exactly the mean of three one-member detectors' scores; online scoring agrees, and a
    fault is still flagged and named."""
    from aeflow.evaluation.thresholds import history_stats
    from aeflow.models.ensemble import AutoencoderEnsemble

    torch.manual_seed(1)
    section = {**dict(detector.model.hparams["config"]), "members": 3}
    model = build_model(section, [3, 16], output="identity").eval()
    assert isinstance(model, AutoencoderEnsemble)
    base = {**detector.config, "history": 60, "cooldown": 10, "threshold": 4.0}
    normal = _series(300, seed=5)
    refs = [
        list(history_stats(AnomalyDetector(m, base | {"history": 0}).errors(normal)[100:]))
        for m in model.members
    ]
    assert len({tuple(r) for r in refs}) == 3  # the members differ
    d = AnomalyDetector(model, {**base, "history_ref": refs})
    values = _series(400, seed=7)
    values[250:260, 1] += 4.0  # a level shift of sensor b
    alone = [
        AnomalyDetector(m, {**base, "history_ref": r}).score(values)
        for m, r in zip(model.members, refs, strict=True)
    ]
    scores = d.score(values)
    np.testing.assert_allclose(scores, np.mean(alone, axis=0), rtol=1e-6, atol=1e-6)
    scorer = StreamScorer(d)
    online = np.array([scorer.push(row)[0] for row in values])
    np.testing.assert_allclose(online, scores, rtol=1e-5, atol=1e-5)
    assert d.flags(scores)[250:262].any() and not d.flags(scores)[100:240].any()
    score, shares = d.score_and_shares(values)
    flagged = np.flatnonzero(d.flags(score)[250:262]) + 250
    assert (shares[flagged].argmax(axis=1) == 1).all()  # sensor b named
    with pytest.raises(DataError, match="2 history_ref pairs for a model of 3 members"):
        AnomalyDetector(model, {**base, "history_ref": refs[:2]})


def _with_readings(detector: AnomalyDetector, seasons: list[int], **cfg: object) -> AnomalyDetector:
    """The history detector comparing readings with ``seasons`` back (± 2 rows), its reference level
    measured on normal readings as the train stage does."""
    from aeflow.usecases.sensor.detector import season_readings_ref

    ref, _ = season_readings_ref(detector.scaled(_series(600, seed=5)), seasons, 2, slice(300, 600), 0.5)
    return _with_history(
        detector, season_rows=seasons, season_tolerance=2, cooldown=5, season_readings_ref=ref, **cfg
    )


def test_readings_unlike_a_season_back_are_flagged_and_attributed(detector):
    """A contextual fault: sensor b reads values it reads every cycle, half a cycle early (the sine's period
    is about 126 rows). Each window is shaped as usual, so the errors do not flag it; compared with the
    readings one and two cycles back, most of its rows are flagged, each named on b, and nothing else is
    flagged (two seasons: the cycle after the fault finds its match two cycles back). Batch and online
    agree on scores, alarms and shares, the online scorer keeping the longer season of readings."""
    from aeflow.usecases.sensor.detector import season_readings_ref

    values = _series(700, seed=7)
    values[400:460, 1] = _series(763, seed=7)[463:523, 1]  # b, 63 rows (half a cycle) ahead
    d = _with_readings(detector, [126, 251], history=300)
    plain = _with_history(detector, season_rows=[126, 251], season_tolerance=2, cooldown=5, history=300)
    scores, shares = d.score_and_shares(values)
    readings, _ = d.reading_scores(d.scaled(values))
    errors = plain.score(values)
    np.testing.assert_allclose(scores, np.maximum(errors, readings))  # the higher of the two
    assert errors[400:460].max() < d.threshold  # the shape is normal
    flagged = d.flags(scores)
    assert flagged[400:460].sum() >= 30 and not flagged[:400].any() and not flagged[460:].any()
    assert (np.argmax(shares[flagged], axis=1) == SENSORS.index("b")).all()
    assert shares[flagged, 1].min() > 0.5  # the larger part of every flagged row
    scorer = StreamScorer(d)
    online, online_alarms, online_shares = [], [], []
    for row in values:
        online.append(scorer.push(row)[0])
        online_alarms.append(scorer.alarm)
        online_shares.append(scorer.shares.copy())
    np.testing.assert_allclose(online, scores, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(online_alarms, d.alarms(flagged))
    np.testing.assert_allclose(np.array(online_shares)[flagged], shares[flagged], rtol=1e-6, atol=1e-6)
    assert len(scorer.past_readings) == 253  # the longer season + tolerance readings, no more
    # normal readings shorter than two seasons leave readings uncompared: the detector scores errors only
    short, repeat = season_readings_ref(detector.scaled(values[:200]), [251], 2, slice(100, 200), 0.5)
    assert short is None and repeat is None
    off = _with_history(
        detector,
        season_rows=[126, 251],
        season_tolerance=2,
        cooldown=5,
        history=300,
        season_readings_ref=short,
    )
    np.testing.assert_array_equal(off.score(values), errors)


def test_readings_are_compared_only_where_the_normal_data_repeat_at_a_season(detector):
    """``season_repeat``: the readings' correlation with themselves one season later, mean over sensors, best
    season. The test series (a sine of period 2π·20 ≈ 125.7 rows) repeats at 126 rows (cos(0.34/20) ≈ 1 less
    noise) and is in antiphase at 63; white noise does not repeat at all. ``season_readings_ref`` measures the
    reference level only where the repeat reaches ``min_correlation``, and says the repeat either way."""
    from aeflow.usecases.sensor.detector import season_readings_ref, season_repeat

    sine = detector.scaled(_series(600, seed=5))
    assert season_repeat(sine, [126]) > 0.99
    assert season_repeat(sine, [63]) < -0.99
    assert season_repeat(sine, [63, 126]) > 0.99  # the best season counts
    noise = np.random.default_rng(3).normal(size=(600, 3))
    assert abs(season_repeat(noise, [126])) < 0.15
    assert season_repeat(sine, [301]) is None  # fewer than two seasons of rows
    assert season_repeat(np.ones((600, 3)), [126]) is None  # no sensor varies
    ref, repeat = season_readings_ref(sine, [126], 2, slice(300, 600), 0.5)
    assert repeat > 0.99 and ref is not None and ref[1] > 0
    ref, repeat = season_readings_ref(noise, [126], 2, slice(300, 600), 0.5)
    assert ref is None and repeat == season_repeat(noise, [126])
    ref, _ = season_readings_ref(noise, [126], 2, slice(300, 600), -1.0)  # -1: always compared
    assert ref is not None
    # measured on the rows up to the end of the normal ones: what comes after is not seen at training
    later = np.concatenate([sine[:300], noise[300:]])
    assert season_repeat(later[:300], [126]) == season_readings_ref(later, [126], 2, slice(150, 300), 0.5)[1]
