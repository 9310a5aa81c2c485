"""The tests' tiny-model cache (tests/model_cache.py): built once per content, copied per session."""

from __future__ import annotations

import hashlib

from model_cache import tiny_model

TEXTS = [f"how do I sort a list of {w} in python? use sorted() with a key." for w in ("ints", "dicts", "tuples")] * 4


def _digest(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_the_same_content_is_built_once_and_each_caller_gets_its_own_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMOPS_MODEL_CACHE", str(tmp_path / "cache"))
    first = tiny_model(tmp_path / "a" / "tiny", TEXTS, hidden_size=16, heads=2, vocab_size=300, pretrain_steps=1)
    [cached] = (tmp_path / "cache").glob("tiny-*[!k]")  # the model's folder, not its .lock
    built_at = cached.stat().st_mtime_ns
    second = tiny_model(tmp_path / "b" / "tiny", TEXTS, hidden_size=16, heads=2, vocab_size=300, pretrain_steps=1)
    assert cached.stat().st_mtime_ns == built_at  # not built again
    assert first != second and _digest(first) == _digest(second) == _digest(cached)
    (second / "config.json").write_text("{}")  # a test changing its copy changes nothing the next one gets
    assert _digest(cached) == _digest(first)

    # another argument, another key, another build
    tiny_model(tmp_path / "c" / "tiny", TEXTS, hidden_size=16, heads=2, vocab_size=300, pretrain_steps=2)
    assert len([p for p in (tmp_path / "cache").iterdir() if p.is_dir()]) == 2


def test_off_builds_in_place_and_keeps_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMOPS_MODEL_CACHE", "off")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    out = tiny_model(tmp_path / "x" / "tiny", TEXTS, hidden_size=16, heads=2, vocab_size=300, pretrain_steps=1)
    assert (out / "config.json").exists() and not (tmp_path / "home").exists()
