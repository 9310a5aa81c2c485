"""Batch predictions with the registered champion: versioned, idempotent, with safety attributes."""

from __future__ import annotations

import json

import pandas as pd

from llmops.serving.batch import predict_batch
from llmops.serving.model_store import load_version


def test_batch_predictions_are_versioned_and_idempotent(cfg, registered, tmp_path):
    inp = tmp_path / "batch.jsonl"
    pd.DataFrame({"question": ["How do I rename a branch in git?", "How do I drop rows in pandas?",
                               "How do I list running containers in docker?"]}).to_json(inp, orient="records",
                                                                                      lines=True)
    cfg = cfg.model_copy(update={"serving": cfg.serving.model_copy(update={
        "batch_input": str(inp), "batch_prompt_column": "question", "batch_size": 2, "max_new_tokens": 12})})
    model = load_version(cfg, "champion", "1", tmp_path / "cache")
    manifest = predict_batch(cfg, model, "1")
    out = manifest["uri"].removeprefix("file://")
    df = pd.read_parquet(f"{out}/predictions.parquet")
    assert len(df) == 3 and manifest["rows"] == 3
    assert set(df["model_version"]) == {"1"} and set(df["prompt_template_hash"]) == {model.template.hash}
    assert df["completion"].map(lambda c: isinstance(c, str)).all() and not df["blocked"].any()
    assert out.endswith(f"/v1-{out.rsplit('-', 1)[1]}")
    again = predict_batch(cfg, model, "1")
    assert again == json.loads(open(f"{out}/manifest.json").read())
    assert len(list((tmp_path.parent).glob("**/.v1-*"))) == 0
