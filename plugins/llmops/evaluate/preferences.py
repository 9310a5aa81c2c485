"""Held-out preference metrics: does a model prefer the chosen answer over the rejected one on pairs it was not
tuned on (the eval split of the preference snapshot)?

For each pair and candidate (base, champion, challenger) the **margin** is log p(chosen | prompt) - log p(rejected
| prompt), each summed over the answer's tokens, with the prompt encoded exactly as training encodes it. Per pair:

- ``preference_accuracy``: 1 when the margin is positive, else 0;
- ``preference_margin``: the margin itself (nats);
- ``reward_accuracy``: DPO's implicit reward is beta x (log p_model - log p_reference); the chosen answer's reward
  beats the rejected one's exactly when the candidate's margin exceeds the reference's. 1 then, else 0; the
  reference (the champion DPO was anchored to, else the base) scores 0 against itself, as TRL's
  ``rewards/accuracies`` (a strict ``>``) would.

The metrics are the means; the per-pair values go to the results file beside the supervised ones, so the gate's
relative rules (``preference_accuracy vs champion, ci: true``) get their paired bootstrap interval as any other
metric's. :func:`intervals` gives the paired intervals the report prints.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd

from llmops.evaluate.bootstrap import paired_bootstrap
from llmops.prompts import PromptTemplate

log = logging.getLogger(__name__)
METRICS = ("preference_accuracy", "preference_margin", "reward_accuracy")


def answer_logprobs(model, tokenizer, template: PromptTemplate, prompts, answers, *, max_len: int,
                    batch_size: int = 16) -> np.ndarray:
    """log p(answer | prompt) summed over the answer's tokens, one per row (the prompt rendered as in training)."""
    import torch

    from llmops.model import encoding

    out: list[float] = []
    device = next(model.parameters()).device
    for start in range(0, len(prompts), batch_size):
        rows = encoding.encode_rows(tokenizer, template, list(prompts[start:start + batch_size]),
                                    list(answers[start:start + batch_size]), max_len)
        batch = encoding.collate(rows, tokenizer.pad_token_id)
        with torch.no_grad():
            logits = model(input_ids=batch["input_ids"].to(device),
                           attention_mask=batch["attention_mask"].to(device)).logits[:, :-1]
        labels = batch["labels"][:, 1:].to(device)
        mask = labels != encoding.IGNORE
        logp = torch.log_softmax(logits.float(), -1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        out.extend((logp * mask).sum(-1).cpu().tolist())
    return np.asarray(out, dtype=float)


def pair_margins(model, tokenizer, template: PromptTemplate, pairs: pd.DataFrame, *, max_len: int,
                 batch_size: int = 16) -> np.ndarray:
    """log p(chosen) - log p(rejected) per pair (``completion`` is the chosen answer, ``rejected`` the other)."""
    model.eval()
    prompts = list(pairs["prompt"])
    chosen = answer_logprobs(model, tokenizer, template, prompts, list(pairs["completion"]), max_len=max_len,
                             batch_size=batch_size)
    rejected = answer_logprobs(model, tokenizer, template, prompts, list(pairs["rejected"]), max_len=max_len,
                               batch_size=batch_size)
    return chosen - rejected


def candidate_margins(pairs: pd.DataFrame, *, base_model: str, revision: str | None,
                      adapters: dict[str, str | None], template: PromptTemplate, max_len: int,
                      batch_size: int = 16) -> dict[str, np.ndarray]:
    """The margins of each candidate: ``adapters`` maps a name to its adapter folder (None: the base model)."""
    from llmops.model import loading

    out = {}
    for name, adapter in adapters.items():
        model, tokenizer = loading.load_base(base_model, revision)
        if adapter is not None:
            model = loading.load_adapter(model, adapter, name=name)
        out[name] = pair_margins(model, tokenizer, template, pairs, max_len=max_len, batch_size=batch_size)
        del model
    return out


def scores(margins: dict[str, np.ndarray], reference: str) -> dict[str, dict]:
    """``{name: {"metrics": {...}, "per_example": {...}}}`` of :data:`METRICS`, reward accuracy against
    ``reference``'s margins (the model DPO was anchored to)."""
    ref = margins[reference]
    out = {}
    for name, m in margins.items():
        per = {"preference_accuracy": (m > 0).astype(float), "preference_margin": m,
               "reward_accuracy": (m > ref).astype(float)}
        out[name] = {"metrics": {k: float(v.mean()) if v.size else math.nan for k, v in per.items()}
                     | {"preference_pairs": int(m.size)},
                     "per_example": {k: v.tolist() for k, v in per.items()}}
    return out


def intervals(per_example: dict[str, dict], *, against: str, candidate: str = "challenger", samples: int = 1000,
              confidence: float = 0.95) -> dict[str, dict]:
    """Paired bootstrap intervals of ``candidate`` minus ``against`` for each metric of :data:`METRICS`."""
    a, b = per_example.get(candidate) or {}, per_example.get(against) or {}
    return {k: paired_bootstrap(a[k], b[k], samples=samples, confidence=confidence)
            for k in METRICS if k in a and k in b}


def mean_interval(values, *, samples: int = 1000, confidence: float = 0.95) -> dict:
    """The bootstrap interval of one candidate's mean (e.g. its held-out preference accuracy), as
    :func:`intervals` gives the gain's: ``{"mean", "low", "high", "n"}``."""
    values = np.asarray(values, dtype=float)
    return paired_bootstrap(values, np.zeros_like(values), samples=samples, confidence=confidence)


def evaluate_preferences(pairs: pd.DataFrame, *, base_model: str, revision: str | None, challenger: str,
                         champion: str | None, template: PromptTemplate, max_len: int, batch_size: int = 16,
                         samples: int = 1000, confidence: float = 0.95) -> dict:
    """Base, champion (when there is one) and challenger on the held-out ``pairs``: the :func:`scores` and the
    challenger's paired intervals against each (``{"candidates", "intervals": {"vs_champion"?, "vs_base"}}``)."""
    pairs = pairs[pairs["kind"] == "pair"].reset_index(drop=True) if "kind" in pairs else pairs
    adapters = {"base": None, "challenger": challenger} | ({"champion": champion} if champion else {})
    margins = candidate_margins(pairs, base_model=base_model, revision=revision, adapters=adapters,
                                template=template, max_len=max_len, batch_size=batch_size)
    out = {"candidates": scores(margins, "champion" if champion else "base"), "pairs": int(len(pairs))}
    per = {name: c["per_example"] for name, c in out["candidates"].items()}
    out["intervals"] = {f"vs_{ref}": intervals(per, against=ref, samples=samples, confidence=confidence)
                        for ref in ("champion", "base") if ref in per}
    for name, c in out["candidates"].items():
        m = c["metrics"]
        log.info("%-10s held-out preferences: accuracy %.3f  mean margin %+.3f  reward accuracy %.3f  (%d pairs)",
                 name, m["preference_accuracy"], m["preference_margin"], m["reward_accuracy"], len(pairs))
    return out


def gate_rules(gate, own, candidates: dict[str, dict]):
    """The gate of a dpo / kto version (``own`` is ``training.dpo`` or ``training.kto``): its ``gate_rules``
    when set, else the default ones:

    - ``preference_accuracy`` vs the champion (the base when there is none) with ``ci: true``: the lower bound of
      the paired interval of the held-out accuracy gain must be at least ``min_accuracy_gain`` (what was gained);
    - non-inferiority on the supervised metrics (what it cost): ``eval_loss`` at most ``max_eval_loss_increase``
      (a fraction of the reference's eval loss) above the reference's, ``token_f1`` at most ``max_token_f1_drop``
      below it. Point estimates: an eval split of a few dozen rows gives an eval-loss interval wider than any
      useful margin, so requiring its bound would reject every version; the report prints both intervals;
    - and every absolute rule (``min`` / ``max``, no ``vs``) and judge rule of ``gate``.

    Returns ``gate`` with those rules."""
    from llmops.config import GateRule

    if own.gate_rules is not None:
        return gate.model_copy(update={"rules": list(own.gate_rules)})
    ref = candidates.get("champion") or candidates.get("base") or {}
    ref_loss = ref.get("eval_loss")
    loss_margin = -own.max_eval_loss_increase * ref_loss if isinstance(ref_loss, int | float) else math.nan
    rules = [GateRule(metric="preference_accuracy", vs="champion", margin=own.min_accuracy_gain, ci=True,
                      higher_is_better=True),
             GateRule(metric="eval_loss", vs="champion", margin=loss_margin),
             GateRule(metric="token_f1", vs="champion", margin=-own.max_token_f1_drop)]
    kept = [r for r in gate.rules if r.vs is None or r.metric.startswith("judge.")]
    return gate.model_copy(update={"rules": rules + kept})
