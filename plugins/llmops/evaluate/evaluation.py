"""Evaluate every candidate (base model, current champion, new challenger) on the same rows, in one run.

Loss is the mean cross-entropy over completion tokens (prompt masked, exactly as in training); perplexity is its
exponential. Generation is batched greedy decoding with left padding and the KV cache
(:func:`llmops.model.decoding.generate`, the decoder the serving scheduler uses), scored by exact match, token F1,
ROUGE-L, answer length, latency, the safety filter and the recitation (citation) check. Every metric keeps its
per-example scores, in row order, so the gate can compute paired bootstrap intervals.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence

import pandas as pd

from llmops.config import EvaluationConfig
from llmops.evaluate.metrics import answer_words, exact_match, rouge_l, token_f1
from llmops.evaluate.recitation import RecitationIndex
from llmops.evaluate.safety import SafetyFilter
from llmops.model import encoding, loading
from llmops.model.decoding import generate
from llmops.prompts import PromptTemplate

log = logging.getLogger(__name__)
TEXT_METRICS = {"exact_match": exact_match, "token_f1": token_f1, "rouge_l": rouge_l}


def completion_loss(model, tokenizer, template: PromptTemplate, rows: pd.DataFrame, *, max_len: int,
                    batch_size: int) -> dict:
    """Token-weighted mean loss over completion tokens, plus the per-example losses."""
    import torch

    examples = encoding.encode_rows(tokenizer, template, rows["prompt"].tolist(), rows["response"].tolist(), max_len)
    total, count, per_example = 0.0, 0, []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(examples), batch_size):
            batch = encoding.collate(examples[i:i + batch_size], tokenizer.pad_token_id)
            batch = {k: v.to(model.device) for k, v in batch.items()}
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
            labels = batch["labels"][:, 1:]
            losses = torch.nn.functional.cross_entropy(
                logits[:, :-1].transpose(1, 2), labels, ignore_index=encoding.IGNORE, reduction="none")
            mask = labels != encoding.IGNORE
            sums, counts = (losses * mask).sum(1), mask.sum(1)
            per_example.extend((sums / counts.clamp(min=1)).tolist())
            total += float(sums.sum())
            count += int(counts.sum())
    loss = total / count if count else math.nan
    return {"loss": loss, "perplexity": math.exp(min(loss, 50)), "tokens": count, "per_example": per_example}


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


class Scorer:
    """Scores one model on fixed row sets; the same sets and checks for every candidate."""

    def __init__(self, sets: dict[str, pd.DataFrame], template: PromptTemplate, cfg: EvaluationConfig,
                 max_len: int, train_texts: Sequence[str] = ()):
        self.sets, self.template, self.cfg, self.max_len = sets, template, cfg, max_len
        self.safety = SafetyFilter(cfg.safety)
        self.recitation = RecitationIndex(train_texts, cfg.recitation.ngram_words) if cfg.recitation.enabled else None
        self.regression = None
        if cfg.regression.tasks:
            from llmops import paths
            from llmops.evaluate.regression import RegressionSuite

            reg = cfg.regression
            self.regression = RegressionSuite(reg.tasks, paths.resolve(reg.evals_dir), limit=reg.limit,
                                              batch_size=reg.batch_size, max_length=max_len)

    def score(self, model, tokenizer) -> dict:
        started = time.monotonic()
        metrics, per_example, samples = {}, {}, []
        for prefix, rows in self.sets.items():
            m, pe, s = self._score_set(model, tokenizer, rows)
            metrics.update({prefix + k: v for k, v in m.items()})
            per_example.update({prefix + k: v for k, v in pe.items()})
            samples.extend({**x, "set": prefix.rstrip("_") or "eval"} for x in s)
        out = {"metrics": metrics, "per_example": per_example, "samples": samples}
        if self.regression is not None:  # lm-eval tasks on the same (adapter-switched) model
            t = time.monotonic()
            reg = self.regression.score(model, tokenizer)
            metrics.update(reg["metrics"])
            per_example.update(reg["per_example"])
            out["regression_samples"] = reg["samples"]
            metrics["regression_seconds"] = round(time.monotonic() - t, 2)
        metrics["seconds"] = round(time.monotonic() - started, 2)
        return out

    def _score_set(self, model, tokenizer, rows: pd.DataFrame):
        cfg = self.cfg
        loss = completion_loss(model, tokenizer, self.template, rows, max_len=self.max_len, batch_size=cfg.batch_size)
        sample = rows.head(cfg.generation_samples)
        timings: list[float] = []
        preds = generate(model, tokenizer, self.template, sample["prompt"].tolist(), max_new_tokens=cfg.max_new_tokens,
                         max_len=self.max_len, batch_size=cfg.batch_size, timings=timings) if len(sample) else []
        refs = sample["response"].tolist()
        pe = {"eval_loss": loss["per_example"]}
        pe.update({name: [fn(p, r) for p, r in zip(preds, refs, strict=True)] for name, fn in TEXT_METRICS.items()})
        pe["answer_words"] = [answer_words(p) for p in preds]
        pe["latency_ms"] = timings
        pe["unsafe_rate"] = self.safety.blocked(preds)
        if self.recitation is not None:
            pe["recitation_rate"] = self.recitation.scores(preds)
        metrics = {"eval_loss": loss["loss"], "perplexity": loss["perplexity"], "eval_tokens": loss["tokens"],
                   "eval_rows": len(rows), "generated": len(preds)}
        metrics.update({k: _mean(v) for k, v in pe.items() if k != "eval_loss"})
        samples = [{"prompt": p, "reference": r, "prediction": o, "blocked": self.safety.why_blocked(o),
                    "recites": bool(self.recitation and self.recitation.recites(o))}
                   for p, r, o in zip(sample["prompt"], refs, preds, strict=True)]
        return metrics, pe, samples


def evaluate_candidates(eval_rows: pd.DataFrame, *, base_model: str, revision: str | None, adapter_dir: str,
                        template: PromptTemplate, cfg: EvaluationConfig, max_len: int,
                        train_texts: Sequence[str] = (), golden_rows: pd.DataFrame | None = None,
                        champion: dict | None = None) -> dict:
    """Score base, challenger (``adapter_dir``) and, when given, the champion on the same rows.

    ``champion`` is ``{"version", "adapter_dir", "base_model", "revision"}``; on the same base model it shares
    the base weights with the challenger (two peft adapters), otherwise it is loaded on its own base model.
    Returns ``{"candidates": {name: {"metrics", "per_example", "samples"}}, "champion_version", "rows"}``."""
    sets = {"": eval_rows.head(cfg.max_eval_rows).reset_index(drop=True)}
    if golden_rows is not None:
        sets["golden_"] = golden_rows.head(cfg.max_eval_rows).reset_index(drop=True)
    scorer = Scorer(sets, template, cfg, max_len, train_texts)
    base, tokenizer = loading.load_base(base_model, revision)
    model = loading.load_adapter(base, adapter_dir, name="challenger")
    shared = champion is not None and (champion["base_model"], champion.get("revision") or None) == (
        base_model, revision or None)
    if shared:
        loading.load_adapter(None, champion["adapter_dir"], name="champion", into=model)
    candidates = {}
    with model.disable_adapter():
        candidates["base"] = scorer.score(model, tokenizer)
    model.set_adapter("challenger")
    candidates["challenger"] = scorer.score(model, tokenizer)
    if champion is not None:
        if shared:
            model.set_adapter("champion")
            candidates["champion"] = scorer.score(model, tokenizer)
        else:
            log.info("champion version %s is on base model %s: loading it separately", champion["version"],
                     champion["base_model"])
            c_base, c_tok = loading.load_base(champion["base_model"], champion.get("revision") or None)
            c_model = loading.load_adapter(c_base, champion["adapter_dir"], name="champion")
            candidates["champion"] = scorer.score(c_model, c_tok)
    for name, c in candidates.items():
        m = c["metrics"]
        log.info("%-10s eval_loss %.4f  perplexity %.2f  exact_match %.3f  token_f1 %.3f  rouge_l %.3f  unsafe %.3f  "
                 "recitation %.3f  latency %.1f ms  (%d rows, %d generated, %.1fs)", name, m["eval_loss"],
                 m["perplexity"], m["exact_match"], m["token_f1"], m["rouge_l"], m["unsafe_rate"],
                 m.get("recitation_rate", math.nan), m["latency_ms"], m["eval_rows"], m["generated"], m["seconds"])
    return {"candidates": candidates, "champion_version": champion["version"] if champion else None,
            "rows": {k.rstrip("_") or "eval": len(v) for k, v in sets.items()}}
