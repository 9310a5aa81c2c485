"""The pairwise judge against a real HTTP endpoint on loopback (an OpenAI chat route served by a small
deterministic server, reached by the official `openai` client); the both-orders tie rule with a judge that
always prefers position A; hand-worked kappa and win rate; fail-closed paths; the judge in the gate step."""

from __future__ import annotations

import json
import math
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from llmops.errors import ConfigError, DataError
from llmops.evaluate.judge import (
    Judge,
    JudgeEndpoint,
    JudgeUnavailable,
    combine,
    endpoint_from_connection,
    load_judge_prompt,
    parse_verdict,
)
from llmops.evaluate.judging import agreement, append_label, cohen_kappa, read_labels, win_rate
from llmops.payloads import Evaluation

PROMPT = "include/prompts/judge/pairwise_v1.txt"


def _answers(content: str) -> tuple[str, str]:
    m = re.search(r"Answer A:\n(.*?)\n\nAnswer B:\n(.*?)\n\nReply", content, re.DOTALL)
    return m.group(1), m.group(2)


def _reply(model: str, content: str) -> tuple[int, str | None]:
    """What the judge named by ``model`` answers: (HTTP status, message content)."""
    a, b = _answers(content)
    if model == "position-a":
        return 200, '{"winner": "A", "explanation": "the first answer"}'
    if model == "longer":  # prefers the longer answer, wherever it stands; equal length = tie
        w = "A" if len(a) > len(b) else "B" if len(b) > len(a) else "tie"
        return 200, json.dumps({"winner": w, "explanation": f"{len(a)} vs {len(b)} characters"})
    if model == "garbage":
        return 200, "I cannot decide."
    if model == "slow":
        time.sleep(2)
        return 200, '{"winner": "A"}'
    return 500, None


