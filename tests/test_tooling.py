"""The test and install tooling: the venv cache (.ci/cached-venv) and the tier table (tests/tiers.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from tiers import scope_of, tier_of

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / ".ci" / "cached-venv"


def cached_venv(venv: Path, cache: str, build: str, *, files=("/dev/null",), extra: str = ""):
    env = {**os.environ, "LLMOPS_VENV_CACHE": cache, "KEY_EXTRA": extra}
    return subprocess.run([str(SCRIPT), str(venv), "t", *files, "--", "sh", "-c", build], env=env,
                          capture_output=True, text=True, timeout=60)


def test_a_venv_is_built_once_per_key_and_linked(tmp_path):
    cache = tmp_path / "cache"
    first = cached_venv(tmp_path / "a", str(cache), 'mkdir -p "$VENV_DIR" && echo one > "$VENV_DIR/made"')
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "a").is_symlink() and (tmp_path / "a" / "made").read_text() == "one\n"
    # another checkout with the same inputs links the same folder; the build does not run again
    again = cached_venv(tmp_path / "b", str(cache), "exit 7")
    assert again.returncode == 0 and "cached" in again.stdout
    assert (tmp_path / "b").resolve() == (tmp_path / "a").resolve()
    # another input is another key, beside the first
    other = cached_venv(tmp_path / "b", str(cache), 'mkdir -p "$VENV_DIR"', extra="torch==other")
    assert other.returncode == 0 and (tmp_path / "b").resolve() != (tmp_path / "a").resolve()
    assert len([p for p in cache.iterdir() if p.is_dir()]) == 2


def test_a_failed_build_leaves_nothing_under_its_key(tmp_path):
    cache = tmp_path / "cache"
    failed = cached_venv(tmp_path / "a", str(cache), 'mkdir -p "$VENV_DIR" && touch "$VENV_DIR/half" && exit 3')
    assert failed.returncode != 0
    assert not (tmp_path / "a").exists() and [p for p in cache.iterdir() if p.is_dir()] == []


def test_off_or_a_real_folder_builds_in_place(tmp_path):
    venv = tmp_path / "real"
    made = cached_venv(venv, "off", 'mkdir -p "$VENV_DIR" && touch "$VENV_DIR/made"')
    assert made.returncode == 0 and venv.is_dir() and not venv.is_symlink() and (venv / "made").exists()
    assert cached_venv(venv, str(tmp_path / "cache"), "exit 9").returncode == 0  # same key: nothing to do
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize(("nodeid", "slow", "tier", "scope"), [
    ("tests/serving/test_vllm_merged.py::test_x", True, "vllm", "vllm"),
    ("tests/e2e/test_pipeline.py::test_x", True, "e2e", "e2e"),
    ("tests/e2e/test_real_model.py::test_x", True, "e2e", "e2e"),
    ("tests/integration/test_celery_faults.py::test_x", True, "integration", "celery"),
    ("tests/integration/test_web_ui_browser.py::test_x", True, "browser", "celery"),  # drives the Celery topology
    ("tests/integration/test_compose_stack.py::test_x", True, "compose", "compose"),
    ("tests/export/test_roundtrip.py::test_x", True, "export", "export"),
    ("tests/data/test_backfill.py::test_x", True, "slow", "tests/data/test_backfill.py"),
    ("tests/test_config.py::test_x[a]", False, "unit", "tests/test_config.py"),
])
def test_tiers_and_the_units_a_worker_takes_whole(nodeid, slow, tier, scope):
    assert tier_of(nodeid, slow) == tier and scope_of(nodeid) == scope


def test_tests_that_start_something_heavy_are_slow():
    """The collection hook marks `slow` what asks for a heavy fixture, wherever it lives: test-fast leaves out the
    lora-mode vLLM tests (a vLLM server) and the GGUF export tests (the converter venv), keeps the in-process check."""
    import sys

    listed = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:xdist", "-m", "not slow",
                             "tests/serving/test_vllm_lora.py", "tests/serving/test_vllm_merged.py",
                             "tests/export/test_roundtrip.py"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300).stdout
    kept = {line.split("::")[-1] for line in listed.splitlines() if "::" in line}
    assert kept == {"test_merged_check_names_the_error_of_a_server_that_does_not_start"}, listed[-2000:]
