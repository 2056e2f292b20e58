"""Properties that must hold for every input, checked with hypothesis on random ones.

- loaders: IDX files of every dtype and rank read back exactly, and any cut-short or garbled file is a
  :class:`DataError` (never a numpy error); sensor CSVs of random frames (any delimiter, missing readings)
  read back exactly, and so do ingested series folders;
- noise: speech mixed at a requested SNR measures within 0.1 dB of it, and the same seed gives the same
  bytes (speech noise and mixtures, MNIST noise and the inject_noise stage's files);
- windows: no training or validation window crosses a split boundary, and scoring gives every row one
  window that ends at it.
"""

from __future__ import annotations

import gzip
import hashlib
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from aeflow.errors import DataError
from aeflow.params import ProjectParams as Params
from aeflow.usecases.mnist.corrupt import corrupt_images
from aeflow.usecases.mnist.idx import parse_idx, read_idx, write_idx_gz
from aeflow.usecases.sensor.params import SensorIngestParams
from aeflow.usecases.sensor.sources import (
    SensorSeries,
    read_csv_series,
    read_series,
    split_bounds,
    write_series,
)
from aeflow.usecases.sensor.windows import make_windows, pad_front
from aeflow.usecases.speech.noise import NoiseBank, mix_at_snr
from aeflow.usecases.speech.params import NOISE_KINDS
from tests.reliability.conftest import encode_idx_any

#: Small and time-boxed: the whole file runs in well under a minute on two cores. No example database
#: (nothing is written into the checkout); failures print the example and a reproduction blob.
FEW = settings(
    max_examples=50,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
RATE = 8000


# ------------------------------------------------------------------------------------------------ IDX
IDX_DTYPES = [np.uint8, np.int8, np.dtype(">i2"), np.dtype(">i4"), np.dtype(">f4")]
shapes = st.lists(st.integers(0, 6), min_size=1, max_size=4).map(tuple)


@FEW
@given(data=st.data(), dtype=st.sampled_from(IDX_DTYPES), shape=shapes)
def test_idx_of_every_dtype_and_rank_reads_back_exactly(data, dtype, shape):
    array = data.draw(arrays(dtype, shape))
    back = parse_idx(encode_idx_any(array))
    assert back.shape == array.shape and back.dtype == array.dtype.newbyteorder("=")
    np.testing.assert_array_equal(back, array)  # NaN where NaN (float32 IDX may hold NaN and inf)


@FEW
@given(images=arrays(np.uint8, st.tuples(st.integers(0, 5), st.integers(1, 8), st.integers(1, 8))))
def test_idx_gz_file_round_trip(tmp_path_factory, images):
    path = tmp_path_factory.mktemp("idx") / "train-images-idx3-ubyte.gz"
    write_idx_gz(path, images)
    np.testing.assert_array_equal(read_idx(path), images)


@FEW
@given(
    images=arrays(np.uint8, st.tuples(st.integers(1, 4), st.integers(1, 6), st.integers(1, 6))),
    cut=st.floats(0.0, 1.0, exclude_max=True),
    compressed=st.booleans(),
)
def test_idx_cut_anywhere_is_a_data_error_naming_the_file(tmp_path_factory, images, cut, compressed):
    raw = encode_idx_any(images)
    blob = gzip.compress(raw, mtime=0) if compressed else raw
    path = tmp_path_factory.mktemp("idx") / ("t.gz" if compressed else "t")
    path.write_bytes(blob[: int(cut * len(blob))])
    with pytest.raises(DataError) as exc:
        read_idx(path)
    assert str(path) in str(exc.value) and "Fix:" in str(exc.value)


@FEW
@given(blob=st.binary(max_size=200))
def test_idx_parser_never_fails_with_anything_but_a_data_error(blob):
    try:
        parse_idx(blob, "blob")
    except DataError as exc:
        assert str(exc).startswith("blob: ")


# ------------------------------------------------------------------------------------------ sensor CSV
names = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True).filter(
    lambda s: s not in ("timestamp", "label")
)
readings = st.floats(-1e12, 1e12) | st.just(float("nan"))  # NaN = a missing reading


