"""The ``aeflow`` command: helpers around the pipeline (the pipeline itself runs with ``dvc repro``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from aeflow.errors import AeflowError

app = typer.Typer(
    help="aeflow: autoencoders as reproducible DVC pipelines tracked in MLflow.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(soft_wrap=True)  # messages name files: never break them across lines


def model_input_shape(params: object, use_case: str) -> list[int] | None:
    """The shape of one model input as the train stage will see it, when params alone determine it
    (None for sensor CSVs, whose column count only the data knows)."""
    from aeflow import usecases

    return usecases.get(use_case).input_shape(params)  # type: ignore[arg-type]


@app.command("check-params")
def check_params(
    params: Annotated[Path, typer.Option(help="params file to validate")] = Path("params.yaml"),
) -> None:
    """Validate a params file (including each use case's model section) without running anything."""
    from aeflow import usecases
    from aeflow.models.registry import build_model
    from aeflow.params import load_params
    from aeflow.usecases import NAMES as USE_CASES

    try:
        loaded = load_params(params)  # every model section is typed by its variant here
        for uc in USE_CASES:
            section = loaded.use_case(uc).model
            shape = model_input_shape(loaded, uc)
            if shape is not None:  # build it (no training): latent size and layer shapes against the data
                output = usecases.get(uc).model_output
                build_model(section, shape, output=output, where=f"{uc}.model", file=str(params))
    except AeflowError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(f"[green]{params}: valid[/green]")


@app.command("variants")
def variants() -> None:
    """List the registered autoencoder variants and their options."""
    from aeflow.models.configs import AEConfig
    from aeflow.models.registry import available, get_variant

    table = Table("variant", "class", "own options")
    for name in available():
        cls = get_variant(name)
        own = [f for f in cls.config_class.model_fields if f not in AEConfig.model_fields]
        table.add_row(name, cls.__name__, ", ".join(own) or "—")
    console.print(table)


def load_any_model(model: str, tracking_uri: str | None = None) -> object:
    """A model from a local ``model.pt`` (weights-only load) or an MLflow URI (``models:/name@alias``,
    ``models:/name/3``, ``runs:/<id>/model``), with errors that say what to pass instead."""
    if "://" not in model and not model.startswith(("models:/", "runs:/")):
        from aeflow.models.registry import load_model

        if not Path(model).is_file():
            raise AeflowError(
                f"{model}: model file not found. Fix: run `dvc repro` first (it writes "
                "models/speech/model.pt) or pass an MLflow URI such as models:/aeflow-speech@champion."
            )
        return load_model(model)
    import mlflow

    from aeflow.params import load_params

    uri = tracking_uri or (
        load_params().tracking.resolved_uri() if Path("params.yaml").is_file() else "sqlite:///mlflow.db"
    )
    mlflow.set_tracking_uri(uri)
    try:
        return mlflow.pytorch.load_model(model, map_location="cpu")
    except Exception as exc:  # MLflow raises several unrelated types for "not found"
        raise AeflowError(
            f"{model}: could not load it from the MLflow store at {uri} ({type(exc).__name__}: {exc}). "
            "Fix: check the name, version or alias in the MLflow UI (Models tab), or set "
            "MLFLOW_TRACKING_URI / --tracking-uri to the store that holds it."
        ) from None


@app.command("denoise")
def denoise(
    input_wav: Annotated[
        Path | None,
        typer.Argument(help="recording to clean (WAV/FLAC, any rate, mono or stereo); none with --stream"),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="where to write the denoised WAV (16-bit)")
    ] = None,
    model: Annotated[
        str, typer.Option(help="models:/<name>@<alias>, models:/<name>/<version> or a local model.pt")
    ] = "models/speech/model.pt",
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow store (default: params.yaml's)")] = None,
    keep_rate: Annotated[
        bool, typer.Option(help="resample the result back to the input's rate (else the model's rate)")
    ] = True,
    stream: Annotated[
        bool,
        typer.Option("--stream", help="read audio from stdin, write cleaned audio to stdout as it is ready"),
    ] = False,
    audio_format: Annotated[
        str,
        typer.Option(
            "--format",
            help="--stream: wav (PCM or float WAV in, 16-bit WAV out) or raw (16-bit little-endian mono PCM "
            "in and out)",
        ),
    ] = "wav",
    rate: Annotated[
        int | None, typer.Option(help="--stream --format raw: the input's sample rate, Hz")
    ] = None,
    block_s: Annotated[
        float | None,
        typer.Option(help="seconds cleaned at a time (default: 10 for a file, 0.5 for --stream)"),
    ] = None,
) -> None:
    """Denoise a recording with a trained speech model, block by block (constant memory).

    Stereo is folded to mono and the audio is resampled to the model's rate and back (by default), keeping
    the band above the model's rate. ``--stream`` cleans stdin to stdout with a delay of one block plus
    the model's context (half its noise window plus one patch); both give the samples of cleaning the
    recording whole.
    """
    import sys

    import numpy as np

    from aeflow.usecases.speech.audio import open_recording, pcm16, read_blocks, write_pcm16
    from aeflow.usecases.speech.enhance import RecordingDenoiser, SpeechDenoiser, denoise_blocks

    errors = Console(stderr=True, soft_wrap=True)
    try:
        if stream:
            if input_wav is not None or output is not None:
                raise AeflowError("--stream reads stdin and writes stdout. Fix: drop the file arguments.")
            pieces, in_rate = _stream_input(audio_format, rate)
            recording = RecordingDenoiser(
                SpeechDenoiser(load_any_model(model, tracking_uri)), in_rate, keep_rate
            )
            out = sys.stdout.buffer
            if audio_format == "wav":
                from aeflow.usecases.speech.audio import wav_stream_header

                out.write(wav_stream_header(recording.out_rate))
            for piece in denoise_blocks(recording, pieces, 0.5 if block_s is None else block_s):
                out.write(pcm16(piece))
                out.flush()
            return
        if input_wav is None or output is None:
            raise AeflowError("give the recording to clean and -o OUTPUT.wav (or --stream). Fix: see --help.")
        in_rate, _ = open_recording(input_wav)
        recording = RecordingDenoiser(SpeechDenoiser(load_any_model(model, tracking_uri)), in_rate, keep_rate)
        if recording.denoiser.local:
            console.print(f"[yellow]cleaning {input_wav} whole: {recording.denoiser.local}[/yellow]")
            cleaned = iter([recording(np.concatenate(list(read_blocks(input_wav))))])
        else:
            cleaned = denoise_blocks(recording, read_blocks(input_wav), 10.0 if block_s is None else block_s)
        written = write_pcm16(output, cleaned, recording.out_rate)
    except AeflowError as exc:
        errors.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(
        f"[green]wrote {output}[/green] ({written / recording.out_rate:.2f} s at {recording.out_rate} Hz)"
    )


def _stream_input(audio_format: str, rate: int | None) -> tuple[Any, int]:
    """stdin as float32 pieces and its sample rate, for ``aeflow denoise --stream``."""
    import sys

    from aeflow.usecases.speech.audio import read_raw_stream, read_wav_stream

    if audio_format == "raw":
        if not rate:
            raise AeflowError("--format raw carries no sample rate. Fix: add --rate, e.g. --rate 16000.")
        return read_raw_stream(sys.stdin.buffer), rate
    if audio_format != "wav":
        raise AeflowError(f"--format {audio_format!r}: unknown. Fix: use --format wav or --format raw.")
    in_rate, pieces = read_wav_stream(sys.stdin.buffer)
    return pieces, in_rate


def load_settings_model(model: str, tracking_uri: str | None = None) -> object:
    """A trained autoencoder with its settings (``data_config``) from a ``models/<use case>`` folder (its
    first model), a ``model.pt``, or an MLflow URI of a registered pyfunc (``models:/aeflow-sensor@champion``,
    ``models:/aeflow-tabular/3``)."""
    path = Path(model)
    if path.is_dir():
        from aeflow.io import read_json

        run = path / "run.json"
        if not run.is_file():
            raise AeflowError(f"{run}: missing. Fix: run `dvc repro` first, or pass a model URI.")
        jobs = read_json(run).get("series")  # several models (one per series): the first
        model = str(path / jobs[0]["folder"] / "model.pt") if jobs else str(path / "model.pt")
    if "://" not in model and not model.startswith(("models:/", "runs:/")):
        return load_any_model(model, tracking_uri)
    import mlflow

    from aeflow.params import load_params

    uri = tracking_uri or (
        load_params().tracking.resolved_uri() if Path("params.yaml").is_file() else "sqlite:///mlflow.db"
    )
    mlflow.set_tracking_uri(uri)
    try:
        return mlflow.pyfunc.load_model(model).unwrap_python_model().model
    except Exception as exc:  # MLflow raises several unrelated types for "not found"
        raise AeflowError(
            f"{model}: could not load a detector from the MLflow store at {uri} "
            f"({type(exc).__name__}: {exc}). "
            "Fix: check the name, version or alias in the MLflow UI (Models tab)."
        ) from None


def load_stream(model: str, tracking_uri: str | None = None) -> object:
    """What ``aeflow monitor`` feeds rows to: the stream scorer of the use case that trained ``model``."""
    from aeflow import usecases

    loaded = load_settings_model(model, tracking_uri)
    use_case = (getattr(loaded, "data_config", None) or {}).get("use_case")
    if use_case is None:
        raise AeflowError(
            f"{model}: this model carries no detector settings (data_config). Fix: pass a detector trained "
            "by `dvc repro` (models/sensor, models/tabular or its registered version)."
        )
    return usecases.get(use_case).stream_scorer(loaded)


@app.command("monitor")
def monitor(
    model: Annotated[
        str,
        typer.Option(
            help="models:/<name>@<alias>, models:/<name>/<version>, a model.pt, "
            "or models/sensor | models/tabular"
        ),
    ] = "models/sensor",
    input_csv: Annotated[str, typer.Option("--input", help="CSV of readings or rows, '-' for stdin")] = "-",
    delimiter: Annotated[str, typer.Option(help="CSV delimiter")] = ",",
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow store (default: params.yaml's)")] = None,
    show_all: Annotated[bool, typer.Option("--all", help="print every row's score, not only flags")] = False,
) -> None:
    """Score the rows of a CSV as they arrive and print the flagged ones (sensor readings online with
    constant memory; table rows one by one, each with the columns that made it anomalous).

    The CSV needs a column per input the model knows (a ``timestamp`` column, if any, is echoed). Rows are
    read one at a time, so ``tail -f readings.csv | aeflow monitor`` works. A flagged row that raises an
    alarm (sensors: no alarm within the model's cooldown before it) ends with ``ALARM``.
    """
    import csv
    import sys

    try:
        stream = load_stream(model, tracking_uri)
        handle = sys.stdin if input_csv == "-" else open(input_csv, encoding="utf-8", newline="")  # noqa: SIM115
        with handle:
            reader = csv.DictReader(handle, delimiter=delimiter)
            where = "stdin" if input_csv == "-" else input_csv
            columns = list(reader.fieldnames or [])
            missing = [c for c in stream.columns if c not in columns]
            if missing:
                raise AeflowError(
                    f"{where}: missing column(s) {', '.join(missing)}; the model expects "
                    f"{', '.join(stream.columns)} (found {', '.join(columns)}). Fix: rename the columns."
                )
            flagged, alarms, n = 0, 0, 0
            for n, row in enumerate(reader, start=1):
                try:
                    score, flag, note = stream.push(row)
                except AeflowError as exc:
                    raise AeflowError(f"{where}, data row {n}: {exc}") from None
                if flag or show_all:
                    flagged += flag
                    alarms += stream.alarm
                    when = row.get("timestamp", f"row {n}")
                    status = "ANOMALY\tALARM" if stream.alarm else "ANOMALY" if flag else "ok"
                    shown = f"\t{note}" if note and flag else ""
                    print(f"{when}\t{score:.6g}\t{status}{shown}", flush=True)
    except AeflowError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    print(f"# {n} rows, {flagged} flagged, {alarms} alarm(s) ({stream.summary()})", file=sys.stderr)


def _use_cases(value: str) -> list[str]:
    from aeflow.usecases import NAMES as USE_CASES

    if value.strip() == "all":
        return list(USE_CASES)
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in USE_CASES]
    if unknown or not names:
        console.print(f"[red]--use-case {value!r}: unknown; choose from {', '.join(USE_CASES)}[/red]")
        raise typer.Exit(2)
    return names


@app.command("promote")
def promote(
    use_case: Annotated[str, typer.Option(help="mnist | speech | sensor | tabular")],
    params: Annotated[Path, typer.Option(help="params file (gate settings: <use case>.promotion)")] = Path(
        "params.yaml"
    ),
    dry_run: Annotated[bool, typer.Option(help="score and decide, but record nothing, move nothing")] = False,
    history: Annotated[bool, typer.Option(help="print every version's gate record and exit")] = False,
    version: Annotated[
        str | None, typer.Option(help="gate this registered version (default: the one @challenger names)")
    ] = None,
) -> None:
    """Champion/challenger gate: promote the challenger only if it beats the champion by the margin.

    One gate at a time decides per registered model, also across machines sharing a tracking server.

    Exit codes: 0 promoted, 3 kept the champion, 1 failed (nothing moved), 2 bad usage.
    """
    import json

    from aeflow.params import load_params
    from aeflow.stages import promote as gate

    names = _use_cases(use_case)
    if len(names) != 1:
        console.print("[red]--use-case: promote decides for one use case at a time[/red]")
        raise typer.Exit(2)
    uc = names[0]
    try:
        loaded = load_params(params)
        if history:
            from aeflow.tracking import registered_model_name
            from aeflow.tracking.promotion import history as read_history

            name = registered_model_name(loaded.tracking, uc)
            table = Table("version", "created", "aliases", "decision", "metric", "challenger", "champion")
            for row in read_history(loaded.tracking, name):
                g = row["gate"]
                table.add_row(
                    row["version"],
                    row["created"],
                    ", ".join(row["aliases"]),
                    g.get("decision", "—"),
                    g.get("metric", ""),
                    g.get("challenger_score", ""),
                    g.get("champion_score", "")
                    + (f" (v{g['champion_version']})" if g.get("champion_version") else ""),
                )
            console.print(table)
            return
        record = gate.run(loaded, uc, dry_run=dry_run, version=version)
    except AeflowError as exc:
        console.print(f"[red]{uc}: {exc}[/red]")
        raise typer.Exit(1) from None
    print(json.dumps({k: v for k, v in record.items() if k != "scores"}, default=str, indent=1))
    colour = "green" if record["decision"] == "promoted" else "yellow"
    console.print(f"[{colour}]{uc}: {record['decision']} — {record['reason']}[/{colour}]")
    raise typer.Exit(0 if record["decision"] == "promoted" else 3)


@app.command("retrain")
def retrain(
    use_case: Annotated[str, typer.Option(help="comma-separated use cases (default: every one)")] = "all",
    landing: Annotated[
        Path | None,
        typer.Option(help="folder with new files in <use case>/ subfolders, moved into the source"),
    ] = None,
    params: Annotated[Path, typer.Option(help="params file")] = Path("params.yaml"),
    report: Annotated[bool, typer.Option(help="re-render reports/index.html afterwards")] = True,
) -> None:
    """Scheduled retraining: ingest new data, dvc repro what changed, gate, report, summary.

    Exit codes: 0 a champion was promoted, 3 every champion kept, 1 failed, 4 another retrain is running.
    Run it from the repository root (cron / systemd / CI definitions in deploy/).
    """
    from aeflow.stages import retrain as job

    names = _use_cases(use_case)
    try:
        code, summary = job.run(params, names, Path("."), landing=landing, report=report, echo=console.print)
    except job.Busy as exc:
        console.print(f"[yellow]{exc}[/yellow]")
        raise typer.Exit(job.EXIT_BUSY) from None
    except AeflowError as exc:
        console.print(f"[red]retrain failed: {exc}[/red]")
        raise typer.Exit(job.EXIT_FAILED) from None
    table = Table("use case", "decision", "champion", "metric", "challenger", "champion score")
    for uc, r in summary["use_cases"].items():
        table.add_row(
            uc,
            r["decision"],
            f"v{r.get('champion_before')} → v{r.get('champion_after')}",
            str(r.get("metric") or ""),
            f"{r['challenger_score']:.6g}" if isinstance(r.get("challenger_score"), float) else "—",
            f"{r['champion_score']:.6g}" if isinstance(r.get("champion_score"), float) else "—",
        )
    console.print(table)
    raise typer.Exit(code)


@app.command("recover")
def recover(
    root: Annotated[Path, typer.Option(help="the project's root (where .dvc/ is)")] = Path("."),
    quiet: Annotated[bool, typer.Option(help="say nothing when there is nothing to clear")] = False,
) -> None:
    """After a crash or kill: clear DVC's run lock (.dvc/tmp/rwlock) if a killed dvc left it unreadable.

    Without it every later ``dvc repro`` stops with "Unable to read RWLock-file". ``make run`` and ``aeflow
    retrain`` do this themselves; aeflow's own half-written outputs are cleaned by the next run anyway.
    Exit codes: 0 cleared or nothing to clear, 1 the unreadable lock names a running process (left alone).
    """
    from aeflow.stages.recover import RWLOCK, clear_interrupted_dvc_lock

    try:
        cleared = clear_interrupted_dvc_lock(root)
    except AeflowError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    if cleared or not quiet:
        console.print(cleared or f"nothing to recover: {root / RWLOCK} is absent or readable")


@app.command("score")
def score(
    model: Annotated[
        str, typer.Option(help="pyfunc URI: models:/aeflow-tabular@champion, models:/NAME/3, a folder")
    ],
    input_path: Annotated[Path, typer.Option("--input", help="a CSV/Parquet file, or a folder of them")],
    output: Annotated[Path, typer.Option(help="Parquet output (pandas: one file; spark: a folder of parts)")],
    engine: Annotated[str, typer.Option(help="pandas (this process) | spark")] = "pandas",
    master: Annotated[str, typer.Option(help="Spark master URL (engine spark)")] = "local[*]",
    series: Annotated[
        str | None, typer.Option(help="series models: the column naming each series (default: one per file)")
    ] = None,
    order: Annotated[str | None, typer.Option(help="series models: the column giving time order")] = None,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow store of models:/ URIs (default: params.yaml / env)")
    ] = None,
) -> None:
    """Batch scoring: a registered detector over a file or folder, answers to Parquet (pandas or Spark).

    Every input row comes back with the model's answer (score, flag, ...) and its source file. Tables are
    scored row by row; sensor detectors one state per series, in time order. Exit codes: 0 done, 1 failed
    (the previous output is untouched).
    """
    import json

    import mlflow

    from aeflow import scoring

    if model.startswith(("models:/", "runs:/")):
        from aeflow.params import load_params

        uri = tracking_uri or (
            load_params().tracking.resolved_uri() if Path("params.yaml").is_file() else "sqlite:///mlflow.db"
        )
        mlflow.set_tracking_uri(uri)
        os.environ["MLFLOW_TRACKING_URI"] = uri  # Spark's Python workers resolve models:/ URIs too
    try:
        result = scoring.score(
            model,
            input_path,
            output,
            engine,
            series,
            order,
            master,
            echo=lambda line: console.print(line, markup=False, highlight=False),
        )
    except AeflowError as exc:
        console.print(f"[red]score failed: {exc}[/red]")
        raise typer.Exit(1) from None
    print(json.dumps(result))


