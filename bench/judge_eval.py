"""Benchmark: the evaluate step on SmolLM2-135M-Instruct with and without the lm-eval regression suite, and the
pairwise judge's calls per second one at a time vs batched, the judge being the base model served by this
project's own API (``llmops.serving.app``: the OpenAI chat route over the batch scheduler) on loopback.

    PYTHONPATH=plugins .venv/bin/python bench/judge_eval.py [--rows 96] [--pairs 16] [--concurrency 8]
        [--repeats 1] [--limit N] [--write docs/benchmarks.md]

The challenger is a freshly initialised LoRA adapter (B = 0, so its answers equal the base model's): the figure
is the cost of the evaluation, not of a trained model. Prints one JSON line per measurement; figures are medians
of ``--repeats`` runs (the first judge round is a warm-up and is not counted).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))
sys.path.insert(0, str(ROOT / "bench"))


def _zero_adapter(base, out: Path) -> Path:
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear"))
    model.save_pretrained(out)
    model.unload()
    return out


def _judge_rates(endpoint, text: str, version: str, results: dict, args) -> dict:
    """Judge calls per second one at a time and ``args.concurrency`` in flight (after a warm-up round)."""
    from llmops.evaluate.judge import Judge, JudgeUnavailable

    ch = results["candidates"]["challenger"]["samples"]
    bs = results["candidates"]["base"]["samples"]
    pairs = [(a["prompt"], a["prediction"], b["prediction"]) for a, b in zip(ch, bs, strict=True)]
    pairs = (pairs * (args.pairs // max(1, len(pairs)) + 1))[:args.pairs]
    judged = {}
    for label, conc in (("warm-up", args.concurrency), ("sequential", 1), ("batched", args.concurrency)):
        judge = Judge(endpoint, text, version=version, timeout_s=300, concurrency=conc, max_failed=10**6,
                      max_tokens=48)
        rates = []
        for _ in range(1 if label == "warm-up" else args.repeats):
            try:
                r = judge.compare(pairs)
            except JudgeUnavailable as e:
                print(json.dumps({"measure": label, "error": str(e)}))
                raise
            rates.append(r["calls"] / r["seconds"])
        errors = [o["error"] for v in r["verdicts"] for o in (v["x_as_a"], v["x_as_b"]) if o.get("error")]
        judged[label] = {"calls_per_s": statistics.median(rates), "calls": r["calls"], "failed": r["failed"],
                         "first_error": errors[0][:160] if errors else None}
        print(json.dumps({"measure": f"judge {label}", "concurrency": conc, **judged[label]}), flush=True)
    return judged


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=96)
    p.add_argument("--pairs", type=int, default=16)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--limit", type=int, help="documents per regression task (default: all 40)")
    p.add_argument("--port", type=int, default=8771)
    p.add_argument("--write")
    args = p.parse_args(argv)

    import pandas as pd
    from eval_generation import cpu_name

    from llmops.config import load_by_name
    from llmops.demo.base_server import serve_base
    from llmops.evaluate.evaluation import evaluate_candidates
    from llmops.evaluate.judge import JudgeEndpoint, load_judge_prompt
    from llmops.model import loading
    from llmops.prompts import load_template

    cfg = load_by_name("python_docs_qa")
    rows = pd.read_json(next((ROOT / "include/data/python_docs_qa").glob("*.jsonl")), lines=True)
    rows = rows.rename(columns={"question": "prompt", "answer": "response"}).tail(args.rows).reset_index(drop=True)
    template = load_template(cfg.prompt_template)
    base, tok = loading.load_base(cfg.base_model)
    adapter = _zero_adapter(base, Path(tempfile.mkdtemp(prefix="bench-judge-")) / "adapter")
    out = {}
    ev_plain = cfg.evaluation.model_copy(update={"regression": cfg.evaluation.regression.model_copy(
        update={"tasks": []})})
    ev_reg = cfg.evaluation.model_copy(update={"regression": cfg.evaluation.regression.model_copy(
        update={"tasks": ["license_cloze", "license_next_words"], "limit": args.limit})})
    results = None
    for label, ev in (("evaluate", ev_plain), ("evaluate+regression", ev_reg)):
        times = []
        for _ in range(args.repeats):
            t = time.monotonic()
            results = evaluate_candidates(rows, base_model=cfg.base_model, revision=None, adapter_dir=str(adapter),
                                          template=template, cfg=ev, max_len=cfg.training.max_seq_len)
            times.append(time.monotonic() - t)
        out[label] = statistics.median(times)
        print(json.dumps({"measure": label, "seconds": round(out[label], 2), "rows": len(rows)}), flush=True)

    text, version = load_judge_prompt(cfg.evaluation.judge.prompt)
    with serve_base(cfg, model=base, tokenizer=tok, port=args.port, max_batch_size=32) as server:
        judged = _judge_rates(JudgeEndpoint(server.base_url, server.model, "none"), text, version, results, args)

    if args.write:
        b, s = judged["batched"], judged["sequential"]
        section = f"""
## Evaluate step with the regression suite, and the pairwise judge (SmolLM2-135M-Instruct)

`PYTHONPATH=plugins .venv/bin/python bench/judge_eval.py --rows {args.rows} --pairs {args.pairs} --concurrency \
{args.concurrency} --repeats {args.repeats}{f' --limit {args.limit}' if args.limit else ''} --write docs/benchmarks.md`, {datetime.now(UTC):%Y-%m-%d}, {cpu_name()}, \
2 CPU cores, 24 GiB, no GPU. Median of {args.repeats} run(s) each, base + challenger (no champion), \
{len(rows)} eval rows, {cfg.evaluation.generation_samples} generated answers per candidate.

| measurement | figure | ratio |
|---|---|---|
| evaluate step without the regression suite | {out['evaluate']:.1f} s | 1.00 (baseline) |
| evaluate step with `license_cloze` + `license_next_words` ({args.limit or 40} docs each, all candidates) | \
{out['evaluate+regression']:.1f} s | {out['evaluate+regression'] / out['evaluate']:.2f} |
| judge calls one at a time (the base model served by the project's API, loopback) | \
{s['calls_per_s']:.2f} calls/s | 1.00 (baseline) |
| judge calls {args.concurrency} in flight (the API's batch scheduler decodes them together) | \
{b['calls_per_s']:.2f} calls/s | {b['calls_per_s'] / s['calls_per_s']:.2f} |

{b['calls']} judge calls per round ({args.pairs} pairs, both orders); unparseable verdicts: {s['failed']} \
(sequential) and {b['failed']} (batched) of {b['calls']}: a 135M model is a weak judge. The judge step costs \
about {b['calls'] / b['calls_per_s']:.0f} s batched for these pairs, on top of the evaluate step.
"""
        with open(args.write, "a", encoding="utf-8") as f:
            f.write(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
