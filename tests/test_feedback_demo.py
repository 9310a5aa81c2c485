"""The demo's stated rating rule: closer to the documented answer (token F1) wins; a poor best answer brings the
documented answer as a correction of the worse one; identical answers are not rated."""

from llmops.feedback_demo import rate

REF = "Use git reset --soft HEAD~1 to undo the last commit and keep the changes."


def test_closer_answer_wins_and_poor_answers_get_a_correction():
    assert rate(["No idea.", "git reset --soft HEAD~1 undoes the last commit"], REF) == [
        {"index": 1, "rating": 1}, {"index": 0, "rating": -1}]
    assert rate(["Bananas.", "Try rebooting."], REF)[1] == {"index": 1, "rating": -1, "correction": REF}
    assert rate(["same", "same "], REF) == [] and rate(["only one"], REF) == []