@app.command("server")
def server(
    port: Annotated[int, typer.Option(help="HTTP port on 127.0.0.1")] = 5000,
    artifacts: Annotated[
        str,
        typer.Option(help="artifact store: a folder, or an s3://… URI (credentials from the environment)"),
    ] = ".aeflow/server/artifacts",
    folder: Annotated[
        Path, typer.Option(help="the local PostgreSQL cluster and the server log (AEFLOW_DATABASE_URL unset)")
    ] = Path(".aeflow/server"),
    workers: Annotated[int, typer.Option(help="MLflow server worker processes")] = 2,
) -> None:
    """A tracking server for a team: MLflow on PostgreSQL, bound to 127.0.0.1, until Ctrl-C.

    The database is ``$AEFLOW_DATABASE_URL`` (postgresql://user:password@host:5432/db; the password stays in
    the environment, never in params.yaml or git). Unset, aeflow runs its own PostgreSQL cluster in
    FOLDER/postgres, reachable through a Unix socket only (Debian's postgresql package is installed when
    missing). Point aeflow at the server with ``export MLFLOW_TRACKING_URI=http://127.0.0.1:PORT``.
    """
    import contextlib
    import signal
    import socket

    from aeflow.tracking.server import DATABASE_ENV, LocalPostgres, ServerError, tracking_server

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: a restart may
        try:  # find the port's old connections waiting out TIME_WAIT, which is no reason to refuse
            probe.bind(("127.0.0.1", port))
        except OSError:
            console.print(
                f"[red]port {port} on 127.0.0.1 is taken (`make ui`?). Fix: --port {port + 1}[/red]"
            )
            raise typer.Exit(2) from None

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # systemd and `kill` send SIGTERM: unwind as Ctrl-C does, stopping PostgreSQL

    signal.signal(signal.SIGTERM, stop)
    folder.mkdir(parents=True, exist_ok=True)
    url = os.environ.get(DATABASE_ENV)
    try:
        with contextlib.ExitStack() as stack:
            if url:
                where = f"{DATABASE_ENV} ({url.split('@')[-1]})"
            else:
                pg = stack.enter_context(LocalPostgres(folder / "postgres").running())
                url, where = pg.url, f"PostgreSQL in {pg.data} (Unix socket {pg.socket_dir})"
            base = stack.enter_context(tracking_server(url, artifacts, folder / "server.log", port, workers))
            console.print(
                f"MLflow server at {base} on {where}; artifacts in {artifacts}; log {folder}/server.log"
            )
            console.print(f"Use it:  export MLFLOW_TRACKING_URI={base}    (Ctrl-C stops the server)")
            console.file.flush()  # a log file or a pipe (systemd, tee) sees it now, not at exit
            while True:
                signal.pause()
    except KeyboardInterrupt:
        console.print("stopped")
    except ServerError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


