"""Exact match and token F1 with SQuAD-style case/punctuation normalisation."""

from __future__ import annotations

import pytest

from llmops.evaluate.metrics import exact_match, normalize, token_f1


def test_normalize_lowercases_strips_punctuation_and_whitespace():
    assert normalize("  Hello,   World!\n") == "hello world"
    assert normalize("Use `chmod +x`.") == "use chmod x"
    assert normalize("don't") == "don t"


@pytest.mark.parametrize(
    ("prediction", "reference", "expected"),
    [
        ("Use sorted().", "use SORTED", 1.0),
        ("  The answer is 42! ", "the answer is 42", 1.0),
        ("the answer is 42", "the answer is 43", 0.0),
        ("", "", 1.0),
        ("answer", "", 0.0),
    ],
)
def test_exact_match(prediction, reference, expected):
    assert exact_match(prediction, reference) == expected


def test_token_f1_identical_after_normalisation_is_one():
    assert token_f1("Run chmod +x, then ./script.sh!", "run CHMOD x then script sh") == 1.0


def test_token_f1_partial_overlap_computed_by_hand():
    # prediction: the cat sat (3 tokens); reference: the cat ran away (4); common: the, cat = 2
    # precision 2/3, recall 2/4 -> F1 = 2 * (2/3 * 1/2) / (2/3 + 1/2) = 4/7
    assert token_f1("The cat sat.", "the cat ran away") == pytest.approx(4 / 7)


def test_token_f1_counts_repeated_tokens_once_per_match():
    # common = min(3, 1) = 1; precision 1/3, recall 1 -> F1 = 0.5
    assert token_f1("yes yes yes", "yes") == pytest.approx(0.5)
    # common = 2 (python x2 vs python x2); precision 2/3, recall 2/2 -> 0.8
    assert token_f1("python python java", "python python") == pytest.approx(0.8)


@pytest.mark.parametrize(
    ("prediction", "reference", "expected"),
    [("", "", 1.0), ("...", "!!", 1.0), ("something", "", 0.0), ("", "something", 0.0), ("a b", "c d", 0.0)],
)
def test_token_f1_edge_cases(prediction, reference, expected):
    assert token_f1(prediction, reference) == expected


def test_token_f1_is_symmetric():
    a, b = "use a list comprehension", "a comprehension over the list works"
    assert token_f1(a, b) == pytest.approx(token_f1(b, a))
    assert 0.0 < token_f1(a, b) < 1.0
