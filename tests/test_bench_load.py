"""The load bench's reading of locust's CSV (bench/load_test.py)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from load_test import _number  # noqa: E402


def test_a_level_that_finished_no_request_reads_as_nan_not_a_crash():
    # locust writes "N/A" for the percentiles of a level with no finished request (a slow server's first minute)
    assert math.isnan(_number("N/A")) and math.isnan(_number(""))
    assert _number("12.5") == 12.5 and _number("0") == 0.0