@app.command("sync")
def sync(
    models: Annotated[
        Path, typer.Option(help="models folder: offline runs wait in its .<use case>.pending/ subfolders")
    ] = Path("models"),
    params: Annotated[Path, typer.Option(help="params file (the tracking store)")] = Path("params.yaml"),
) -> None:
    """Upload the training runs recorded while the MLflow store was unreachable and register their models.

    Each run becomes one MLflow run (tags, params, metric histories, figures), its model a new registered
    version marked challenger, and its folder is deleted. Safe to run again, or after an interrupted sync.
    Exit codes: 0 everything uploaded (or nothing to do), 1 the store is unreachable or an upload failed.
    """
    from aeflow import tracking
    from aeflow.params import load_params
    from aeflow.tracking import offline

    try:
        loaded = load_params(params)
    except AeflowError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    folders = offline.find_pending(models)
    if not folders:
        console.print(f"nothing to sync: no offline runs under {models}/.<use case>.pending/")
        return
    uri = loaded.tracking.resolved_uri()
    problem = tracking.store_problem(loaded.tracking)
    if problem is not None:
        console.print(
            f"[red]the MLflow store at {uri} is still unreachable ({problem}); "
            f"{len(folders)} offline run(s) wait under {models}.[/red]"
        )
        raise typer.Exit(1)
    failed = 0
    synced: set[str] = set()
    for folder in folders:
        try:
            done = offline.sync(loaded.tracking, folder, echo=console.print)
        except Exception as exc:  # keep going: the folder stays for the next sync
            failed += 1
            why = tracking.describe_error(exc)
            console.print(f"[red]{folder}: upload failed ({why}); kept for a retry[/red]")
            continue
        if done.get("skipped"):
            continue
        synced.add(folder.parent.name.removeprefix(".").removesuffix(".pending"))
        reg = done.get("registered") or {}
        version = f", registered {reg['registered_model']} v{reg['version']}" if reg else ""
        aliases = ", ".join(f"{k}=v{v}" for k, v in (done.get("aliases") or {}).items())
        console.print(
            f"[green]{folder.name}: uploaded to {uri} as run {done['run_id']} "
            f"({done['metrics']} metric values{version}{'; ' + aliases if aliases else ''})[/green]"
        )
    known = sorted(synced & set(loaded.model_fields))
    if known:  # the report's promotion history follows at the next dvc repro
        from aeflow.layout import REGISTRY
        from aeflow.stages import registry

        registry.run(known, loaded, models.parent / REGISTRY)
    raise typer.Exit(1 if failed else 0)


if __name__ == "__main__":
    app()
