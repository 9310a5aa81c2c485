"""The monitoring step on a written prediction log, and the serving steps' "no champion yet"."""

from __future__ import annotations

import json

import pytest

from llmops import paths
from llmops.config import load_by_name
from llmops.data.snapshots.handle import Snapshots
from llmops.errors import NothingToDo
from llmops.payloads import ServingFigures
from llmops.serving_logs import log_dir
from llmops.steps.monitor import monitor

DAY = "2026-11-23"


def _log(prompts, latency_ms: float, blocked: bool = False) -> None:
    folder = log_dir("mon_qa")
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{DAY}.jsonl", "w") as f:
        for p in prompts:
            f.write(json.dumps({"ts": f"{DAY}T10:00:00.000+00:00", "version": "1", "latency_ms": latency_ms,
                                "prompt": p, "blocked": blocked, "recited": False}) + "\n")


@pytest.fixture
def cfg(use_case_file, sample_rows):
    use_case_file("mon_qa")
    cfg = load_by_name("mon_qa")
    rows = sample_rows.head(200).assign(source_file="qa.jsonl", source_line=range(1, 201))
    Snapshots.of(cfg).write_frame(rows, source={"kind": "files"}, validation={"success": True})
    return cfg


def test_a_healthy_day_is_measured_against_the_training_snapshot(cfg, sample_rows):
    _log(sample_rows["prompt"].head(40).tolist(), latency_ms=40.0)
    out = monitor(cfg, DAY)
    assert isinstance(out, ServingFigures) and out.breaches == []
    assert out.figures["requests"] == 40 and out.figures["block_rate"] == 0.0
    assert out.report.startswith(str(paths.llmops_home() / "monitoring" / "mon_qa" / DAY))
    assert out.to_xcom() == {"figures": out.figures, "report": out.report}


def test_a_bad_day_names_the_thresholds_it_crosses(cfg):
    _log(["Explain quantum chromodynamics on a lattice in great detail please " * 5] * 40, latency_ms=9000.0,
         blocked=True)
    out = monitor(cfg, DAY)
    crossed = "\n".join(out.breaches)
    for metric in ("p95_latency_ms", "block_rate", "length_psi"):
        assert metric in crossed, crossed
    assert "ALERT" in open(out.report).read()


def test_serving_steps_have_nothing_to_do_without_a_champion(cfg):
    from llmops.steps.batch_predict import batch_predict

    with pytest.raises(NothingToDo, match="mon_qa-lora has no champion yet; nothing to predict with"):
        batch_predict(cfg)
