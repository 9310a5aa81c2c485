"""Holm-Bonferroni on hand-worked numbers, and the bootstrap p-value's agreement with the gate's interval."""

from __future__ import annotations

import math

import pytest

from llmops.evaluate.bootstrap import paired_bootstrap
from llmops.evaluate.multiple_comparisons import bootstrap_p_value, holm


def test_holm_on_hand_worked_numbers():
    # m = 3, alpha = 0.05. Sorted: b 0.01 (x3 = 0.03), c 0.03 (x2 = 0.06), a 0.04 (x1 = 0.04 -> running max 0.06)
    out = holm({"a": 0.04, "b": 0.01, "c": 0.03}, alpha=0.05)
    assert [out[n]["rank"] for n in "bca"] == [1, 2, 3]
    assert [out[n]["divisor"] for n in "bca"] == [3, 2, 1]
    assert out["b"]["adjusted"] == pytest.approx(0.03)
    assert out["c"]["adjusted"] == pytest.approx(0.06)
    assert out["a"]["adjusted"] == pytest.approx(0.06)  # its own 0.04 would pass alone; the step-down stops at c
    assert [out[n]["rejected"] for n in "bca"] == [True, False, False]


def test_the_best_of_several_needs_more_than_a_plain_test():
    # one trial at p = 0.03 passes alone; as one of three similar ones (0.03, 0.035, 0.04) none passes
    assert holm({"only": 0.03}, alpha=0.05)["only"]["rejected"] is True
    out = holm({"x": 0.03, "y": 0.035, "z": 0.04}, alpha=0.05)
    assert out["x"]["adjusted"] == pytest.approx(0.09) and not any(o["rejected"] for o in out.values())


def test_a_nan_p_value_ranks_last_and_never_passes():
    out = holm({"ok": 0.001, "broken": math.nan}, alpha=0.05)
    assert out["ok"] == {"p": 0.001, "rank": 1, "divisor": 2, "adjusted": pytest.approx(0.002), "rejected": True}
    assert out["broken"]["rank"] == 2 and out["broken"]["rejected"] is False


def test_the_p_value_agrees_with_the_gates_interval():
    a = [0.9, 0.8, 0.75, 0.6, 0.95, 0.7, 0.65, 0.85]
    b = [0.7, 0.75, 0.7, 0.65, 0.8, 0.6, 0.7, 0.6]
    ci = paired_bootstrap(a, b, samples=2000, confidence=0.95)
    p = bootstrap_p_value(a, b, samples=2000)
    assert (p <= 0.05) == (ci["low"] > 0)
    # a margin above the whole interval: no evidence at all
    assert bootstrap_p_value(a, b, margin=ci["high"] + 0.01, samples=2000) == 1.0
    # identical scores: every resampled difference is 0 <= margin 0
    assert bootstrap_p_value(a, a, samples=100) == 1.0
