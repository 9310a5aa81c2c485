"""A sweep's trials compared: the primary metric, the best finished trial, Holm-Bonferroni over the trials
(:mod:`llmops.evaluate.multiple_comparisons`), the gate's decision on the winner, and the comparison table and
plots. Plain functions over the finished trials; the sweep's gate step (:mod:`llmops.steps.sweep_gate`) reads the
trials' files and writes what is decided here."""

from __future__ import annotations

import math
from pathlib import Path

from llmops.config import UseCaseConfig
from llmops.errors import AllTrialsFailed


def primary_metric(cfg: UseCaseConfig) -> tuple[str, bool, float]:
    """(metric, higher is better, margin): ``training.sweep.metric``, else the first relative gate rule's, else
    ``eval_loss`` (margin 0)."""
    from llmops.evaluate.gate import higher_is_better, rule_higher_is_better

    sweep = cfg.training.sweep
    wanted = sweep.metric if sweep else None
    for rule in cfg.gate.rules:
        if rule.vs is not None and (wanted is None or rule.metric == wanted):
            return rule.metric, rule_higher_is_better(rule), rule.margin
    metric = wanted or "eval_loss"
    return metric, higher_is_better(metric), 0.0


def choose(done: dict, metric: str, higher: bool, margin: float, *, confidence: float,
           samples: int) -> tuple[str, dict]:
    """The best finished trial on the primary metric (its mean; ties: the first in sweep order), and Holm's
    outcome for every finished trial against the reference (champion, else base) on that metric."""
    from llmops.evaluate.multiple_comparisons import bootstrap_p_value, holm

    def value(name):
        v = done[name]["evaluation"].metrics["challenger"].get(metric, math.nan)
        return -math.inf if math.isnan(v) else (v if higher else -v)

    winner = max(done, key=value)  # max keeps the first of equals
    pvals = {}
    for name, d in done.items():
        cands = d["results"]["candidates"]
        ref = "champion" if "champion" in cands else "base"
        a, b = cands["challenger"]["per_example"].get(metric), cands[ref]["per_example"].get(metric)
        if not a or not b or len(a) != len(b):
            pvals[name] = math.nan
            continue
        pvals[name] = bootstrap_p_value(a, b, margin=margin, samples=samples) if higher else bootstrap_p_value(
            [-x for x in a], [-x for x in b], margin=margin, samples=samples)
    return winner, holm(pvals, 1 - confidence)


def sweep_decision(cfg: UseCaseConfig, done: dict, failed: list[str]) -> dict:
    """Gate the best of the finished trials ``done`` (``{name: {"trained", "evaluation", "results",
    "overrides"}}``): the use case's rules (intervals at the level Holm tests the winner at) plus, with more than
    one finished trial, the Holm-Bonferroni rule on the primary metric. Raises :class:`AllTrialsFailed`."""
    from llmops.evaluate.gate import decide

    if not done:
        raise AllTrialsFailed(f"all {len(failed)} trials failed ({', '.join(failed)}): nothing to gate")
    metric, higher, margin = primary_metric(cfg)
    ev = cfg.evaluation
    winner, tests = choose(done, metric, higher, margin, confidence=ev.confidence, samples=ev.bootstrap_samples)
    alpha = 1 - ev.confidence
    divisor = tests[winner]["divisor"] if len(done) > 1 else 1
    results = done[winner]["results"]
    per_example = {n: c["per_example"] for n, c in results["candidates"].items()}
    decision = decide(done[winner]["evaluation"].metrics, cfg.gate, per_example, bootstrap_samples=ev.bootstrap_samples,
                      confidence=1 - alpha / divisor)
    if len(done) > 1:
        t = tests[winner]
        ok = bool(t["rejected"])
        reason = (f"sweep: best of {len(done)} trials on {metric} is {winner}; Holm-Bonferroni vs "
                  f"{decision['reference']}: p = {t['p']:.4g}, adjusted p = {t['adjusted']:.4g} "
                  f"{'<=' if ok else '>'} alpha = {alpha:.4g} (tested at alpha/{t['divisor']})")
        decision["rules"].append({"metric": metric, "vs": decision["reference"], "min": None, "max": None,
                                  "margin": margin, "higher_is_better": higher, "passed": ok, "reason": reason,
                                  "holm": t})
        decision["reasons"].append(reason)
        decision["passed"] = decision["passed"] and ok
    decision.update(winner=winner, failed_trials=failed, metric=metric, champion_version=results["champion_version"],
                    trials={n: {"overrides": d["overrides"], **tests[n],
                                "value": d["evaluation"].metrics["challenger"].get(metric)} for n, d in done.items()})
    return decision


def _fmt(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4g}"


def _plot_losses(path: Path, histories: dict[str, list]) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    for name, history in histories.items():
        if history:
            steps, losses = zip(*sorted(history), strict=True)
            ax.plot(steps, losses, marker=".", linewidth=1, label=name)
    ax.set(xlabel="step", ylabel="train loss", title="Training loss per trial")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_knob(path: Path, trials: dict, metric: str, knob: str) -> None:
    import matplotlib.pyplot as plt

    xs = [(t["overrides"][knob], t["value"]) for t in trials.values() if knob in t["overrides"]]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.scatter([x for x, _ in xs], [y for _, y in xs])
    ax.set(xlabel=knob, ylabel=metric, title=f"{metric} vs {knob}")
    if knob == "learning_rate":
        ax.set_xscale("log")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_comparison(out_dir: Path, decision: dict, done: dict, histories: dict[str, list]) -> list[Path]:
    """``comparison.md`` (one row per trial: overrides, primary metric, p-values, outcome), ``comparison.json``,
    ``loss_curves.png`` (every trial's training loss overlaid) and ``<metric>_vs_<knob>.png`` per swept knob."""
    import matplotlib

    matplotlib.use("Agg")

    from llmops.atomic import write_json, write_text

    out_dir.mkdir(parents=True, exist_ok=True)
    metric, trials = decision["metric"], decision["trials"]
    lines = [f"# Sweep: best of {len(trials)} finished trials on {metric}", "",
             f"Winner: **{decision['winner']}** - gate {'PASSED' if decision['passed'] else 'REJECTED'}. "
             f"Failed trials: {', '.join(decision['failed_trials']) or 'none'}.", "",
             f"| trial | {metric} | eval_loss | token_f1 | p vs {decision['reference']} | Holm-adjusted p |",
             "|---|---|---|---|---|---|"]
    for name, t in trials.items():
        m = done[name]["evaluation"].metrics["challenger"]
        mark = " (winner)" if name == decision["winner"] else ""
        lines.append(f"| {name}{mark} | {_fmt(t['value'])} | {_fmt(m.get('eval_loss'))} | {_fmt(m.get('token_f1'))} "
                     f"| {_fmt(t['p'])} | {_fmt(t['adjusted'])} |")
    lines += [f"| {name} | failed | | | | |" for name in decision["failed_trials"]]
    files = [write_text(out_dir / "comparison.md", "\n".join(lines) + "\n"),
             write_json(out_dir / "comparison.json", {"trials": trials, "winner": decision["winner"],
                                                      "failed_trials": decision["failed_trials"]})]
    _plot_losses(out_dir / "loss_curves.png", histories)
    files.append(out_dir / "loss_curves.png")
    for knob in sorted({k for t in trials.values() for k in t["overrides"]}):
        path = out_dir / f"{metric}_vs_{knob}.png"
        _plot_knob(path, trials, metric, knob)
        files.append(path)
    return files
