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
