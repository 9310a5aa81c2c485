"""Tokenization through ``datasets``: token for token encoding.encode (with and without a chat template), the
snapshot's canonical row order and ``max_train_rows`` as before, and a cache in the run folder a retry reuses."""

from __future__ import annotations

import copy
import logging
import os

import pandas as pd
import pytest

from llmops.config import TrainingConfig
from llmops.errors import DataError
from llmops.model import encoding, loading
from llmops.prompts import PromptTemplate
from llmops.train import tokenize

TEMPLATE = PromptTemplate(path="inline", text="### Question:\n{prompt}\n\n### Answer:\n")
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
# the assistant turn is not written as the generation prompt says: encode falls back to response + eos
MISMATCHED = ("{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
              "{% if add_generation_prompt %}[assistant]\n{% endif %}")


@pytest.fixture(scope="module")
def plain(tiny_model_dir):
    tok = loading.load_tokenizer(str(tiny_model_dir))
    assert not encoding.uses_chat_template(tok)
    return tok


def with_template(tok, template: str):
    tok = copy.deepcopy(tok)
    tok.chat_template = template
    return tok


@pytest.fixture
def rows(sample_rows) -> pd.DataFrame:
    df = sample_rows[["prompt", "response"]].head(300).copy()
    extra = pd.DataFrame({"prompt": ["  padded question?  ", "ünïcödé — 日本語 <s> </s>", "x" * 3000],
                          "response": ["", "résponse </s> with specials", "y " * 1500]})
    return pd.concat([df, extra], ignore_index=True)


def reference(tok, df: pd.DataFrame, max_len: int) -> list[dict]:
    return encoding.encode_rows(tok, TEMPLATE, df["prompt"].tolist(), df["response"].tolist(), max_len)


@pytest.mark.parametrize("chat", [None, CHATML, MISMATCHED], ids=["no-chat-template", "chatml", "mismatched"])
@pytest.mark.parametrize("max_len", [12, 96, 1024])
def test_the_datasets_path_equals_encoding_encode(plain, rows, tmp_path, chat, max_len):
    tok = with_template(plain, chat) if chat else plain
    examples = tokenize.train_examples(rows, tok, TEMPLATE, max_len, cache_dir=tmp_path / "tokenized")
    assert list(tokenize.iter_examples(examples)) == reference(tok, rows, max_len)
    assert tokenize.lengths(examples) == tokenize.lengths(reference(tok, rows, max_len))
    assert tokenize.completion_tokens(examples) == tokenize.completion_tokens(reference(tok, rows, max_len)) > 0


def test_worker_processes_give_the_same_examples(plain, rows, tmp_path):
    tok = with_template(plain, CHATML)
    examples = tokenize.train_examples(rows, tok, TEMPLATE, 128, cache_dir=tmp_path / "tokenized", num_proc=2)
    assert len(examples.cache_files) == 2  # one Arrow file per worker
    assert list(tokenize.iter_examples(examples)) == reference(tok, rows, 128)


def test_a_parquet_file_is_read_in_the_canonical_order_and_max_rows_keeps_its_head(plain, rows, tmp_path):
    path = tmp_path / "train.parquet"
    rows.sample(frac=1, random_state=7).to_parquet(path, index=False)
    canonical = pd.read_parquet(path).sort_values(["prompt", "response"], kind="stable").reset_index(drop=True)
    examples = tokenize.train_examples(path, plain, TEMPLATE, 64, cache_dir=tmp_path / "tokenized")
    assert list(tokenize.iter_examples(examples)) == reference(plain, canonical, 64)
    head = tokenize.train_examples(path, plain, TEMPLATE, 64, cache_dir=tmp_path / "tokenized", max_rows=50)
    assert list(tokenize.iter_examples(head)) == reference(plain, canonical.head(50), 64)
    frame_head = tokenize.train_examples(rows, plain, TEMPLATE, 64, cache_dir=tmp_path / "tokenized", max_rows=50)
    assert list(tokenize.iter_examples(frame_head)) == reference(plain, rows.head(50), 64)  # a frame keeps its order


def test_windows_of_worker_processes_give_the_canonical_order_of_a_parquet_file(plain, rows, tmp_path, caplog):
    path = tmp_path / "train.parquet"
    rows.sample(frac=1, random_state=5).to_parquet(path, index=False, row_group_size=40)
    canonical = pd.read_parquet(path).sort_values(["prompt", "response"], kind="stable").reset_index(drop=True)
    tok = with_template(plain, CHATML)
    with caplog.at_level(logging.INFO, logger="llmops.train.tokenize"):
        examples = tokenize.train_examples(path, tok, TEMPLATE, 96, cache_dir=tmp_path / "tokenized", num_proc=2,
                                           window_rows=70)
    assert "in 5 window(s)" in caplog.text  # 303 rows, 70 a window
    want = reference(tok, canonical, 96)
    assert list(tokenize.iter_examples(examples)) == want
    assert tokenize.lengths(examples) == tokenize.lengths(want)  # in the canonical order, not the file's
    assert tokenize.completion_tokens(examples) == tokenize.completion_tokens(want)
    head = tokenize.train_examples(path, tok, TEMPLATE, 96, cache_dir=tmp_path / "tokenized", num_proc=2,
                                   window_rows=70, max_rows=100)
    want_head = reference(tok, canonical.head(100), 96)
    assert list(tokenize.iter_examples(head)) == want_head
    assert tokenize.lengths(head) == tokenize.lengths(want_head)
    assert tokenize.completion_tokens(head) == tokenize.completion_tokens(want_head)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="llmops.train.tokenize"):  # a retry finds every window's files
        again = tokenize.train_examples(path, tok, TEMPLATE, 96, cache_dir=tmp_path / "tokenized", num_proc=2,
                                        window_rows=70)
    assert "reused cached tokenization of 303 rows" in caplog.text
    assert list(tokenize.iter_examples(again)) == want


