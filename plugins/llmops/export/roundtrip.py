"""Does an exported GGUF answer like the merged model it was made from? Greedy answers compared token by token.

Both models get the prompts in the trained format (``llmops.model.encoding.prompt_ids``, each with its own
tokenizer: the GGUF's tokenizer is rebuilt from the file, so equal prompt ids are checked too) and decode greedily.
Where the answers first differ, the merged (reference) model's logits at that step say how close the call was:
``gap`` = logit of its own choice minus logit of the GGUF's choice. A gap of at most ``near_tie`` (in logits) is a
near tie: a rounding of the weights (f16) can flip it, and the answers after it are not compared.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

NEAR_TIE = 0.05


@dataclass
class Comparison:
    prompt: str
    same_prompt_ids: bool
    reference_ids: list[int]
    candidate_ids: list[int]
    diverged_at: int | None  # index of the first differing answer token; None when the answers are equal
    gap: float | None  # reference logit of its token minus that of the candidate's token, at diverged_at

    @property
    def identical(self) -> bool:
        return self.same_prompt_ids and self.diverged_at is None

    def near_tie(self, tolerance: float = NEAR_TIE) -> bool:
        return self.same_prompt_ids and self.gap is not None and self.gap <= tolerance


def _greedy(model, prompt: list[int], max_new_tokens: int, eos_id) -> list[int]:
    import torch

    ids = torch.tensor([prompt])
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                             do_sample=False, eos_token_id=eos_id, pad_token_id=eos_id)
    return out[0, len(prompt):].tolist()


def _gap(model, prefix: list[int], ref_token: int, cand_token: int) -> float:
    import torch

    with torch.no_grad():
        logits = model(torch.tensor([prefix])).logits[0, -1].float()
    return float(logits[ref_token] - logits[cand_token])


def compare(reference, ref_tokenizer, candidate, cand_tokenizer, template, prompts, *, max_new_tokens: int = 24,
            max_len: int = 256) -> list[Comparison]:
    from llmops.model.encoding import prompt_ids

    results = []
    for prompt in prompts:
        ref_prompt = prompt_ids(ref_tokenizer, template, prompt, max_len)
        cand_prompt = prompt_ids(cand_tokenizer, template, prompt, max_len)
        ref = _greedy(reference, ref_prompt, max_new_tokens, ref_tokenizer.eos_token_id)
        cand = _greedy(candidate, cand_prompt, max_new_tokens, cand_tokenizer.eos_token_id)
        at = next((i for i, (a, b) in enumerate(zip(ref, cand, strict=False)) if a != b), None)
        if at is None and len(ref) != len(cand):
            at = min(len(ref), len(cand))
        gap = None
        if at is not None and at < len(ref) and at < len(cand):
            gap = _gap(reference, ref_prompt + ref[:at], ref[at], cand[at])
        results.append(Comparison(prompt, ref_prompt == cand_prompt, ref, cand, at, gap))
    return results


def summary(results: list[Comparison], tolerance: float = NEAR_TIE) -> dict:
    """Shares of prompts with identical answers, and identical or diverging only at a near tie; the share of
    answer tokens before the first difference."""
    n = len(results) or 1
    matched = sum(r.diverged_at if r.diverged_at is not None else len(r.reference_ids) for r in results)
    total = sum(len(r.reference_ids) for r in results) or 1
    return {"prompts": len(results), "identical": sum(r.identical for r in results) / n,
            "identical_or_near_tie": sum(r.identical or r.near_tie(tolerance) for r in results) / n,
            "token_agreement": matched / total, "near_tie": tolerance,
            "max_gap": max((r.gap for r in results if r.gap is not None), default=0.0)}


def as_rows(results: list[Comparison]) -> list[dict]:
    return [asdict(r) for r in results]
