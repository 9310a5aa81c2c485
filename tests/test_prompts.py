"""Prompt templates: one {prompt} placeholder, rendered the same everywhere, hashed by content."""

from __future__ import annotations

import pytest

from llmops.errors import ConfigError
from llmops.prompts import PromptTemplate, load_template


def test_bundled_template_renders_prompt_in_place():
    tpl = load_template("include/prompts/qa_v1.txt")  # relative: taken from the project root
    assert tpl.path == "include/prompts/qa_v1.txt"
    assert tpl.render("  How do I list files?\n") == "### Question:\nHow do I list files?\n\n### Answer:\n"
    assert "{prompt}" not in tpl.render("x")


def test_absolute_path_and_trailing_newline_added(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("Q: {prompt} A:")
    tpl = load_template(path)
    assert tpl.text == "Q: {prompt} A:\n"
    assert tpl.render("why?") == "Q: why? A:\n"


@pytest.mark.parametrize("text", ["no placeholder here\n", "{prompt} and again {prompt}\n"])
def test_template_needs_exactly_one_placeholder(tmp_path, text):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_template(path)
    assert str(path) in str(exc.value)
    assert "exactly one '{prompt}' placeholder" in str(exc.value)


def test_missing_template_names_the_file(tmp_path):
    path = tmp_path / "missing.txt"
    with pytest.raises(ConfigError, match=r"missing\.txt: cannot read prompt template"):
        load_template(path)


def test_hash_changes_with_content_and_is_stable():
    a = PromptTemplate(path="a", text="Q: {prompt}\n")
    same = PromptTemplate(path="elsewhere", text="Q: {prompt}\n")
    other = PromptTemplate(path="a", text="Question: {prompt}\n")
    assert len(a.hash) == 12 and a.sha256.startswith(a.hash)
    assert a.hash == same.hash
    assert a.hash != other.hash
