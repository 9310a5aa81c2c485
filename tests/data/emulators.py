"""Local Google Cloud emulators for the source tests, each in its own venv (their pins clash with Airflow's).

The venvs are linked into ``<project>/.llmops/emulators/`` (git-ignored) from the venv cache and made there on first
use with pip (``.ci/cached-venv``); if that fails (no package index reachable), the tests that need them skip and
say why.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from llmops.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
VENVS = ROOT / ".llmops" / "emulators"
PACKAGES = {"gcs": ["gcp-storage-emulator==2026.7.19"], "bq": ["bqemulator==1.4.0", "numpy"]}

# bqemulator installs DuckDB's `spatial` extension at start (needs the internet; only serves GEOGRAPHY)
BQ_LAUNCHER = """
import sys
from bqemulator.storage.engine import DuckDBEngine
DuckDBEngine._load_spatial = lambda self, *a, **k: None
from bqemulator.cli import main
sys.exit(main())
"""


def venv_python(name: str) -> Path:
    """The emulator's venv, made once per content by ``.ci/cached-venv`` (as the Makefile's venvs are: a link to the
    shared cache, or built in place with LLMOPS_VENV_CACHE=off), under a lock, so two test workers never see a
    half-made one."""
    folder = VENVS / name
    py = folder / "bin" / "python"
    if (folder / ".key").exists() and py.exists():
        return py
    VENVS.mkdir(parents=True, exist_ok=True)
    build = (f'"{sys.executable}" -m venv "$VENV_DIR" && '
             f'"$VENV_DIR/bin/python" -m pip install -q {" ".join(PACKAGES[name])}')
    try:
        subprocess.run([str(ROOT / ".ci" / "cached-venv"), str(folder), f"emulator-{name}", "/dev/null", "--",
                        "sh", "-c", build], check=True, capture_output=True, timeout=900,
                       env={**os.environ, "KEY_EXTRA": " ".join(PACKAGES[name]), "PYTHON": sys.executable})
    except (subprocess.SubprocessError, OSError) as e:
        detail = getattr(e, "stderr", b"") or b""
        pytest.skip(f"cannot install the {name} emulator ({' '.join(PACKAGES[name])}) into {folder}: {e} "
                    f"{detail.decode(errors='replace')[-600:]}")
    return py


@contextmanager
def serve(argv: list[str], port: int, log: Path, timeout: float = 60):
    """Start a server, wait until its port accepts connections, stop it (and only it) afterwards."""
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.skip(f"emulator exited at start ({argv[0]}): {log.read_text()[-800:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail(f"emulator did not listen on {port} within {timeout}s: {log.read_text()[-800:]}")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory):
    py = venv_python("gcs")
    port = free_port()
    log = tmp_path_factory.mktemp("gcs-emulator") / "server.log"
    exe = str(py.parent / "gcp-storage-emulator")
    with serve([exe, "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory", "-q"], port, log) as url:
        yield url


@pytest.fixture(scope="session")
def bq_emulator(tmp_path_factory):
    py = venv_python("bq")
    port = free_port()
    base = tmp_path_factory.mktemp("bq-emulator")
    launcher = base / "launch.py"
    launcher.write_text(BQ_LAUNCHER)
    argv = [str(py), str(launcher), "start", "--rest-port", str(port), "--grpc-port", str(free_port()),
            "--project", "llmops-test", "--log-level", "warning"]
    with serve(argv, port, base / "server.log") as url:
        yield url


def connection_env(conn_id: str, endpoint: str, project: str = "llmops-test") -> dict[str, str]:
    """An Airflow connection in the environment: anonymous credentials and the emulator's endpoint."""
    import json

    extra = {"project": project, "is_anonymous": True, "api_endpoint": endpoint}
    return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps({"conn_type": "google_cloud_platform", "extra": extra})}