def test_the_arrow_copy_and_order_are_made_once_and_a_missing_column_names_the_file(rows, tmp_path):
    from llmops.train import rows_copy

    path = tmp_path / "train.parquet"
    rows.sample(frac=1, random_state=2).to_parquet(path, index=False)
    copy = rows_copy.arrow_copy(path, tmp_path / "copies")
    order = copy.order()
    assert order.tolist() == pd.read_parquet(path).sort_values(["prompt", "response"], kind="stable").index.tolist()
    made = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "copies").iterdir()}
    assert sorted(made) == [f"rows-{copy.key}.arrow", f"rows-{copy.key}.order.npy"]  # no temporary file left
    again = rows_copy.arrow_copy(path, tmp_path / "copies")
    assert again == copy and again.order().tolist() == order.tolist()
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "copies").iterdir()} == made
    assert copy.dataset().to_pandas().equals(pd.read_parquet(path)[["prompt", "response"]])
    bad = tmp_path / "bad.parquet"
    rows.rename(columns={"response": "answer"}).to_parquet(bad, index=False)
    with pytest.raises(DataError, match=r"bad\.parquet: missing column\(s\) \['response'\]"):
        rows_copy.arrow_copy(bad, tmp_path / "copies")
    with pytest.raises(DataError, match=r"training rows \(a data frame\): missing column\(s\) \['response'\]"):
        tokenize.rows_dataset(rows.rename(columns={"response": "answer"}), tmp_path / "frame")
    with pytest.raises(FileNotFoundError, match="nowhere.parquet"):
        rows_copy.arrow_copy(tmp_path / "nowhere.parquet", tmp_path / "copies")


def test_a_second_call_reuses_the_cached_tokenization(plain, rows, tmp_path, caplog):
    cache = tmp_path / "tokenized"
    path = tmp_path / "train.parquet"
    rows.to_parquet(path, index=False)
    with caplog.at_level(logging.INFO, logger="llmops.train.tokenize"):
        first = tokenize.train_examples(path, plain, TEMPLATE, 64, cache_dir=cache)
    assert f"tokenized {len(rows)} rows" in caplog.text
    files = {f["filename"]: os.stat(f["filename"]).st_mtime_ns for f in first.cache_files}
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="llmops.train.tokenize"):
        again = tokenize.train_examples(path, plain, TEMPLATE, 64, cache_dir=cache)
    assert "reused cached tokenization" in caplog.text and "process(es)" not in caplog.text
    assert {f["filename"]: os.stat(f["filename"]).st_mtime_ns for f in again.cache_files} == files
    assert list(tokenize.iter_examples(again)) == list(tokenize.iter_examples(first))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="llmops.train.tokenize"):  # another max_len, template or tokenizer
        tokenize.train_examples(path, plain, TEMPLATE, 65, cache_dir=cache)
        tokenize.train_examples(path, with_template(plain, CHATML), TEMPLATE, 64, cache_dir=cache)
        tokenize.train_examples(path, plain, PromptTemplate("inline", "Q: {prompt}\nA: "), 64, cache_dir=cache)
    assert caplog.text.count(f"tokenized {len(rows)} rows") == 3 and "reused" not in caplog.text


def test_finetune_trains_on_a_parquet_path_with_max_train_rows(tiny_model_dir, rows, tmp_path):
    from llmops.train.lora import finetune

    path = tmp_path / "train.parquet"
    rows.sample(frac=1, random_state=3).to_parquet(path, index=False)
    training = TrainingConfig(batch_size=8, max_seq_len=64, max_train_rows=40, max_steps=2, checkpoint_every_steps=0)
    result = finetune(path, base_model=str(tiny_model_dir), revision=None, template=TEMPLATE, training=training,
                      out_dir=tmp_path / "run", metadata={})
    assert result["train_rows"] == 40 and result["steps"] == 2
    canonical = rows.sort_values(["prompt", "response"], kind="stable").head(40)
    assert result["completion_tokens"] == tokenize.completion_tokens(
        reference(loading.load_tokenizer(str(tiny_model_dir)), canonical, 64))
    assert any((tmp_path / "run" / "tokenized").glob("tokenized-*.arrow"))
