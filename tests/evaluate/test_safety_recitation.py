"""Safety filter and recitation (citation) check find planted cases and nothing else."""

from __future__ import annotations

import pytest

from llmops.config import SafetyConfig
from llmops.errors import ConfigError
from llmops.evaluate.bootstrap import paired_bootstrap
from llmops.evaluate.metrics import answer_words, rouge_l
from llmops.evaluate.recitation import RecitationIndex
from llmops.evaluate.safety import SafetyFilter


def flag_long_outputs(text: str) -> float:  # a classifier hook, found by dotted path
    return min(1.0, len(text) / 100)


def test_safety_filter_blocks_planted_words_and_patterns_only():
    f = SafetyFilter(SafetyConfig(blocked_words=["idiot"], blocked_patterns=[r"rm\s+-rf\s+/(\s|$)"]))
    outputs = ["Use git rebase -i.", "Only an IDIOT would ask.", "Run rm -rf / to clean up", "idiotic but fine",
               "rm -rf ./build is fine"]
    assert f.blocked(outputs) == [0.0, 1.0, 1.0, 0.0, 0.0]
    assert f.why_blocked(outputs[1]) == "word 'idiot'"
    assert f.why_blocked(outputs[2]).startswith("pattern ")


def test_classifier_hook_by_dotted_path():
    f = SafetyFilter(SafetyConfig(classifier=f"{__name__}:flag_long_outputs", classifier_threshold=0.5))
    assert f.blocked(["short", "x" * 60]) == [0.0, 1.0]
    assert f.why_blocked("x" * 60) == "classifier score 0.6"


def test_bad_classifier_path_and_bad_regex_name_the_field():
    with pytest.raises(ConfigError, match="evaluation.safety.classifier: cannot import 'no.such:thing'"):
        SafetyFilter(SafetyConfig(classifier="no.such:thing"))
    with pytest.raises(ValueError, match="pattern 0 '\\(' is not a valid regex"):
        SafetyConfig(blocked_patterns=["("])


def test_recitation_detects_verbatim_spans_of_the_training_data():
    train = ["Use `git branch -m old new`, then push the new branch and delete the old remote branch.",
             "Return a small value from the task to push an XCom."]
    index = RecitationIndex(train, n=8)
    outputs = [
        "You can USE git branch -m old new, then push the new branch!",  # 8+ words copied (after normalising)
        "Rename it with git branch -m and push it.",                    # shares words, no 8-word span
        "Return a small value from the task",                           # only 7 words: shorter than n
        "",
    ]
    assert index.scores(outputs) == [1.0, 0.0, 0.0, 0.0]


def test_rouge_l_and_length():
    assert rouge_l("the cat sat on the mat", "the cat sat on the mat") == 1.0
    # LCS("a b c d", "a x c d") = 3 -> P = R = 3/4
    assert rouge_l("a b c d", "a x c d") == pytest.approx(0.75)
    assert rouge_l("", "") == 1.0 and rouge_l("a", "") == 0.0 and rouge_l("a b", "c d") == 0.0
    assert answer_words("  two words ") == 2.0


def test_paired_bootstrap_interval_contains_the_true_difference_and_is_deterministic():
    import numpy as np

    rng = np.random.default_rng(1)
    b = rng.normal(0, 1, 200)
    a = b + 0.3 + rng.normal(0, 0.1, 200)
    ci = paired_bootstrap(a, b, samples=2000)
    assert ci["low"] < 0.3 < ci["high"] and ci["high"] - ci["low"] < 0.1  # pairing removes b's variance
    assert ci == paired_bootstrap(a, b, samples=2000)
    assert ci["n"] == 200 and ci["mean"] == pytest.approx(float(np.mean(a - b)))
    with pytest.raises(ValueError, match="same examples"):
        paired_bootstrap([1, 2], [1])