@st.composite
def sensor_frames(draw) -> pd.DataFrame:
    n = draw(st.integers(2, 40))
    sensors = draw(st.lists(names, min_size=1, max_size=4, unique=True))
    steps = draw(st.lists(st.integers(1, 86_400), min_size=n - 1, max_size=n - 1))
    seconds = np.concatenate([[0], np.cumsum(steps)])
    start = np.datetime64("2026-01-05T00:00:00", "ns")
    frame = pd.DataFrame({"timestamp": start + seconds.astype("timedelta64[s]").astype("timedelta64[ns]")})
    for name in sensors:
        frame[name] = np.array(draw(st.lists(readings, min_size=n, max_size=n)), dtype=np.float64)
    return frame


@FEW
@given(frame=sensor_frames(), delimiter=st.sampled_from([",", ";", "\t", "|"]), sniff=st.booleans())
def test_sensor_csv_of_a_random_frame_reads_back_exactly(tmp_path_factory, frame, delimiter, sniff):
    path = tmp_path_factory.mktemp("csv") / "plant.csv"
    frame.to_csv(path, index=False, sep=delimiter)
    params = SensorIngestParams(source="csv", path=str(path), delimiter=None if sniff else delimiter)
    series = read_csv_series(path, params)
    assert series.sensors == list(frame.columns[1:]) and not series.warnings
    assert series.frame["timestamp"].tolist() == frame["timestamp"].tolist()
    for name in series.sensors:
        np.testing.assert_array_equal(series.frame[name].to_numpy(), frame[name].to_numpy(), err_msg=name)
    assert (series.frame["label"] == 0).all()


@FEW
@given(frame=sensor_frames(), labels=st.lists(st.integers(0, 1), min_size=40, max_size=40))
def test_ingested_series_folder_reads_back_exactly(tmp_path_factory, frame, labels):
    frame = frame.assign(label=np.array(labels[: len(frame)], dtype=np.int64))
    half = len(frame) // 2
    series = SensorSeries(
        "plant.csv",
        frame,
        [],
        "test",
        splits={"train": (0, half), "val": (half, half), "test": (half, len(frame))},
    )
    out = tmp_path_factory.mktemp("raw") / "sensor"
    write_series([series], out, SensorIngestParams())
    (back,) = read_series(out)
    pd.testing.assert_frame_equal(back.frame, frame, check_exact=True)
    assert back.splits == series.splits and back.name == series.name


# ------------------------------------------------------------------------------------------------ noise
def _snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    c = clean.astype(np.float64)
    n = noisy.astype(np.float64) - c
    return 10 * math.log10(np.mean(c**2) / np.mean(n**2))


@FEW
@given(
    n=st.integers(64, 4000),
    level=st.floats(1e-3, 0.9),
    source=st.sampled_from(NOISE_KINDS),
    snr=st.floats(-20, 40),
    seed=st.integers(0, 2**32 - 1),
)
def test_speech_is_mixed_at_the_requested_snr_and_seeded(n, level, source, snr, seed):
    clean = (level * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)
    bank = NoiseBank(RATE, None)

    def mixture(s: int) -> tuple[np.ndarray, np.ndarray, float]:
        rng = np.random.default_rng([s, 11])
        noise = bank.make(source, n, rng)
        return (noise, *mix_at_snr(clean, noise, snr))

    noise, noisy, reported = mixture(seed)
    assert noisy.dtype == np.float32 and noisy.shape == clean.shape
    assert abs(_snr_db(clean, noisy) - snr) < 0.1  # measured here, independently of the library
    assert abs(reported - snr) < 0.1
    noise2, noisy2, _ = mixture(seed)
    assert noise.tobytes() == noise2.tobytes() and noisy.tobytes() == noisy2.tobytes()
    assert not np.array_equal(noise, mixture(seed + 1)[0])


unit_images = arrays(
    np.float32,
    st.tuples(st.integers(1, 4), st.integers(1, 10), st.integers(1, 10)),
    elements=st.floats(0, 1, width=32),
)


