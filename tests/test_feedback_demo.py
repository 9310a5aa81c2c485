"""The demo's stated rating rule: closer to the documented answer (token F1) wins; a poor best answer brings the
documented answer as a correction of the worse one; identical answers are not rated."""

from llmops.demo.feedback import rate

REF = "Use git reset --soft HEAD~1 to undo the last commit and keep the changes."


def test_closer_answer_wins_and_poor_answers_get_a_correction():
    assert rate(["No idea.", "git reset --soft HEAD~1 undoes the last commit"], REF) == [
        {"index": 1, "rating": 1}, {"index": 0, "rating": -1}]
    assert rate(["Bananas.", "Try rebooting."], REF)[1] == {"index": 1, "rating": -1, "correction": REF}
    assert rate(["same", "same "], REF) == [] and rate(["only one"], REF) == []


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
