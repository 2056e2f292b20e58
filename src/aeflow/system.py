"""Debian packages a feature needs (PostgreSQL for the tracking server, Java for Spark, Chromium for the
browser tests), installed with apt-get when missing.

CI starts on a fresh machine where only the package registries are reachable, so the engines aeflow runs on
come from the distribution's packages, installed as root or through passwordless sudo. One install at a
time on a machine: two test workers asking for different packages at once would otherwise fight over
apt's and dpkg's locks.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

#: Held while apt-get runs (any process of any checkout on this machine).
APT_LOCK = Path(tempfile.gettempdir()) / "aeflow-apt.lock"


def apt_install(packages: tuple[str, ...] | list[str], timeout_s: float = 540) -> str:
    """Install Debian ``packages``; returns what went wrong ("" on success)."""
    if not shutil.which("apt-get"):
        return "apt-get not found (not a Debian/Ubuntu machine)"
    if os.geteuid() == 0:
        prefix: list[str] = []
    elif shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
        prefix = ["sudo", "-n", "env", "DEBIAN_FRONTEND=noninteractive"]
    else:
        return "not root and no passwordless sudo, so apt-get cannot install packages"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    lock = ["-o", "DPkg::Lock::Timeout=300"]
    with APT_LOCK.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        for cmd in (
            [*prefix, "apt-get", *lock, "update", "-qq"],
            [*prefix, "apt-get", *lock, "install", "-y", "-qq", "--no-install-recommends", *packages],
        ):
            try:
                res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s)
            except subprocess.TimeoutExpired:
                return f"{' '.join(cmd)} timed out"
            if res.returncode != 0:
                return f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr.strip()[-1500:]}"
    return ""
