"""A team's tracking stack: an MLflow server on PostgreSQL, started in one command (``aeflow server``).

The database comes from ``AEFLOW_DATABASE_URL`` (a team's PostgreSQL, e.g.
``postgresql://aeflow:…@db:5432/mlflow``): a password lives in the environment, never in params.yaml or
git. Without it, aeflow runs a PostgreSQL cluster of its own (:class:`LocalPostgres`, Debian's
``postgresql`` package, installed when missing) in a folder of the checkout. That cluster listens on a
Unix socket only, in a folder only its owner can enter, so it needs no password and nobody else on the
machine can reach it; the MLflow server in front of it listens on 127.0.0.1.

The test suite uses the same classes with a throw-away cluster in a temporary folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from aeflow.errors import AeflowError

DATABASE_ENV = "AEFLOW_DATABASE_URL"
APT_PACKAGES = ("postgresql",)
#: The OS account Debian's package creates; PostgreSQL refuses to run as root.
SERVICE_USER = "postgres"
DB_USER = "aeflow"
DB_NAME = "mlflow"
#: The longest Unix socket path the kernel takes is 107 bytes; ``.s.PGSQL.<port>`` needs 17 of them.
MAX_SOCKET_DIR = 88


class ServerError(AeflowError):
    """The tracking stack could not start (no PostgreSQL, a cluster that does not come up, a busy port)."""


def postgres_bin() -> Path | None:
    """The folder with ``initdb``/``pg_ctl``: on PATH, else Debian's newest ``/usr/lib/postgresql/*/bin``."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return versions[-1].parent if versions else None


def ensure_postgres() -> Path:
    """PostgreSQL's binaries, installing Debian's package when they are missing."""
    from aeflow.system import apt_install

    found = postgres_bin()
    if found is None:
        problem = apt_install(APT_PACKAGES)
        found = postgres_bin()
        if found is None:
            raise ServerError(
                "PostgreSQL is not installed and could not be installed "
                f"({problem or 'package installed but initdb not found'}). Fix: `apt-get install -y "
                f"{' '.join(APT_PACKAGES)}`, or set {DATABASE_ENV} to an existing database."
            )
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalPostgres:
    """A PostgreSQL cluster in ``folder`` that listens on a Unix socket only (no TCP, no password).

    As root (CI, containers) the cluster belongs to Debian's ``postgres`` account, since PostgreSQL will
    not run as root; otherwise to the current user. The socket lives in the cluster folder when its path
    is short enough, else in a private folder under the system's temp folder named after it.
    """

    def __init__(self, folder: Path, port: int = 5432) -> None:
        self.folder = folder.resolve()
        self.data = self.folder / "data"
        self.port = port
        self.bin = ensure_postgres()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            try:
                self.owner = pwd.getpwnam(SERVICE_USER)
            except KeyError:
                raise ServerError(
                    f"running as root, but there is no {SERVICE_USER!r} account to run PostgreSQL as "
                    "(PostgreSQL refuses root). Fix: install Debian's postgresql package, or run as a user."
                ) from None
        short = str(self.folder)
        if len(short) > MAX_SOCKET_DIR:
            digest = hashlib.sha1(short.encode()).hexdigest()[:12]
            short = str(Path(tempfile.gettempdir()) / f"aeflow-pg-{digest}")
        self.socket_dir = Path(short)

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the ``mlflow`` database over the socket."""
        return f"postgresql://{DB_USER}@/{DB_NAME}?host={self.socket_dir}&port={self.port}"

    def _run(self, *cmd: str, timeout: float = 120) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", SERVICE_USER, "--"] if self.as_root else []
        res = subprocess.run(
            [*prefix, *cmd], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
        if res.returncode != 0:
            raise ServerError(
                f"{' '.join(cmd[:2])} failed ({res.returncode}): {(res.stderr or res.stdout).strip()[-1500:]}"
            )
        return res

    def _own(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.chmod(0o700)
        if self.as_root:
            os.chown(path, self.owner.pw_uid, self.owner.pw_gid)

    def start(self) -> None:
        """Create the cluster and its ``mlflow`` database the first time, then start it."""
        self._own(self.folder)
        self._own(self.socket_dir)
        if self.as_root:  # the service account must be able to walk down to its folder
            for parent in self.folder.parents:
                if parent == Path("/"):
                    break
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    parent.chmod(mode | 0o001)
        if not (self.data / "PG_VERSION").is_file():
            self._run(
                str(self.bin / "initdb"), "-D", str(self.data), "-U", DB_USER, "--auth=trust", "-E", "UTF8"
            )
        options = f"-c listen_addresses='' -c unix_socket_directories='{self.socket_dir}' -p {self.port}"
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.folder / "log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        try:  # every start: a first start that stopped between initdb and here left no database
            where = ["-h", str(self.socket_dir), "-p", str(self.port), "-U", DB_USER]
            self._run(str(self.bin / "createdb"), *where, DB_NAME)
        except ServerError as exc:
            if "already exists" not in str(exc):
                raise

    def stop(self) -> None:
        with contextlib.suppress(ServerError, subprocess.TimeoutExpired):
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop", timeout=60)

    @contextlib.contextmanager
    def running(self) -> Iterator[LocalPostgres]:
        self.start()
        try:
            yield self
        finally:
            self.stop()


def wait_healthy(
    base: str, proc: subprocess.Popen | None = None, log: Path | None = None, timeout_s: float = 120
) -> None:
    """Wait until ``<base>/health`` answers 200; raise with the server's own words (its ``log``) if it
    exited or never answered."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        said = log.read_text(errors="replace")[-2000:] if log is not None and log.is_file() else ""
        if proc is not None and proc.poll() is not None:
            raise ServerError(f"the MLflow server exited ({proc.returncode}) before answering: {said}")
        if time.monotonic() > deadline:
            raise ServerError(
                f"the MLflow server at {base} did not answer /health in {timeout_s:.0f} s: {said}"
            )
        time.sleep(0.5)


def mlflow_server_command(
    database_url: str, artifacts: Path | str, port: int, workers: int = 2, host: str = "127.0.0.1"
) -> list[str]:
    """``mlflow server`` on ``database_url``, proxying artifacts to ``artifacts`` (a folder, or an
    ``s3://…`` URI on a team's object store)."""
    destination = str(Path(artifacts).resolve()) if "://" not in str(artifacts) else str(artifacts)
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        database_url,
        "--artifacts-destination",
        destination,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


@contextlib.contextmanager
def tracking_server(
    database_url: str, artifacts: Path | str, log: Path, port: int | None = None, workers: int = 2
) -> Iterator[str]:
    """An MLflow server on ``database_url`` until the block ends; yields its ``http://127.0.0.1:<port>``.
    Its output goes to ``log`` (a pipe nobody reads would stall a long-running server)."""
    port = port or free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    with log.open("ab") as out:
        proc = subprocess.Popen(
            mlflow_server_command(database_url, artifacts, port, workers),
            env=env,
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        wait_healthy(base, proc, log)
        yield base
    finally:
        stop_group(proc)


def stop_group(proc: subprocess.Popen, grace_s: float = 30) -> None:
    """Stop a server and its workers (the process group it leads): TERM, then KILL after ``grace_s``."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, 15)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        proc.wait()
