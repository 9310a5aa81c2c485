"""The evaluation report of one run: a Markdown page with a metric table across the candidates, the gate's
decision, sample outputs, and PNG plots (training loss curve; each metric's change against the reference with
its paired bootstrap confidence interval)."""

from __future__ import annotations

import math
from pathlib import Path

from llmops.atomic import write_text
from llmops.evaluate.bootstrap import paired_bootstrap
from llmops.evaluate.gate import decision_text, higher_is_better

TABLE_METRICS = ("eval_loss", "perplexity", "exact_match", "token_f1", "rouge_l", "answer_words", "latency_ms",
                 "unsafe_rate", "recitation_rate")
ORDER = ("base", "champion", "challenger")


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def rule_directions(decision: dict | None) -> dict[str, bool]:
    """Each gated metric's direction as its rule has it (what the gate used), from the decision's rules."""
    return {r["metric"]: r["higher_is_better"] for r in (decision or {}).get("rules") or []
            if r.get("higher_is_better") is not None}


def improvements(results: dict, reference: str, *, samples: int = 1000, confidence: float = 0.95,
                 directions: dict[str, bool] | None = None) -> dict:
    """Per metric with per-example scores: challenger's improvement over ``reference`` with its paired CI, in the
    metric's better direction: the gate rule's (``directions``) where a rule names the metric, else the one its
    name implies."""
    directions = directions or {}
    cands = results["candidates"]
    a, b = cands["challenger"]["per_example"], cands[reference]["per_example"]
    out = {}
    for metric, values in a.items():
        if metric.endswith("latency_ms") or not values or len(values) != len(b.get(metric) or []):
            continue
        hib = directions.get(metric, higher_is_better(metric))
        x, y = (values, b[metric]) if hib else (b[metric], values)
        out[metric] = paired_bootstrap(x, y, samples=samples, confidence=confidence)
    return out


def _plots(out_dir: Path, loss_history: list[tuple[int, float]], diffs: dict, reference: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    if loss_history:
        fig, ax = plt.subplots(figsize=(6, 3.2))
        steps, losses = zip(*sorted(loss_history), strict=True)
        ax.plot(steps, losses, marker=".", linewidth=1)
        ax.set(xlabel="step", ylabel="train loss", title="Training loss")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out_dir / "loss_curve.png", dpi=110)
        plt.close(fig)
        files.append("loss_curve.png")
    shown = {k: v for k, v in diffs.items() if not math.isnan(v["mean"]) and "answer_words" not in k}  # no direction
    if shown:
        fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(shown) + 1.4))
        names = list(shown)
        means = [shown[n]["mean"] for n in names]
        err = [[m - shown[n]["low"] for n, m in zip(names, means, strict=True)],
               [shown[n]["high"] - m for n, m in zip(names, means, strict=True)]]
        ax.errorbar(means, range(len(names)), xerr=err, fmt="o", capsize=4)
        ax.axvline(0, color="grey", linewidth=1)
        ax.set_yticks(range(len(names)), names)
        ax.set(xlabel=f"challenger improvement over {reference} (better ->)", title="Metric comparison with CIs")
        ax.grid(alpha=0.3, axis="x")
        fig.tight_layout()
        fig.savefig(out_dir / "metric_comparison.png", dpi=110)
        plt.close(fig)
        files.append("metric_comparison.png")
    return files


def regression_table(cands: dict, names: list[str]) -> list[str]:
    """The lm-eval regression suite: each task metric per candidate as value ± standard error."""
    keys = [k for k in cands["challenger"]["metrics"] if k.startswith("regression.")
            and not k.endswith(("_stderr", ".docs")) and k != "regression_seconds"]
    if not keys:
        return []
    lines = ["", "## Regression suite (lm-evaluation-harness)", "",
             "| task metric | docs | " + " | ".join(names) + " |", "|---" * (len(names) + 2) + "|"]
    for k in keys:
        task = k.rsplit(".", 1)[0]
        cells = [f"{_fmt(cands[n]['metrics'].get(k))} ± {_fmt(cands[n]['metrics'].get(k + '_stderr'))}"
                 for n in names]
        lines.append(f"| {k.removeprefix('regression.')} | {_fmt(cands['challenger']['metrics'].get(task + '.docs'))}"
                     f" | " + " | ".join(cells) + " |")
    return lines


def write_report(out_dir: str | Path, results: dict, decision: dict | None, *, title: str,
                 loss_history: list[tuple[int, float]] = (), samples: int = 1000, confidence: float = 0.95,
                 max_examples: int = 5) -> Path:
    """Write ``report.md`` and its PNGs into ``out_dir``; return the report's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cands = results["candidates"]
    names = [n for n in ORDER if n in cands]
    reference = "champion" if "champion" in cands else "base"
    diffs = improvements(results, reference, samples=samples, confidence=confidence,
                         directions=rule_directions(decision))
    pngs = _plots(out_dir, list(loss_history), diffs, reference)
    champ = f"champion = version {results['champion_version']}; " if results.get("champion_version") else ""
    lines = [f"# Evaluation report: {title}", "",
             f"Rows: {results['rows']}. Candidates: {', '.join(names)} ({champ}all scored on the same examples "
             "in this run). Intervals: paired bootstrap over per-example scores (the mean of per-example losses "
             "for eval_loss).", "", "| metric | " + " | ".join(names) + f" | improvement over {reference} "
             f"(> 0 is better) [{100 * confidence:.0f}% CI] |", "|---" * (len(names) + 2) + "|"]
    metrics = [m for m in cands["challenger"]["metrics"] if m.removeprefix("golden_") in TABLE_METRICS]
    for m in metrics:
        d = diffs.get(m)
        ci = f"{_fmt(d['mean'])} [{_fmt(d['low'])}, {_fmt(d['high'])}]" if d else "—"
        lines.append(f"| {m} | " + " | ".join(_fmt(cands[n]["metrics"].get(m)) for n in names) + f" | {ci} |")
    lines += regression_table(cands, names)
    if decision is not None:
        lines += ["", "## Gate", "", decision_text(decision)]
    lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in pngs]
    lines += ["", "## Sample outputs", "", "| prompt | reference | " + " | ".join(names) + " |",
              "|---" * (len(names) + 2) + "|"]
    for i, s in enumerate(cands["challenger"]["samples"][:max_examples]):
        cells = [s["prompt"], s["reference"]] + [cands[n]["samples"][i]["prediction"] for n in names]
        lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ")[:160] for c in cells) + " |")
    return write_text(out_dir / "report.md", "\n".join(lines) + "\n")
