"""What ``make demo`` prints at the end (``python -m llmops.cli summary``): the newest run's snapshot, training,
evaluation table, before/after answers, gate, registration and aliases."""

from __future__ import annotations

import json

from llmops import paths
from llmops.demo.base_models import TINY_MODELS


def _print_before_after(use_case: str, run_id: str, n: int = 3, metric: str = "token_f1") -> None:
    """The first ``n`` generated answers of the base model and of the tuned adapter, next to the reference, each with
    its own score (``metric`` per example, as the evaluation recorded it in the run's ``eval/results.json``)."""
    results = paths.run_dir(use_case, run_id) / "eval" / "results.json"
    if not run_id or not results.exists():
        return
    cands = json.loads(results.read_text())["candidates"]

    def answers(name: str) -> list[tuple[dict, float | None]]:
        c = cands.get(name) or {}
        scores = list((c.get("per_example") or {}).get(metric) or [])  # eval rows first, in the samples' order
        samples = [x for x in c.get("samples", []) if x.get("set", "eval") == "eval"]
        return [(x, scores[i] if i < len(scores) else None) for i, x in enumerate(samples)]

    def short(text: str) -> str:
        text = " ".join(str(text).split())
        return text if len(text) <= 150 else text[:147] + "..."

    def score(value: float | None) -> str:
        return f"{value:.2f}" if isinstance(value, int | float) else "  - "

    pairs = list(zip(answers("base"), answers("challenger"), strict=False))[:n]
    if not pairs:
        return
    label = metric.replace("_", " ").replace("f1", "F1")
    print(f"examples          the first {len(pairs)} eval rows; before each answer its {label} "
          "against the reference (0 to 1)")
    for (b, b_score), (t, t_score) in pairs:
        print(f"  question        {short(b['prompt'])}")
        print(f"    reference     {short(b['reference'])}")
        print(f"    base    {score(b_score):>4}  {short(b['prediction'])}")
        print(f"    tuned   {score(t_score):>4}  {short(t['prediction'])}")


def wiring_note(base_model: str) -> list[str]:
    """What a run on the tiny, randomly initialised base model shows and what it does not (empty for other models)."""
    if not base_model.startswith(TINY_MODELS):
        return []
    return [
        "what this shows   a wiring check, not a model: the base model is tiny, made here in seconds from random "
        "weights",
        "                  and a short pass over the sample's own text, so its answers, base or tuned, are not meant "
        "to",
        "                  be right, and the gate only says the tuned adapter met its rules on this run's metrics. It",
        "                  proves every step ran and handed its output on: data -> validated snapshot -> LoRA training",
        "                  -> evaluation -> gate -> registry (`make serve` then serves the champion). It says nothing",
        "                  about answer quality. Answers from a pretrained model (SmolLM2-135M-Instruct, a few minutes",
        "                  on 2 CPU cores): make demo-real",
    ]


def print_summary(use_case: str) -> None:
    from llmops import registry
    from llmops.config import load_by_name
    from llmops.data.snapshots.handle import Snapshots
    from llmops.runs import latest_summary

    cfg = load_by_name(use_case)
    s = latest_summary(use_case) or {}
    snaps = Snapshots.of(cfg).manifests()
    print("\n" + "=" * 72)
    print(f"use case {use_case}: what the pipeline produced")
    print("=" * 72)
    if snaps:
        m = snaps[-1]
        print(f"dataset snapshot  {m['snapshot_id']}  rows {m['rows']}  at {m['uri']}")
        print(f"  validation      {m['validation']['successful']}/{m['validation']['evaluated']} expectations passed"
              f" ({m['validation']['suite']})")
    ft = s.get("finetune")
    if ft:
        print(f"fine-tuning       snapshot {ft['snapshot_id']} ({ft['snapshot_reason']})")
        print(f"  training loss   mean {ft['train_loss']:.4f}, last logged {ft['final_logged_loss']:.4f}"
              f" over {ft['steps']} steps, {ft['train_rows']} rows, {ft['seconds']:.1f}s on {ft['device']}")
        print(f"  adapter         {ft['adapter_dir']}")
    ev = s.get("evaluate")
    if ev:
        cols = ("eval_loss", "perplexity", "exact_match", "token_f1", "rouge_l", "unsafe_rate", "recitation_rate")
        rows = ", ".join(f"{k} {v}" for k, v in (ev.get("rows") or {}).items())
        print(f"evaluation        on the same rows ({rows}) for every candidate")
        print(" " * 18 + " ".join(f"{k.replace('_rate', '')[:11]:>11}" for k in cols))
        for name, m in (ev.get("metrics") or {}).items():
            label = f"{name} v{ev['champion_version']}" if name == "champion" else name
            print(f"  {label:<16}" + " ".join(f"{m.get(k, float('nan')):>11.4f}" for k in cols))
        if wiring_note(cfg.base_model):
            print("note              tiny random base model: the answers below are not meant to be right (see the end)")
        _print_before_after(use_case, s.get("dag_run_id") or "")
    gate = s.get("gate")
    if gate:
        print(f"gate              {'PASSED' if gate['passed'] else 'REJECTED'}")
        for reason in gate["reasons"]:
            print(f"  - {reason}")
        if gate.get("report"):
            print(f"  report          {gate['report']}")
    reg = s.get("register")
    if reg and reg.get("registered"):
        print(f"registered model  {reg['name']} version {reg['version']} aliases {reg['aliases']}")
    elif reg:
        print(f"registered model  nothing registered: {'; '.join(reg.get('reasons') or [])[:200]}")
    champion, challenger = (registry.alias_version(cfg.model_name, a) for a in ("champion", "challenger"))
    print(f"registry          {cfg.model_name}: champion = version {champion}, challenger = version {challenger}")
    print(f"MLflow store      {paths.tracking_uri()}")
    for line in wiring_note(cfg.base_model):
        print(line)
