"""Preference rows from production: the prediction log joined with user feedback, then a preference snapshot.

One row per preference, in one frame (columns :data:`COLUMNS`):

- ``kind == "pair"``: ``{prompt, completion (the chosen answer), rejected}``, from a correction (the correction is
  chosen over the served answer) or from two answers to the same prompt rated +1 and -1. DPO trains on these.
- ``kind == "single"``: ``{prompt, completion, label}`` for a rated answer that is in no pair (a single thumb).
  KTO trains on these and on both sides of every pair.

``prompt`` is the user's question as the API received it; training renders it exactly as SFT does (the adapter's
prompt template as the user turn, through the tokenizer's chat template: :mod:`llmops.train.preference`). The
latest rating of an answer wins; answers the safety filter withheld are never used, and a preferred text the
filter would block is dropped. Rows whose prompt is in the eval split of the dataset snapshot are dropped (the
leakage check), so evaluation never scores the model on questions it was preference-tuned on.

**The split.** The snapshot's train/eval split is by prompt, with the rule dataset snapshots use (a hash of the
split seed and the key, here the prompt, against ``feedback.eval_fraction``): every pair of one prompt lands on
the same side, a prompt never moves when more feedback arrives, and the eval split is held out: preference tuning
reads the train split only and evaluation scores base, champion and challenger on the eval split's pairs
(:mod:`llmops.evaluate.preferences`).

A day's partition reads that day's feedback file and the prediction logs of the ``lookback_days`` before it (an
answer is often rated after midnight). The snapshot is written through the snapshot handle as a snapshot of kind
``preferences`` (:mod:`llmops.data.snapshots.kinds`: the id hashes each row's ``key``, a split is read in key
order, rows split by prompt): the same inputs give the same id and nothing is rewritten. Its ``source`` names the
files and model versions.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from llmops.serving_logs import feedback_dir, log_dir, read_lines

log = logging.getLogger(__name__)
COLUMNS = ["key", "kind", "prompt", "completion", "rejected", "label", "versions", "ids"]
LOOKBACK_DAYS = 7


def _key(*parts) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:24]


def join(predictions: list[dict], feedback: list[dict]) -> pd.DataFrame:
    """Preference rows from prediction-log records (those with an ``id``) and feedback records."""
    answers = {(r["id"], int(r.get("choice", 0))): r for r in predictions
               if r.get("id") and r.get("completion") and not r.get("blocked")}
    rating: dict[tuple, dict] = {}
    rows: dict[str, dict] = {}
    paired: set[tuple] = set()  # answers already in a pair are no single

    def add(kind, prompt, completion, rejected, label, versions, ids):
        key = _key(kind, prompt, completion, rejected, label)
        rows.setdefault(key, {"key": key, "kind": kind, "prompt": prompt, "completion": completion,
                              "rejected": rejected, "label": label, "versions": ",".join(sorted(set(versions))),
                              "ids": ",".join(ids)})

    for f in sorted(feedback, key=lambda f: f.get("ts", "")):
        ref = (f["id"], int(f.get("index", 0)))
        answer = answers.get(ref)
        if answer is None:
            continue
        rating[ref] = f  # the latest rating of an answer wins
        correction = (f.get("correction") or "").strip()
        if correction and correction != answer["completion"].strip():
            add("pair", answer["prompt"], correction, answer["completion"], True, [str(answer["version"])], [f["id"]])
            paired.add(ref)
    by_prompt: dict[str, list[tuple]] = {}
    for ref, f in rating.items():
        by_prompt.setdefault(answers[ref]["prompt"].strip(), []).append((ref, f["rating"]))
    for rated in by_prompt.values():
        good = [ref for ref, r in rated if r > 0]
        bad = [ref for ref, r in rated if r < 0]
        for g in good:
            for b in bad:
                chosen, rejected = answers[g], answers[b]
                if chosen["completion"].strip() == rejected["completion"].strip():
                    continue
                add("pair", chosen["prompt"], chosen["completion"], rejected["completion"], True,
                    [str(chosen["version"]), str(rejected["version"])], [g[0], b[0]])
                paired |= {g, b}
        for ref, r in rated:
            if ref not in paired:
                a = answers[ref]
                add("single", a["prompt"], a["completion"], None, r > 0, [str(a["version"])], [ref[0]])
    frame = pd.DataFrame(list(rows.values()), columns=COLUMNS)
    return frame.sort_values("key", kind="stable").reset_index(drop=True)


def partition_files(use_case: str, day: str, lookback_days: int = LOOKBACK_DAYS) -> dict[str, list[Path]]:
    """The feedback file of ``day`` and the prediction logs of the ``lookback_days`` up to it (those present)."""
    d = date.fromisoformat(day)
    logs = [log_dir(use_case) / f"{d - timedelta(days=k):%Y-%m-%d}.jsonl" for k in range(lookback_days, -1, -1)]
    return {"predictions": [p for p in logs if p.exists()],
            "feedback": [p for p in [feedback_dir(use_case) / f"{day}.jsonl"] if p.exists()]}


def _read(files: list[Path]) -> list[dict]:
    return [r for p in files for r in read_lines(p)]


def screen(rows: pd.DataFrame, safety, eval_prompts: set[str]) -> tuple[pd.DataFrame, list[dict]]:
    """The safety filter on preferred texts and the leakage check against the eval prompts; the rows kept and
    one step record per check (rows in/out), as the dataset snapshot's ``steps`` list them."""
    if rows.empty:
        return rows, [{"step": "safety_filter", "rows_in": 0, "rows_out": 0},
                      {"step": "eval_leakage_check", "rows_in": 0, "rows_out": 0, "eval_prompts_dropped": 0}]
    preferred = rows["completion"].where(rows["kind"].eq("pair") | rows["label"].astype(bool))
    blocked = preferred.map(lambda t: isinstance(t, str) and safety.why_blocked(t) is not None)
    kept = rows[~blocked]
    steps = [{"step": "safety_filter", "rows_in": int(len(rows)), "rows_out": int(len(kept))}]
    leaked = kept["prompt"].map(lambda p: p.strip() in eval_prompts)
    out = kept[~leaked].reset_index(drop=True)
    steps.append({"step": "eval_leakage_check", "rows_in": int(len(kept)), "rows_out": int(len(out)),
                  "eval_prompts_dropped": int(leaked.sum())})
    return out, steps


