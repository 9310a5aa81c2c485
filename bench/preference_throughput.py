"""Preference tuning cost: a DPO step (TRL DPOTrainer through llmops.train.preference) against an SFT step (llmops
finetune) on the same rows, batch size, sequence length, LoRA and precision.

The DPO pairs are the SFT rows as ``chosen`` with another row's answer as ``rejected``, so a DPO batch of B pairs
holds the SFT batch's B sequences plus B more, and DPO also runs the frozen reference adapter over both (no
gradient). Each variant runs in its own process (clean peak memory), alternating, ``--repeats`` times; timed
steps follow ``--warmup``. Prints one JSON line per run and a summary (medians, ratio, peak RSS / GPU memory);
``--write`` appends a section to docs/benchmarks.md.

  python bench/preference_throughput.py --model tiny --write
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))
sys.path.insert(0, str(ROOT / "bench"))

from train_throughput import (  # noqa: E402  (the shared model/rows makers of the SFT bench)
    CONFIGS,
    TEMPLATE_TEXT,
    device_name,
    make_model,
    make_rows,
    timer_callback,
)


def _peak_mem() -> float:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**30
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB


def run_variant(a) -> dict:
    import pandas as pd
    import torch

    from llmops.config import TrainingConfig
    from llmops.model import encoding, loading
    from llmops.prompts import PromptTemplate

    rows = pd.read_parquet(a.rows_file)
    template = PromptTemplate(path="bench", text=TEMPLATE_TEXT)
    training = TrainingConfig(batch_size=a.batch_size, max_seq_len=a.max_seq_len, max_steps=a.warmup + a.steps,
                              learning_rate=1e-4, checkpoint_every_steps=0, logging_steps=10_000, batching="padded",
                              lora={"r": 16, "alpha": 32}, queue="default", pool="default_pool")
    timer = timer_callback(a.warmup, torch.cuda.is_available())
    tmp = Path(a.work) / f"{a.variant}-{time.time_ns()}"
    tok = loading.load_tokenizer(a.model_dir)
    rejected = rows["response"].shift(1, fill_value=rows["response"].iloc[-1])
    lengths = lambda responses: [len(e["input_ids"]) for e in encoding.encode_rows(  # noqa: E731
        tok, template, rows["prompt"].tolist(), list(responses), a.max_seq_len)]
    if a.variant == "sft":
        from llmops.train.lora import finetune

        finetune(rows, base_model=a.model_dir, revision=None, template=template, training=training, out_dir=tmp,
                 metadata={}, callbacks=[timer])
        seq_tokens = sum(lengths(rows["response"])) / len(rows)
    else:
        from llmops.train.preference import preference_tune

        pairs = pd.DataFrame({"key": [str(i) for i in range(len(rows))], "kind": "pair", "prompt": rows["prompt"],
                              "completion": rows["response"], "rejected": rejected, "label": True})
        preference_tune(pairs, method="dpo", base_model=a.model_dir, revision=None, template=template,
                        training=training, out_dir=tmp, metadata={}, callbacks=[timer])
        seq_tokens = (sum(lengths(rows["response"])) + sum(lengths(rejected))) / len(rows)
    r = timer.result
    steps_per_s = r["steps"] / r["seconds"]
    return {"variant": a.variant, "steps_per_s": steps_per_s, "steps": r["steps"], "seconds": r["seconds"],
            "sequence_tokens_per_step": seq_tokens * a.batch_size,
            "sequence_tokens_per_s": steps_per_s * seq_tokens * a.batch_size, "peak_mem_gib": _peak_mem()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="tiny", help=f"one of {', '.join(sorted(CONFIGS))} (random weights)")
    p.add_argument("--rows", type=int, default=64)
    p.add_argument("--max-seq-len", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--work", default=str(ROOT / ".llmops" / "bench"))
    p.add_argument("--write", action="store_true")
    p.add_argument("--variant", choices=["sft", "dpo"], help=argparse.SUPPRESS)
    p.add_argument("--model-dir", help=argparse.SUPPRESS)
    p.add_argument("--rows-file", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.variant:
        print("RESULT " + json.dumps(run_variant(a)), flush=True)
        return 0
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    model_dir = make_model(a.model, work / "models" / a.model)
    rows_file = work / f"pref-rows-{a.model}-{a.rows}-{a.max_seq_len}.parquet"
    make_rows(model_dir, a.rows, a.max_seq_len).to_parquet(rows_file)
    results: dict[str, list[dict]] = {"sft": [], "dpo": []}
    for i in range(a.repeats):
        for variant in (("sft", "dpo") if i % 2 == 0 else ("dpo", "sft")):
            cmd = [sys.executable, __file__, *sys.argv[1:], "--variant", variant, "--model-dir", str(model_dir),
                   "--rows-file", str(rows_file)]
            out = subprocess.run(cmd, capture_output=True, text=True)
            line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if out.returncode or line is None:
                sys.exit(f"{variant} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
            r = json.loads(line[len("RESULT "):])
            results[variant].append(r)
            print(json.dumps({"run": i, **r}), flush=True)
    med = {v: {k: statistics.median(r[k] for r in rs) for k in ("steps_per_s", "sequence_tokens_per_s")}
           for v, rs in results.items()}
    s = {"model": a.model, "device": device_name(), "rows": a.rows, "max_seq_len": a.max_seq_len,
         "batch_size": a.batch_size, "steps": a.steps, "repeats": a.repeats, **{f"{v}_{k}": x for v, m in med.items()
                                                                                for k, x in m.items()},
         "step_ratio": med["dpo"]["steps_per_s"] / med["sft"]["steps_per_s"],
         "sft_peak_mem_gib": max(r["peak_mem_gib"] for r in results["sft"]),
         "dpo_peak_mem_gib": max(r["peak_mem_gib"] for r in results["dpo"])}
    print(json.dumps({"summary": s}), flush=True)
    if a.write:
        write_section(s, " ".join(["python", "bench/preference_throughput.py", *sys.argv[1:]]))
    return 0


def write_section(s: dict, command: str) -> None:
    text = (f"\n### Preference tuning (DPO) vs SFT step cost: {s['model']} on {s['device']}\n\n"
            f"{datetime.now(UTC):%Y-%m-%d}, `{command}`: {s['rows']} rows, lengths spread up to {s['max_seq_len']} "
            f"tokens, batch {s['batch_size']} (SFT: rows; DPO: pairs = those rows as chosen + another row's answer "
            f"as rejected), LoRA r=16, padded batches, medians of {s['repeats']} runs x {s['steps']} timed steps "
            "after warm-up, alternating variants, each in its own process. DPO: TRL DPOTrainer with the frozen "
            "reference adapter (an extra no-grad forward over chosen and rejected).\n\n"
            "| variant | steps/s | sequence tokens/s | peak memory (GiB, RSS on CPU) |\n| --- | --- | --- | --- |\n"
            f"| SFT (llmops finetune, baseline) | {s['sft_steps_per_s']:.3f} | {s['sft_sequence_tokens_per_s']:,.0f} "
            f"| {s['sft_peak_mem_gib']:.2f} |\n"
            f"| DPO (llmops preference_tune) | {s['dpo_steps_per_s']:.3f} | {s['dpo_sequence_tokens_per_s']:,.0f} "
            f"| {s['dpo_peak_mem_gib']:.2f} |\n\n**Step-rate ratio (DPO / SFT): {s['step_ratio']:.2f}x**\n")
    with open(ROOT / "docs" / "benchmarks.md", "a") as f:
        f.write(text)


if __name__ == "__main__":
    sys.exit(main())
