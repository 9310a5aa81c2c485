"""Test tiers: which tests are which kind, how they share a worker under pytest-xdist, and where the time went.

One table names the heavy tiers by the test files they hold (first match wins; everything else is ``unit`` or, when
marked ``slow``, ``slow``). Under ``-n 2 --dist loadgroup`` this module's scheduler keeps each heavy tier on one
worker, because its tests share an expensive fixture (the e2e Airflow home and its champion, the Celery topology,
the compose stack, the vLLM servers, the converter venv); every other file is a unit of its own (its module
fixtures are made once). The heavy tiers are handed out first, longest first. The run ends with a per-tier summary
(tests, seconds) printed by pytest and written to ``test-artifacts/test-timings.json``, so a slow addition shows in
the run that added it. Imported by ``tests/conftest.py`` (its hooks live there).
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TIMINGS = ROOT / "test-artifacts" / "test-timings.json"

# (tier, xdist group, path prefixes under tests/): the heavy tiers, longest first. A tier's tests run on one worker,
# in file order, because they share expensive fixtures (the browser test drives the Celery topology's web UI).
HEAVY: list[tuple[str, str, tuple[str, ...]]] = [
    ("vllm", "vllm", ("serving/test_vllm_lora.py", "serving/test_vllm_merged.py")),
    ("e2e", "e2e", ("e2e/",)),
    ("compose", "compose", ("integration/test_compose_stack.py",)),  # make test runs it alone, after the others
    ("integration", "celery", ("integration/test_celery_",)),
    ("browser", "celery", ("integration/test_web_ui_browser.py",)),
    ("export", "export", ("export/test_export_version.py", "export/test_roundtrip.py")),
]
ORDER = [tier for tier, _, _ in HEAVY]
# a test that asks for one of these starts a server, a topology or a venv build: it is ``slow`` wherever it lives
HEAVY_FIXTURES = {"lora_server", "vllm_python", "gguf_tools", "topology", "fault_topology", "stack", "airflow"}


def _heavy(nodeid: str) -> tuple[str, str] | None:
    path = nodeid.split("::", 1)[0].removeprefix("tests/")
    for tier, group, prefixes in HEAVY:
        if path.startswith(prefixes):
            return tier, group
    return None


def tier_of(nodeid: str, slow: bool) -> str:
    heavy = _heavy(nodeid)
    return heavy[0] if heavy else "slow" if slow else "unit"


def scope_of(nodeid: str) -> str:
    """The unit of work a worker takes whole: a heavy tier's group, else the test's file."""
    heavy = _heavy(nodeid)
    return heavy[1] if heavy else nodeid.split("::", 1)[0]


@pytest.hookimpl(optionalhook=True)  # a hook of xdist's: unknown where xdist is off (-p no:xdist, TEST_WORKERS=1)
def pytest_xdist_make_scheduler(config, log):
    """xdist's own ``loadgroup`` reads ``xdist_group`` marks through a node id suffix that pytest 9 no longer lets
    it set; this scheduler groups by :func:`scope_of` instead, in collection order (heavy tiers first)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class TierScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

    return TierScheduling(config, log)


@pytest.hookimpl(tryfirst=True)  # before pytest's -m deselection reads the marks
def pytest_collection_modifyitems(config, items):
    """Marks ``slow`` every test that asks for a heavy fixture; under xdist, puts the heavy tiers first, longest
    first (the scheduler hands out units in this order with --no-loadscope-reorder)."""
    for item in items:
        if HEAVY_FIXTURES & set(getattr(item, "fixturenames", ())) and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        def rank(item):
            tier = tier_of(item.nodeid, item.get_closest_marker("slow") is not None)
            return ORDER.index(tier) if tier in ORDER else len(ORDER) + (tier != "slow")
        items.sort(key=rank)  # stable: the order within a tier is the files' own


def share_cores() -> None:
    """Under xdist, each worker (and every process it starts: `airflow dags test`, training, torchrun) gets its share
    of the cores for OpenMP and torch, instead of each asking for all of them and spinning against the other."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    if os.environ.get("PYTEST_XDIST_WORKER") and workers > 1:
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))


share_cores()


class _Clock:
    def __init__(self):
        self.started = time.monotonic()
        self.seconds: dict[str, float] = defaultdict(float)
        self.tests: dict[str, set] = defaultdict(set)
        self.outcome: dict[str, str] = {}  # nodeid -> passed | failed | skipped (a failed phase wins)


_clock = _Clock()


def pytest_runtest_logreport(report):
    """Every phase (setup, call, teardown) counts, so a module fixture's start is charged to its tier. Under xdist
    the controller sees every worker's reports."""
    slow = "slow" in report.keywords
    tier = tier_of(report.nodeid, slow)
    _clock.seconds[tier] += report.duration
    _clock.tests[tier].add(report.nodeid)
    if report.failed:
        _clock.outcome[report.nodeid] = "failed"
    elif _clock.outcome.get(report.nodeid) != "failed" and (report.skipped or report.when == "call"):
        _clock.outcome[report.nodeid] = "skipped" if report.skipped else "passed"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if os.environ.get("PYTEST_XDIST_WORKER") or not _clock.seconds:
        return
    wall = time.monotonic() - _clock.started
    total = sum(_clock.seconds.values())
    workers = getattr(config.option, "numprocesses", None) or 1
    rows = sorted(_clock.seconds.items(), key=lambda kv: -kv[1])
    tr = terminalreporter
    tr.section("time per tier")
    tr.write_line(f"{'tier':<12} {'tests':>6} {'seconds':>9} {'share':>6}")
    for tier, seconds in rows:
        tr.write_line(f"{tier:<12} {len(_clock.tests[tier]):>6} {seconds:>9.0f} {seconds / total:>6.0%}")
    tr.write_line(f"{'all':<12} {sum(len(t) for t in _clock.tests.values()):>6} {total:>9.0f}   test time on "
                  f"{workers} worker(s); {wall:.0f} s wall")
    TIMINGS.parent.mkdir(exist_ok=True)
    counts = {k: list(_clock.outcome.values()).count(k) for k in ("passed", "failed", "skipped")}
    tiers = {t: {"tests": len(_clock.tests[t]), "seconds": round(s, 1)} for t, s in rows}
    record = {"wall_s": round(wall, 1), "workers": workers, "test_s": round(total, 1), **counts, "tiers": tiers}
    if os.environ.get("LLMOPS_TEST_TIMINGS") == "append" and TIMINGS.exists():  # a second pytest run of make test
        before = json.loads(TIMINGS.read_text())
        for key in ("wall_s", "test_s", "passed", "failed", "skipped"):
            record[key] = round(before.get(key, 0) + record[key], 1)
        record["workers"] = before.get("workers", workers)
        merged = {t: dict(row) for t, row in before.get("tiers", {}).items()}
        for t, row in tiers.items():  # a tier in both runs (the vLLM tier's in-process check and its servers) adds up
            had = merged.setdefault(t, {"tests": 0, "seconds": 0.0})
            had.update(tests=had["tests"] + row["tests"], seconds=round(had["seconds"] + row["seconds"], 1))
        record["tiers"] = dict(sorted(merged.items(), key=lambda kv: -kv[1]["seconds"]))
    TIMINGS.write_text(json.dumps(record, indent=2))
