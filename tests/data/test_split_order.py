"""The canonical order of a split computed in passes over record batches is exactly pandas'
``sort_values(["prompt", "response"], kind="stable")``: shared beginnings longer than a pass's chunk, texts that
are prefixes of others, identical rows (kept in file order), nulls (last), NUL bytes, multi-byte characters."""

from __future__ import annotations

import logging
import random

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from llmops.data.snapshots.split_order import canonical_order

COLUMNS = ["prompt", "response"]


def order_of(df: pd.DataFrame, budget: int, batch_rows: int) -> np.ndarray:
    table = pa.Table.from_pandas(df, preserve_index=False)
    calls = []

    def batches(names):
        calls.append(names)
        return table.select(names).to_batches(max_chunksize=batch_rows)

    order = canonical_order(batches, len(df), COLUMNS, budget=budget)
    return order, calls


def pandas_order(df: pd.DataFrame) -> list[int]:
    return df.sort_values(COLUMNS, kind="stable").index.tolist()


def test_long_shared_beginnings_take_more_passes_and_give_pandas_order(caplog):
    preamble = "Summarize the following article for a busy reader: " * 3  # 156 bytes shared by most prompts
    rows = [(preamble + "b", "x"), (preamble + "a", "z"), (preamble + "a", "y"), (preamble, "q"),
            ("short", "r"), (preamble + "a", "y"), ("", "e"), ("short", ""), (preamble + "ab", "")]
    df = pd.DataFrame(rows, columns=COLUMNS)
    with caplog.at_level(logging.INFO, logger="llmops.data.snapshots.split_order"):
        got, calls = order_of(df, budget=8 * len(df), batch_rows=2)  # 8 bytes a row a pass
    assert got.tolist() == pandas_order(df)
    assert len(calls) > 156 // 8  # one pass per 8 shared bytes at least
    assert "passes" in caplog.text
    assert ["response"] in calls  # identical prompts are told apart by their responses, read alone


def test_identical_rows_keep_their_file_order_and_nulls_sort_last():
    df = pd.DataFrame({"prompt": ["b", None, "a", "b", None, "a", "a"],
                       "response": ["1", "z", "2", "1", None, "2", None]})
    got, _ = order_of(df, budget=64, batch_rows=3)
    assert got.tolist() == pandas_order(df) == [2, 5, 6, 0, 3, 1, 4]


@pytest.mark.parametrize("seed", range(40))
def test_random_splits_match_pandas(seed):
    rnd = random.Random(seed)
    alphabet = ["a", "b", "\x00", "é", "日", "z", "A", " ", "😀"]
    shared = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 40)))

    def text():
        if rnd.random() < 0.05:
            return None
        return (shared if rnd.random() < 0.7 else "") + "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 12)))

    n = rnd.randint(0, 80)
    df = pd.DataFrame({"prompt": [text() for _ in range(n)], "response": [text() for _ in range(n)]})
    if n > 4:
        df.loc[1] = df.loc[0]
        df.loc[3, "prompt"] = df.loc[2, "prompt"]
    got, _ = order_of(df, budget=rnd.choice([8, 64, 1000, 1 << 20]), batch_rows=rnd.randint(1, 20))
    assert got.tolist() == pandas_order(df)


def test_batches_that_do_not_hold_every_row_are_an_error():
    table = pa.table({"prompt": ["a", "b", "c"], "response": ["x", "y", "z"]})
    with pytest.raises(ValueError, match="expected 4 rows, the batches held 3"):
        canonical_order(lambda names: table.select(names).to_batches(), 4, COLUMNS)
