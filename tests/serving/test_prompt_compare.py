"""Prompt templates compared side by side for one registered model on the same rows."""

from __future__ import annotations

from llmops.evaluate.prompt_compare import compare_templates, to_markdown
from llmops.serving.model_store import load_version


def test_templates_are_compared_on_the_same_rows(cfg, registered, tmp_path, sample_rows):
    model = load_version(cfg, "champion", "1", tmp_path / "cache")
    rows = sample_rows.tail(24).reset_index(drop=True)
    table = compare_templates(model.model, model.tokenizer, ["include/prompts/qa_v1.txt", "include/prompts/qa_v2.txt"],
                              rows, max_len=96, max_new_tokens=8, batch_size=8, generation_samples=4)
    assert list(table["template"]) == ["include/prompts/qa_v1.txt", "include/prompts/qa_v2.txt"]
    assert table["hash"].nunique() == 2 and (table["rows"] == 24).all()
    # the adapter was trained with qa_v1: its own template must fit the answers better than an unseen wording
    assert table["eval_loss"].iloc[0] < table["eval_loss"].iloc[1]
    md = to_markdown(table, cfg.model_name, "1")
    assert md.count("| include/prompts/") == 2