def split_rule(cfg):
    """The preference snapshot's split: the dataset's seed, ``feedback.eval_fraction`` (the dataset's
    ``split.eval_fraction`` when unset)."""
    from llmops.data.snapshots.kinds import PREFERENCES

    return PREFERENCES.split_rule(cfg)


def split_of(cfg, prompt: str) -> str:
    """``train`` or ``eval``: the side a prompt's preference rows are on (the writer's rule, keyed by prompt)."""
    from llmops.data.snapshots.writer import split_of as by_key

    return by_key(prompt, split_rule(cfg))


def preference_snapshots(cfg):
    """The handle of the use case's preference snapshots (beside its dataset snapshots, in
    ``<use_case>_preferences``; :data:`llmops.data.snapshots.kinds.PREFERENCES`)."""
    from llmops.data.snapshots.handle import Snapshots
    from llmops.data.snapshots.kinds import PREFERENCES

    return Snapshots.of(cfg, PREFERENCES)


def load(cfg, snapshot_id: str, split: str = "train") -> pd.DataFrame:
    """One split of a preference snapshot in its canonical order (by key)."""
    return preference_snapshots(cfg).load_split(snapshot_id, split)


def eval_snapshot(dataset, champion: dict | None) -> str | None:
    """The dataset snapshot (of the handle ``dataset``) whose eval split preference rows are held out from and a
    preference-tuned version is scored on: the champion's (its ``snapshot_id`` tag), else the newest one; None
    when there is none. It only reads: ``snapshots.train_on: last_n`` (a union written for supervised runs) plays
    no part."""
    tagged = ((champion or {}).get("tags") or {}).get("snapshot_id")
    if tagged:
        return tagged
    return dataset.latest_id() if dataset.store.ids() else None


def build(cfg, day: str, *, eval_snapshot_id: str | None = None, report_dir: Path | None = None) -> dict:
    """Join, validate, screen and snapshot one day's preference rows. The leakage check uses the eval split of
    ``eval_snapshot_id`` (default: the newest dataset snapshot, when there is one).

    Returns ``{"skipped": bool, "rows": n, "min_rows", "counts", "day"}``; below ``feedback.min_rows`` nothing is
    written and ``skipped`` is True, otherwise it also has ``snapshot_id``, ``manifest``, ``inputs`` (the files
    read), ``eval_snapshot_id`` and ``eval_snapshot_uri``."""
    from llmops import paths
    from llmops.data.snapshots.handle import Snapshots
    from llmops.data.validate import validate
    from llmops.evaluate.safety import SafetyFilter

    files = partition_files(cfg.name, day)
    rows = join(_read(files["predictions"]), _read(files["feedback"]))
    dataset = Snapshots.of(cfg)
    eval_snapshot_id = eval_snapshot_id or eval_snapshot(dataset, None)
    eval_prompts: set[str] = set()
    if eval_snapshot_id:
        eval_prompts = {p.strip() for p in dataset.load_split(eval_snapshot_id, "eval")["prompt"]}
    rows, steps = screen(rows, SafetyFilter(cfg.evaluation.safety), eval_prompts)
    counts = {"feedback": sum(1 for _ in _read(files["feedback"])), "pairs": int(rows["kind"].eq("pair").sum()),
              "singles": int(rows["kind"].eq("single").sum())}
    out = {"skipped": len(rows) < cfg.feedback.min_rows, "rows": int(len(rows)), "min_rows": cfg.feedback.min_rows,
           "counts": counts, "day": day}
    if out["skipped"]:
        log.info("%s: %d preference row(s) (%d pairs, %d singles) from %d feedback; feedback.min_rows is %d: no "
                 "snapshot, downstream skipped", day, len(rows), counts["pairs"], counts["singles"],
                 counts["feedback"], cfg.feedback.min_rows)
        return out
    validation = validate(rows, paths.resolve(cfg.feedback.expectation_suite), report_dir)
    versions = sorted({v for vs in rows["versions"] for v in vs.split(",") if v})
    source = {"kind": "feedback", "prediction_logs": [p.name for p in files["predictions"]],
              "feedback_files": [p.name for p in files["feedback"]], "model_versions": versions,
              "eval_snapshot_id": eval_snapshot_id, "split_by": "prompt"}
    manifest = preference_snapshots(cfg).write_frame(
        rows, source=source, validation=validation, parents=[eval_snapshot_id] if eval_snapshot_id else [],
        steps=steps, partition_key=day, interval={"start": day, "end": day}, report_dir=report_dir)
    log.info("%s: preference snapshot %s: %d pairs, %d singles, from model versions %s", day,
             manifest["snapshot_id"], counts["pairs"], counts["singles"], versions)
    return {**out, "snapshot_id": manifest["snapshot_id"], "manifest": manifest,
            "inputs": [str(p) for p in files["predictions"] + files["feedback"]],
            "eval_snapshot_id": eval_snapshot_id,
            "eval_snapshot_uri": dataset.uri(eval_snapshot_id) if eval_snapshot_id else None}
