"""Which index version serves: the retrieval gate, and publish / rollback of the ``live`` alias.

The alias is one pointer file per use case, ``${LLMOPS_HOME}/indexes/<use_case>/live.json``
(``{"index_id", "history": [earlier live ids, newest last], "moved_at"}``), replaced atomically: a reader sees the
old pointer or the new one, never half of one. ``publish`` moves it to a version (a no-op when it is already
there); ``rollback`` moves it back to the previous one. Evaluations are kept beside the versions
(``evaluations/<index_id>.json``) so the gate can compare a candidate with the live index's numbers.

The gate uses the model gate's rules and code (:func:`llmops.evaluate.gate.decide`): a rule ``vs: live`` compares
with the live index (paired bootstrap over the same questions with ``ci: true``); without a live index the relative
rules are skipped, saying so, and the absolute ones still apply.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from llmops.atomic import write_json
from llmops.config import GateConfig, GateRule, RetrievalGateConfig
from llmops.errors import DataError
from llmops.retrieval.build import indexes_root, read_manifest


def _pointer(use_case: str) -> Path:
    return indexes_root(use_case) / "live.json"


def _read_pointer(use_case: str) -> dict:
    try:
        return json.loads(_pointer(use_case).read_text())
    except FileNotFoundError:
        return {"index_id": None, "history": []}
    except ValueError as e:
        raise DataError(f"{_pointer(use_case)}: unreadable live pointer: {e}") from None


def live_id(use_case: str) -> str | None:
    return _read_pointer(use_case)["index_id"]


def evaluation_path(use_case: str, index_id: str) -> Path:
    return indexes_root(use_case) / "evaluations" / f"{index_id}.json"


def save_evaluation(use_case: str, evaluation: dict) -> Path:
    return write_json(evaluation_path(use_case, evaluation["index_id"]), evaluation)


def load_evaluation(use_case: str, index_id: str) -> dict | None:
    try:
        return json.loads(evaluation_path(use_case, index_id).read_text())
    except FileNotFoundError:
        return None


def gate(rules: RetrievalGateConfig, candidate: dict, live: dict | None) -> dict:
    """The decision for ``candidate`` (an evaluation from :func:`llmops.retrieval.metrics.evaluate_index`) against
    ``live`` (the live index's evaluation, or None). Same shape as the model gate's decision."""
    from llmops.evaluate.gate import decide

    model_rules, skipped = [], []
    for rule in rules.rules:
        if rule.vs == "live" and live is None:
            skipped.append(rule)
            continue
        model_rules.append(GateRule(**{**rule.model_dump(), "vs": "champion" if rule.vs else None}))
    candidates = {"challenger": candidate["metrics"], "base": {}, "champion": live["metrics"] if live else {}}
    per_example = {"challenger": candidate["per_question"], "champion": live["per_question"] if live else {}}
    decision = decide(candidates, GateConfig(rules=model_rules), per_example) if model_rules else \
        {"passed": True, "reference": "live", "rules": [], "reasons": []}
    for rule in skipped:
        reason = f"{rule.metric} vs live: no live index yet, the relative rule is skipped (first index)"
        decision["rules"].append({"metric": rule.metric, "vs": "live", "passed": True, "reason": reason})
        decision["reasons"].append(reason)
    for r in decision["rules"]:  # the model gate says "champion"; here the reference is the live index
        r["reason"] = r["reason"].replace("vs champion", "vs live")
        if r.get("reference") == "champion":
            r["reference"] = "live"
    decision["reasons"] = [r["reason"] for r in decision["rules"]]
    decision.update(reference="live index", candidate=candidate["index_id"], live=live["index_id"] if live else None)
    return decision


def publish(use_case: str, index_id: str) -> dict:
    """Move ``live`` to ``index_id`` (a complete version); returns the pointer. Already live: nothing written."""
    if read_manifest(indexes_root(use_case) / index_id) is None:
        raise DataError(f"use case '{use_case}': no complete index version {index_id} to publish")
    pointer = _read_pointer(use_case)
    if pointer["index_id"] == index_id:
        return {**pointer, "moved": False}
    history = [*pointer["history"], pointer["index_id"]] if pointer["index_id"] else pointer["history"]
    new = {"index_id": index_id, "history": history, "moved_at": datetime.now(UTC).isoformat()}
    write_json(_pointer(use_case), new, fsync=True)
    return {**new, "moved": True}


def rollback(use_case: str) -> dict:
    """Move ``live`` back to the version live before the current one."""
    pointer = _read_pointer(use_case)
    if not pointer["history"]:
        raise DataError(f"use case '{use_case}': no earlier live index to roll back to "
                        f"(live: {pointer['index_id']})")
    *history, previous = pointer["history"]
    new = {"index_id": previous, "history": history, "moved_at": datetime.now(UTC).isoformat(),
           "rolled_back_from": pointer["index_id"]}
    write_json(_pointer(use_case), new, fsync=True)
    return {**new, "moved": True}
