"""Monitoring figures, drift and thresholds on planted request logs."""

from __future__ import annotations

import pandas as pd

from llmops.config import MonitoringConfig
from llmops.monitoring.checks import breaches, daily_figures
from llmops.monitoring.drift import psi, vocabulary_overlap
from llmops.monitoring.report import write_report
from llmops.serving_logs import PredictionLog, read_day

TRAIN = pd.Series([f"How do I reverse a list in python number {i}?" for i in range(200)])


def _requests(prompts, latency=50.0, blocked=False):
    return pd.DataFrame({"ts": "2026-11-23T00:00:00Z", "version": "1", "latency_ms": latency, "prompt": prompts,
                         "blocked": blocked, "recited": False})


def test_psi_is_zero_for_same_distribution_and_large_for_shifted():
    assert psi(TRAIN.str.len(), TRAIN.str.len()) < 1e-6
    assert psi(TRAIN.str.len(), TRAIN.str.len() * 5) > 1.0


def test_vocabulary_overlap():
    assert vocabulary_overlap(TRAIN, ["how do I reverse a list"]) == 1.0
    assert vocabulary_overlap(TRAIN, ["quantum chromodynamics lattice"]) == 0.0


def test_healthy_day_crosses_nothing():
    figures = daily_figures(_requests(TRAIN.iloc[::4].tolist()), TRAIN)
    assert figures["requests"] == 50 and figures["block_rate"] == 0.0
    assert breaches(figures, MonitoringConfig()) == []


def test_thresholds_fire_on_latency_blocks_and_drift():
    drifted = _requests(["Explain quantum chromodynamics on a lattice in great detail please " * 5] * 40,
                        latency=9000.0, blocked=True)
    found = breaches(daily_figures(drifted, TRAIN), MonitoringConfig())
    text = "\n".join(found)
    for metric in ("p95_latency_ms", "block_rate", "length_psi", "vocabulary_overlap"):
        assert metric in text, text


def test_no_traffic_is_not_an_alert():
    assert breaches(daily_figures(_requests([]).iloc[0:0], TRAIN), MonitoringConfig()) == []


def test_prediction_log_roundtrip_and_report(tmp_path):
    log = PredictionLog("uc")
    log.append({"version": "1", "latency_ms": 12.5, "prompt": "hi there", "blocked": False, "recited": True})
    day = sorted(p.stem for p in log.dir.glob("*.jsonl"))[0]
    df = read_day("uc", day)
    assert len(df) == 1 and df["recited"].iloc[0]
    figures = daily_figures(df, TRAIN)
    report = write_report(tmp_path / "r", day, figures, ["x crosses y"], df, TRAIN)
    assert "ALERT" in report.read_text() and (tmp_path / "r" / "monitoring.png").stat().st_size > 1000
    assert read_day("uc", "1999-01-01").empty