@FEW
@given(
    x=unit_images,
    kind=st.sampled_from(["gaussian", "masking", "salt_pepper"]),
    level=st.floats(0.01, 1.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_mnist_noise_is_seeded_and_stays_in_range(x, kind, level, seed):
    a = corrupt_images(x, kind, level, np.random.default_rng(seed))
    b = corrupt_images(x, kind, level, np.random.default_rng(seed))
    assert a.tobytes() == b.tobytes()
    assert a.dtype == np.float32 and a.shape == x.shape and a.min() >= 0 and a.max() <= 1
    if kind == "masking":  # pixels are kept or zeroed, never changed otherwise
        assert np.all((a == x) | (a == 0))
    if kind == "salt_pepper":
        assert np.all((a == x) | (a == 0) | (a == 1))


@settings(FEW, max_examples=8)
@given(
    kind=st.sampled_from(["gaussian", "masking", "salt_pepper"]),
    level=st.floats(0.05, 1.0),
    seed=st.integers(0, 2**31 - 1),
)
def test_inject_noise_stage_writes_the_same_bytes_for_the_same_seed(tmp_path_factory, kind, level, seed):
    from aeflow.io import save_arrays
    from aeflow.stages.noise import run

    root = tmp_path_factory.mktemp("noise")
    rng = np.random.default_rng(0)
    for name, rows in (("train", 12), ("val", 3), ("test", 4)):
        images = rng.integers(0, 256, size=(rows, 28, 28)).astype(np.uint8)
        save_arrays(root / "raw" / f"{name}.npz", {"images": images, "labels": np.arange(rows) % 10})

    def files(s: int, out: str) -> dict[str, str]:
        params = Params.model_validate({"seed": s, "mnist": {"noise": {"kind": kind, "level": level}}})
        run("mnist", params, root / "raw", root / out)
        return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted((root / out).iterdir())}

    first, again = files(seed, "a"), files(seed, "b")
    assert first == again and set(first) == {"train.npz", "val.npz", "test.npz", "info.json"}
    other = files(seed + 1, "c")
    assert other["train.npz"] != first["train.npz"]


# ---------------------------------------------------------------------------------------------- windows
@FEW
@given(
    n=st.integers(10, 3000),
    train=st.floats(0.05, 0.9),
    val=st.floats(0.0, 0.5),
    length=st.integers(4, 64),
    stride=st.integers(1, 8),
)
def test_no_window_crosses_a_split_boundary(n, train, val, length, stride):
    assume(train + val < 0.95)
    p = SensorIngestParams(train_fraction=train, val_fraction=val)
    try:
        bounds = split_bounds(n, p, nab=False)
    except DataError:
        assume(False)
    (t0, t1), (v0, v1), (s0, s1) = bounds["train"], bounds["val"], bounds["test"]
    assert (t0, t1, v1, s1) == (0, v0, s0, n) and t1 >= 1 and s1 > s0  # contiguous, in order, covering
    rows = np.arange(n, dtype=np.float32)[:, None]  # each reading is its own row number
    # What training sees: train windows at the training stride, validation (threshold) windows at stride 1.
    # Scoring deliberately reads trailing context from before a row (see the next-but-one test).
    for name, step in (("train", stride), ("val", 1)):
        a, b = bounds[name]
        windows = make_windows(rows[a:b], length, step)
        assert len(windows) == (max(0, (b - a - length) // step + 1) if b - a >= length else 0)
        if len(windows):
            w = windows[:, 0, :]
            assert w.min() >= a and w.max() < b, name  # inside its own split
            assert np.all(np.diff(w, axis=1) == 1)  # consecutive readings
            assert np.array_equal(w[:, -1], a + np.arange(len(w)) * step + length - 1)


@FEW
@given(n=st.integers(100, 20_000))
def test_nab_splits_stay_inside_the_probationary_period(n):
    bounds = split_bounds(n, SensorIngestParams(), nab=True)
    (t0, t1), (v0, v1) = bounds["train"], bounds["val"]
    assert t0 == 0 < t1 == v0 < v1 <= min(math.floor(0.15 * n), 750) and bounds["test"] == (0, n)


@FEW
@given(n=st.integers(1, 300), sensors=st.integers(1, 4), length=st.integers(2, 40))
def test_scoring_gives_every_row_one_window_ending_at_it(n, sensors, length):
    x = np.arange(n * sensors, dtype=np.float32).reshape(n, sensors)
    windows = make_windows(pad_front(x, length), length)
    assert windows.shape == (n, sensors, length)
    np.testing.assert_array_equal(windows[:, :, -1], x)
