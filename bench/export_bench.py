"""Export of a registered version of SmolLM2-135M-Instruct (the python_docs_qa base, from its Q4_1 GGUF file):
time and size of the merged safetensors, GGUF f16 and q8_0, and how often each GGUF's greedy answers agree with the
merged model's on eval prompts (each GGUF loaded back through the project's GGUF base-model path).

The adapter is the use case's LoRA shape (r 8, all linear layers) with random weights (B ~ N(0, 0.02)); an export's
cost and fidelity do not depend on how the adapter was trained. One run (an export takes minutes); the store, the
registry and the converter are the real ones. Prints one JSON line and, with --write, appends to docs/benchmarks.md.

    PYTHONPATH=plugins .venv/bin/python bench/export_bench.py --prompts 24 --max-new-tokens 24 --write
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def register_random_adapter(cfg, home: Path) -> Path:
    import torch
    from peft import get_peft_model

    from llmops import tracking
    from llmops.model import loading
    from llmops.model.identity import identify
    from llmops.payloads import Decision, Evaluation, Trained
    from llmops.prompts import load_template
    from llmops.steps.register import register_trained
    from llmops.train.hardware import lora_config

    template = load_template(cfg.prompt_template)
    base, _ = loading.load_base(cfg.base_model)
    torch.manual_seed(0)
    model = get_peft_model(base, lora_config(cfg.training))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)
    meta = {"use_case": cfg.name, "dag_run_id": "bench__export", "snapshot_id": "0" * 16, "base_model": cfg.base_model,
            "base_model_revision": loading.base_revision(cfg.base_model, None), "prompt_template": cfg.prompt_template,
            "prompt_template_hash": template.hash, "prompt_template_text": template.text, "config_hash": "bench",
            "code_version": "bench", "base_identity": identify(cfg.base_model),
            "training": cfg.training.model_dump(mode="json")}
    adapter = loading.save_adapter(model, home / "trained" / "adapter", meta)
    run = tracking.run_for_dag_run(cfg.name, "bench__export")
    register_trained(cfg, Trained.from_xcom({"snapshot_id": "0" * 16, "mlflow_run_id": run, "adapter_dir": str(adapter),
                                             "base_model": cfg.base_model}),
                     Evaluation.from_xcom({"metrics": {"challenger": {"eval_loss": 1.0}}, "results": ""}),
                     Decision.from_xcom({"passed": True, "rules": [], "reference": "base"}))
    return adapter


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=24)
    ap.add_argument("--max-new-tokens", type=int, default=24)
    ap.add_argument("--home", default=None, help="LLMOPS_HOME to use (default: a new temporary folder)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: no OpenMP spinning on a busy machine)")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    home = Path(args.home or tempfile.mkdtemp(prefix="llmops-export-bench-"))
    os.environ["LLMOPS_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    import pandas as pd
    import torch

    torch.set_num_threads(args.threads)
    from llmops.config import load_by_name
    from llmops.content_hash import size_bytes
    from llmops.export import publish, roundtrip
    from llmops.model import loading
    from llmops.prompts import load_template

    cfg = load_by_name("python_docs_qa")
    adapter = register_random_adapter(cfg, home)
    result = publish.export_version(cfg, "1", force=True)
    work = publish.export_dir(cfg.model_name, "1")
    rows = pd.read_json(ROOT / "include" / "data" / "python_docs_qa" / "questions.jsonl", lines=True)
    prompts = rows["question"].sample(n=args.prompts, random_state=0).tolist()
    template = load_template(cfg.prompt_template)
    merged, merged_tok = loading.load_base(str(work / "merged"))
    agreement = {}
    for out_type in ("f16", "q8_0"):
        back, back_tok = loading.load_base(str(next((work / f"gguf-{out_type}").glob("*.gguf"))))
        agreement[out_type] = roundtrip.summary(roundtrip.compare(
            merged, merged_tok, back, back_tok, template, prompts, max_new_tokens=args.max_new_tokens))
        del back
    line = {"bench": "export", "model": "SmolLM2-135M-Instruct", "dtype": str(merged.dtype),
            "adapter_bytes": size_bytes(adapter), "seconds": result["seconds"],
            "bytes": {n: int(e["bytes"]) for n, e in result["exports"].items()}, "agreement": agreement,
            "prompts": args.prompts, "max_new_tokens": args.max_new_tokens, "torch_threads": torch.get_num_threads()}
    print(json.dumps(line))
    if args.write:
        write(line)
    return 0


def write(m: dict) -> None:
    mb = lambda b: f"{b / 1e6:,.1f} MB"  # noqa: E731
    s = m["seconds"]
    rows = [("adapter (registered, safetensors)", mb(m["adapter_bytes"]), "-"),
            ("merged safetensors", mb(m["bytes"]["merged"]), f"{s['merge']:.1f} s (merge and save)"),
            ("GGUF f16", mb(m["bytes"]["gguf-f16"]), f"{s['gguf-f16']:.1f} s"),
            ("GGUF q8_0", mb(m["bytes"]["gguf-q8_0"]), f"{s['gguf-q8_0']:.1f} s")]
    a = m["agreement"]
    text = [
        "", "## Export: merged safetensors and GGUF (SmolLM2-135M-Instruct)", "",
        f"- Command: `PYTHONPATH=plugins .venv/bin/python bench/export_bench.py --prompts {m['prompts']} "
        f"--max-new-tokens {m['max_new_tokens']} --write`",
        f"- Date: {datetime.now(UTC):%Y-%m-%d}; machine: {cpu_name()}, {os.cpu_count()} cores visible, CPU only, "
        f"torch threads: {m['torch_threads']} (shared machine, other jobs running); one run",
        "- Model: SmolLM2-135M-Instruct from its Q4_1 GGUF "
        f"(de-quantized: {m['dtype'].removeprefix('torch.')}), a rank-8 "
        "LoRA on all linear layers with random weights, registered and exported by `llmops.export` "
        f"(build {s['build']:.1f} s: adapter download, base load, merge, both conversions; upload and tags "
        f"{s['register']:.1f} s)", "",
        "| export | size | time |", "| --- | --- | --- |", *[f"| {r[0]} | {r[1]} | {r[2]} |" for r in rows], "",
        f"Greedy answers of each GGUF (loaded back through the GGUF base-model path) vs the merged model, on "
        f"{m['prompts']} python_docs_qa questions, at most {m['max_new_tokens']} new tokens:", "",
        "| GGUF | identical answers | identical or first differing at a near tie (gap <= 0.05) | tokens before the first difference | largest gap at a difference |",
        "| --- | --- | --- | --- | --- |",
        *[f"| {t} | {a[t]['identical']:.0%} | {a[t]['identical_or_near_tie']:.0%} | {a[t]['token_agreement']:.1%} | "
          f"{a[t]['max_gap']:.3f} |" for t in ("f16", "q8_0")], "",
    ]
    with open(ROOT / "docs" / "benchmarks.md", "a", encoding="utf-8") as f:
        f.write("\n".join(text))


if __name__ == "__main__":
    sys.exit(main())
