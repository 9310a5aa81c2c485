"""Compare prompt templates for one model on the same eval rows, side by side.

Every template is a versioned file in include/prompts/ and is identified by its content hash, as on every
model version and every prediction. The adapter was trained with one template; the comparison shows how much
a different wording costs or gains with the same weights.
"""

from __future__ import annotations

import logging

import pandas as pd

from llmops.evaluate.evaluation import completion_loss
from llmops.evaluate.metrics import token_f1
from llmops.model.decoding import generate
from llmops.prompts import load_template

log = logging.getLogger(__name__)


def compare_templates(model, tokenizer, template_paths: list[str], rows: pd.DataFrame, *, max_len: int,
                      max_new_tokens: int, batch_size: int, generation_samples: int) -> pd.DataFrame:
    """One row per template: hash, eval loss, perplexity and token F1 on the same rows."""
    results = []
    sample = rows.head(generation_samples)
    for path in template_paths:
        template = load_template(path)
        loss = completion_loss(model, tokenizer, template, rows, max_len=max_len, batch_size=batch_size)
        preds = generate(model, tokenizer, template, sample["prompt"].tolist(), max_new_tokens=max_new_tokens,
                         max_len=max_len, batch_size=batch_size) if len(sample) else []
        f1 = sum(map(token_f1, preds, sample["response"])) / len(preds) if preds else float("nan")
        results.append({"template": path, "hash": template.hash, "eval_loss": loss["loss"],
                        "perplexity": loss["perplexity"], "token_f1": f1, "rows": len(rows)})
        log.info("template %s (%s): eval_loss %.4f token_f1 %.3f", path, template.hash, loss["loss"], f1)
    return pd.DataFrame(results)


def to_markdown(table: pd.DataFrame, model_name: str, version: str) -> str:
    lines = [f"# Prompt templates for {model_name} version {version}", "",
             "| template | hash | eval_loss | perplexity | token_f1 | rows |", "|---|---|---|---|---|---|"]
    for r in table.itertuples(index=False):
        lines.append(f"| {r.template} | {r.hash} | {r.eval_loss:.4f} | {r.perplexity:.3f} | {r.token_f1:.3f} | "
                     f"{r.rows} |")
    return "\n".join(lines) + "\n"