class _Handler(BaseHTTPRequestHandler):
    calls: list = []

    def do_POST(self):  # noqa: N802 (the stdlib's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert self.path == "/v1/chat/completions" and self.headers["Authorization"] == "Bearer k"
        self.calls.append(body)
        status, content = _reply(body["model"], body["messages"][-1]["content"])
        payload = {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                   "choices": [{"index": 0, "finish_reason": "stop",
                                "message": {"role": "assistant", "content": content}}],
                   "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}} if content else \
            {"error": {"message": "judge broke", "type": "server_error"}}
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()
    srv.server_close()


def _judge(url: str, model: str, **kw) -> Judge:
    template, version = load_judge_prompt(PROMPT)
    return Judge(JudgeEndpoint(url, model, "k"), template, version=version, **kw)


PAIRS = [("q1", "a much longer answer", "short"), ("q2", "x", "a longer one"), ("q3", "same", "same")]


def test_a_judge_that_always_prefers_position_a_gives_only_ties(server):
    out = _judge(server, "position-a").compare(PAIRS)
    assert out["scores"] == [0.5, 0.5, 0.5] and out["calls"] == 6 and out["failed"] == 0
    assert all(not v["consistent"] for v in out["verdicts"])
    assert win_rate(out["scores"], samples=200)["win_rate"] == 0.5


def test_a_consistent_judge_scores_both_orders(server):
    out = _judge(server, "longer", concurrency=1).compare(PAIRS)
    assert out["scores"] == [1.0, 0.0, 0.5]
    v = out["verdicts"][0]
    assert v["x_as_a"]["winner"] == "A" and v["x_as_b"]["winner"] == "B" and "characters" in v["x_as_a"]["explanation"]
    assert out["prompt_version"] == "pairwise_v1"


def test_the_official_client_sends_the_versioned_prompt(server):
    _Handler.calls.clear()
    _judge(server, "longer").compare(PAIRS[:1])
    assert len(_Handler.calls) == 2 and all(c["temperature"] == 0 for c in _Handler.calls)
    contents = sorted(c["messages"][0]["content"] for c in _Handler.calls)
    assert "Answer A:\na much longer answer\n\nAnswer B:\nshort" in contents[0] + contents[1]
    assert "Answer A:\nshort\n\nAnswer B:\na much longer answer" in contents[0] + contents[1]


@pytest.mark.parametrize(("model", "url", "why"), [
    ("garbage", None, "unparseable verdict"),
    ("slow", None, "Timeout"),
    ("error500", None, "InternalServerError"),
    ("longer", "http://127.0.0.1:9/v1", "APIConnectionError"),  # nothing listens: down
])
def test_a_broken_judge_fails_closed_naming_the_endpoint_and_count(server, model, url, why):
    judge = _judge(url or server, model, timeout_s=0.5)
    with pytest.raises(JudgeUnavailable) as e:
        judge.compare(PAIRS[:2])
    msg = str(e.value)
    assert (url or server) in msg and "4 of 4 verdicts failed" in msg and why in msg
    assert not isinstance(e.value, ConfigError)  # retryable


def test_a_judge_that_answers_no_call_fails_closed_whatever_max_failed_allows(server):
    """max_failed tolerates unparseable verdicts (a weak judge); an endpoint that is down is never tolerated."""
    with pytest.raises(JudgeUnavailable, match=r"4 of 4 verdicts failed \(no call got an answer"):
        _judge("http://127.0.0.1:9/v1", "longer", timeout_s=0.5, max_failed=1000).compare(PAIRS[:2])
    out = _judge(server, "garbage", max_failed=1000).compare(PAIRS[:2])  # answered, unparseable: all ties
    assert out["failed"] == 4 and out["scores"] == [0.5, 0.5]


def test_parse_verdict():
    assert parse_verdict('{"winner": "b", "explanation": "e"}') == ("B", "e")
    assert parse_verdict('Sure. {"winner": "tie"}')[0] == "tie"
    assert parse_verdict("winner: A because")[0] == "A"
    assert parse_verdict("no idea") is None and parse_verdict('{"winner": "C"}') is None


def test_combine_counts_a_position_flip_as_a_tie():
    assert combine("A", "B") == 1.0 and combine("B", "A") == 0.0
    assert combine("A", "A") == 0.5 and combine("B", "B") == 0.5 and combine("tie", "A") == 0.5


def test_cohen_kappa_hand_worked():
    # 10 items: agree on 7 (a,a x4; b,b x3); p_o = 0.7. human a=5,b=5; judge a=6,b=4 -> p_e = .5*.6+.5*.4 = 0.5
    human = ["a"] * 5 + ["b"] * 5
    judge = ["a", "a", "a", "a", "b", "b", "b", "b", "a", "a"]
    assert cohen_kappa(human, judge) == pytest.approx((0.7 - 0.5) / (1 - 0.5))  # 0.4
    assert agreement(human, judge)["accuracy"] == pytest.approx(0.7)
    assert cohen_kappa(["a", "b", "tie"], ["a", "b", "tie"]) == pytest.approx(1.0)
    # judge always "a" against balanced people: p_o = 0.5, p_e = 0.5 -> kappa 0
    assert cohen_kappa(["a", "b"] * 3, ["a"] * 6) == pytest.approx(0.0)
    assert math.isnan(cohen_kappa([], []))


def test_win_rate_hand_worked():
    w = win_rate([1, 1, 0, 0.5], samples=500)
    assert w["win_rate"] == pytest.approx(2.5 / 4) and (w["wins"], w["losses"], w["ties"]) == (2, 1, 1)
    assert 0 <= w["low"] <= 0.625 <= w["high"] <= 1
    assert win_rate([1.0] * 5, samples=200)["low"] == 1.0


def test_labels_read_and_append(tmp_path):
    path = tmp_path / "labels.jsonl"
    append_label(path, {"prompt": "p", "answer_a": "x", "answer_b": "y", "preferred": "a"})
    append_label(path, {"prompt": "p2", "answer_a": "x", "answer_b": "y", "preferred": "tie", "by": "rev"})
    assert [r["preferred"] for r in read_labels(path)] == ["a", "tie"]
    path.write_text(path.read_text() + '{"prompt": "p", "answer_a": "x", "answer_b": "y", "preferred": "c"}\n')
    with pytest.raises(DataError, match=r"labels.jsonl:3: field 'preferred'"):
        read_labels(path)


def test_endpoint_from_the_environment_without_a_connection(monkeypatch):
    monkeypatch.setenv("LLMOPS_JUDGE_BASE_URL", "http://127.0.0.1:1/v1/")
    monkeypatch.setenv("LLMOPS_JUDGE_MODEL", "m")
    assert endpoint_from_connection("no_such_conn") == JudgeEndpoint("http://127.0.0.1:1/v1", "m", "none")
    monkeypatch.delenv("LLMOPS_JUDGE_MODEL")
    with pytest.raises(ConfigError, match="no_such_conn"):
        endpoint_from_connection("no_such_conn")


def test_endpoint_from_an_airflow_connection(monkeypatch):
    uri = json.dumps({"conn_type": "http", "host": "http://127.0.0.1:8000/v1", "password": "k",
                      "extra": {"model": "judge-model"}})
    monkeypatch.setenv("AIRFLOW_CONN_MY_JUDGE", uri)
    assert endpoint_from_connection("my_judge") == JudgeEndpoint("http://127.0.0.1:8000/v1", "judge-model", "k")


# --- the judge in the gate step (real MLflow in the test's home, the loopback judge via LLMOPS_JUDGE_*) ---

def _results(tmp_path) -> Evaluation:
    prompts = [f"question {i}?" for i in range(6)]
    answers = {"base": ["short"] * 6, "challenger": [f"a longer answer number {i}" for i in range(5)] + ["tiny"]}
    cands = {}
    for name, preds in answers.items():
        samples = [{"prompt": p, "reference": "r", "prediction": o, "set": "eval"} for p, o in
                   zip(prompts, preds, strict=True)]
        cands[name] = {"metrics": {"eval_loss": 2.0, "unsafe_rate": 0.0}, "samples": samples,
                       "per_example": {"eval_loss": [2.0] * 6}}
    results = {"rows": {"eval": 6}, "champion_version": None, "candidates": cands}
    path = tmp_path / "eval" / "results.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(results))
    return Evaluation.from_xcom({"metrics": {n: c["metrics"] for n, c in cands.items()}, "results": str(path),
                                 "rows": results["rows"]})


def _labels(path, agree: bool):
    """Four labelled pairs; people prefer the longer answer (agree) or the shorter one (disagree)."""
    for i, (a, b) in enumerate([("a long answer", "no"), ("no", "a long answer")] * 2):
        longer = "a" if len(a) > len(b) else "b"
        append_label(path, {"prompt": f"p{i}", "answer_a": a, "answer_b": b,
                            "preferred": longer if agree else {"a": "b", "b": "a"}[longer]})


@pytest.fixture
def judged_cfg(use_case_file, server, monkeypatch, tmp_path):
    from llmops.config import load_by_name

    monkeypatch.setenv("LLMOPS_JUDGE_BASE_URL", server)
    monkeypatch.setenv("LLMOPS_JUDGE_API_KEY", "k")
    labels = tmp_path / "labels.jsonl"

    def make(model: str, agree: bool = True):
        monkeypatch.setenv("LLMOPS_JUDGE_MODEL", model)
        _labels(labels, agree)
        use_case_file(changes={"evaluation.judge": {"enabled": True, "labels": str(labels), "min_kappa": 0.5},
                               "evaluation.bootstrap_samples": 200,
                               "gate.rules": [{"metric": "judge.win_rate", "vs": "champion", "min": 0.5, "ci": True},
                                              {"metric": "unsafe_rate", "max": 0.0}]})
        return load_by_name("stackoverflow_qa")

    return make


def test_a_trusted_judge_decides_with_its_win_rate_and_interval(judged_cfg, fake_adapter, tmp_path):
    from llmops import tracking
    from llmops.steps.gate import run_gate
    from llmops.steps.register import refusal_reasons

    cfg = judged_cfg("longer")
    trained = fake_adapter(cfg.name)
    decision = run_gate(cfg, _results(tmp_path), trained, run_id="manual__1")
    j = decision.details["judge"]
    assert j["trusted"] and j["metrics"]["judge.kappa"] == pytest.approx(1.0)
    assert j["metrics"]["judge.win_rate"] == pytest.approx(5 / 6)  # 5 longer challenger answers, 1 shorter
    rule = decision.rules[0]
    assert rule["metric"] == "judge.win_rate" and rule["reference"] == "base" and rule["value"] == pytest.approx(5 / 6)
    # the interval of (score - 0.5) must clear 0: one loss in six keeps its lower bound at or below 0
    assert rule["passed"] == (rule["ci_low"] >= 0) and not decision.details.get("needs_approval")
    assert decision.passed == rule["passed"] and refusal_reasons(decision) == ([] if rule["passed"] else
                                                                              [rule["reason"]])
    report = tmp_path / "eval" / "report"
    saved = json.loads((report / "judge.json").read_text())
    assert len(saved["verdicts"]) == 6 and saved["verdicts"][0]["x_as_a"]["explanation"].endswith("characters")
    assert "## Judge verdicts" in (report / "report.md").read_text() and "**Judge**" in decision.text
    run = tracking.client().get_run(trained.mlflow_run_id).data
    assert run.metrics["judge.win_rate"] == pytest.approx(5 / 6) and run.tags["judge.trusted"] == "True"


def test_an_untrusted_judge_is_set_aside_and_a_person_must_decide(judged_cfg, fake_adapter, tmp_path):
    from llmops import registry
    from llmops.errors import NothingToDo
    from llmops.steps.gate import run_gate
    from llmops.steps.register import register

    cfg = judged_cfg("longer", agree=False)  # people prefer the shorter answers: kappa -1
    trained = fake_adapter(cfg.name)
    evaluation = _results(tmp_path)
    decision = run_gate(cfg, evaluation, trained, run_id="manual__1")
    assert decision.details["judge"]["metrics"]["judge.kappa"] == pytest.approx(-1.0)
    assert [r["metric"] for r in decision.rules] == ["unsafe_rate"] and decision.passed
    assert decision.details["needs_approval"] and "kappa -1.000" in decision.details["approval_reason"]
    assert "judge.win_rate" in decision.details["approval_reason"] and "A person decides" in decision.text
    with pytest.raises(NothingToDo, match="a person must decide"):
        register(cfg, trained, evaluation, decision, None, run_id="manual__1")
    assert registry.alias_version(cfg.model_name, "champion") is None
    # the reviewer's choices in the approval form become new labels (skip leaves a pair out)
    from llmops.evaluate.judging import labels_from_review, review_pairs
    from llmops.operators.approval import review_text

    pairs = review_pairs(decision.report)
    assert len(pairs) == 3 and "**Pair 1**: question 0?" in review_text(pairs)
    labels = decision.details["judge"]["labels_path"]
    before = len(read_labels(labels))
    added = labels_from_review(decision.to_xcom(), {"preference_1": "b", "preference_2": "skip",
                                                    "preference_3": "tie"}, "ana")
    new = read_labels(labels)[before:]
    assert added == 2 and [(r["prompt"], r["preferred"], r["by"]) for r in new] == [
        ("question 0?", "b", "ana"), ("question 2?", "tie", "ana")]
    assert new[0]["answer_a"] == "a longer answer number 0" and new[0]["answer_b"] == "short"


def test_a_judge_that_is_down_fails_the_gate_and_nothing_is_decided(judged_cfg, fake_adapter, tmp_path, server):
    from llmops import tracking
    from llmops.steps.gate import run_gate

    cfg = judged_cfg("garbage")
    trained = fake_adapter(cfg.name)
    with pytest.raises(JudgeUnavailable, match=rf"{re.escape(server)}: 12 of 12 verdicts failed"):
        run_gate(cfg, _results(tmp_path), trained, run_id="manual__1")
    assert "gate.decision" not in tracking.client().get_run(trained.mlflow_run_id).data.tags
    assert not (tmp_path / "eval" / "report" / "decision.json").exists()


def test_without_labels_the_judge_is_untrusted_and_the_decision_stays_strict_json(judged_cfg, fake_adapter, tmp_path):
    from llmops.steps.gate import run_gate

    cfg = judged_cfg("longer")
    (tmp_path / "labels.jsonl").unlink()  # the configured labels file is gone: nothing to check the judge against
    decision = run_gate(cfg, _results(tmp_path), fake_adapter(cfg.name), run_id="manual__1")
    assert decision.details["needs_approval"] and "no human labels" in decision.details["approval_reason"]
    assert decision.details["judge"]["metrics"]["judge.kappa"] is None  # NaN would break the XCom (strict JSON)
    json.dumps(decision.to_xcom(), allow_nan=False)
    assert "kappa n/a" in decision.text
