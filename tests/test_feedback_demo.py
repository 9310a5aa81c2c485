"""The demo's stated rating rule: an answer agreeing with the documented answer (token F1 >= 0.5) gets +1, any
other -1 with the documented answer as its correction; an identical second answer is not rated again. And what
the demo prints: the held-out preference accuracy of each candidate with its interval, the gain's interval, and a
plain sentence when the round made nothing better."""

import json

from llmops.demo.feedback import rate

REF = "Use git reset --soft HEAD~1 to undo the last commit and keep the changes."


def test_an_answer_that_agrees_gets_plus_one_and_a_wrong_one_the_documented_answer():
    assert rate(["No idea.", "git reset --soft HEAD~1 undoes the last commit"], REF) == [
        {"index": 0, "rating": -1, "correction": REF}, {"index": 1, "rating": 1}]
    assert rate(["Bananas.", "Try rebooting."], REF) == [
        {"index": 0, "rating": -1, "correction": REF}, {"index": 1, "rating": -1, "correction": REF}]
    assert rate(["same", "same "], REF) == [{"index": 0, "rating": -1, "correction": REF}]
    assert rate([REF, REF], REF) == [{"index": 0, "rating": 1}] and rate([], REF) == []


def test_the_verdict_says_plainly_when_the_round_made_nothing_better():
    from llmops.demo.feedback import verdict
    from llmops.payloads import Decision, Evaluation

    metrics = {"base": {"preference_accuracy": 0.4}, "champion": {"preference_accuracy": 0.5},
               "challenger": {"preference_accuracy": 0.55}}
    rejected = Decision(passed=False, rules=[], reference="champion")
    assert verdict(Evaluation(metrics=metrics), rejected) == (
        "result            this round made nothing better (held-out preference accuracy 0.500 -> 0.550): the "
        "version was not registered and the champion is unchanged")
    passed = Decision(passed=True, rules=[], reference="champion")
    assert "made the model better: held-out preference accuracy 0.500 -> 0.550" in verdict(
        Evaluation(metrics=metrics), passed)


def test_the_metrics_printout_gives_each_accuracy_its_interval_and_the_gain_its_own(tmp_path, capsys):
    from llmops.demo.feedback import print_metrics
    from llmops.payloads import Evaluation

    per = {"base": [0, 0, 1, 0], "champion": [0, 1, 1, 0], "challenger": [1, 1, 1, 1]}
    results = {"candidates": {n: {"per_example": {"preference_accuracy": v}} for n, v in per.items()},
               "preferences": {"pairs": 4, "intervals": {"vs_champion": {"preference_accuracy": {
                   "mean": 0.5, "low": 0.25, "high": 1.0, "n": 4}}}}}
    (tmp_path / "results.json").write_text(json.dumps(results))
    metrics = {n: {"preference_accuracy": sum(v) / 4, "eval_loss": 2.0, "token_f1": 0.3} for n, v in per.items()}
    print_metrics(Evaluation(metrics=metrics, results=str(tmp_path / "results.json")))
    out = capsys.readouterr().out
    assert "held-out pairs    4 (questions no DPO step saw)" in out
    assert "\n  challenger        1.000 [1.000, 1.000]      " in out
    assert "\n  champion          0.500 [0.000, 1.000]      " in out
    assert "\n  gain vs champion preference accuracy +0.500, 95% CI +0.250 .. +1.000\n" in out


TINY = {"evaluation.max_eval_rows": 12, "evaluation.generation_samples": 3, "evaluation.max_new_tokens": 6,
        "evaluation.batch_size": 12, "training.max_seq_len": 64, "training.batch_size": 8,
        "training.method": "dpo", "training.checkpoint_every_steps": 0, "training.dpo.learning_rate": 5e-4,
        "training.dpo.epochs": 2, "training.dpo.max_eval_loss_increase": 0.1, "feedback.eval_fraction": 0.35,
        "gate.rules": [{"metric": "unsafe_rate", "max": 1.0}]}


def test_a_round_on_the_tiny_model_prints_before_after_the_gate_and_what_it_made(
        use_case_file, tiny_model_dir, sample_rows, adapters, capsys):
    """DPO, evaluate, gate and register on the tiny model, as the demo runs them after its feedback (corrections:
    the documented answer chosen over a wrong one); what it prints names every figure a release manager needs."""
    import pandas as pd

    from llmops import registry, tracking
    from llmops.config import load_by_name
    from llmops.data import preferences
    from llmops.data.snapshots.handle import Snapshots
    from llmops.demo.feedback import tune_and_gate

    use_case_file(changes={"base_model": str(tiny_model_dir), **TINY})
    cfg = load_by_name("stackoverflow_qa")
    dataset = Snapshots.of(cfg).write_frame(sample_rows.head(120), source={"kind": "test"},
                                            validation={"success": True})
    mlflow_run = tracking.run_for_dag_run(cfg.name, "champion_run")
    tracking.log_artifacts(mlflow_run, adapters["champion"], "adapter")
    registry.register_adapter(cfg.model_name, run_id=mlflow_run, artifact_path="adapter", promote=True, tags={
        "snapshot_id": dataset["snapshot_id"], "base_model": str(tiny_model_dir)})
    rows = sample_rows.iloc[200:264].reset_index(drop=True)
    chosen, rejected = rows["response"].str.slice(0, 60), "No idea, sorry."
    pairs = pd.DataFrame({"key": [preferences._key("pair", p, c, rejected, True)
                                  for p, c in zip(rows["prompt"], chosen, strict=True)],
                          "kind": "pair", "prompt": rows["prompt"], "completion": chosen, "rejected": rejected,
                          "label": True, "versions": "1", "ids": [f"id{i}" for i in range(len(rows))]})
    snap = preferences.preference_snapshots(cfg).write_frame(pairs, source={"kind": "test"},
                                                             validation={"success": True}, parents=[])

    evaluation, decision = tune_and_gate(cfg, snap["snapshot_id"])
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert f"{snap['rows']['train']} rows to tune on, {snap['rows']['eval']} held out" in lines["preference"], out
    assert "on top of champion version 1" in lines["DPO"], out
    assert "learning rate 0.0005, beta 0.1, epochs 2, loss sigmoid" in lines["DPO"], out
    assert f"held-out pairs    {snap['rows']['eval']} (questions no DPO step saw)" in out, out
    for name in ("base", "champion", "challenger"):  # each candidate's accuracy with its interval
        acc = evaluation.metrics[name]["preference_accuracy"]
        assert any(line.startswith(f"  {name} ") and f"{acc:.3f} [" in line for line in out.splitlines()), out
    assert "gain vs champion preference accuracy" in out and "95% CI" in out, out
    assert lines["gate"].split()[1] == ("PASSED" if decision.passed else "REJECTED"), out
    for rule in decision.rules:
        assert rule["reason"] in out, out
    if decision.passed:
        assert "made the model better: held-out preference accuracy" in lines["result"], out
        assert "version 2" in lines["registered"], out
    else:
        assert "made nothing better" in lines["result"] and "nothing" in lines["registered"], out
