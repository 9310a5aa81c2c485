"""Shared fixtures. Nothing here touches the network or the project's own .airflow/.llmops folders."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "include" / "data" / "stackoverflow_qa" / "questions.jsonl"

# Airflow reads AIRFLOW_HOME when it is first imported: give the test process its own, outside the project.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="llmops-test-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Every test writes snapshots, runs and MLflow data under its own tmp folder."""
    monkeypatch.setenv("LLMOPS_HOME", str(tmp_path / "llmops-home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture(scope="session")
def sample_rows():
    import pandas as pd

    df = pd.read_json(SAMPLE, lines=True)
    return df.rename(columns={"question": "prompt", "answer": "response"})


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, sample_rows) -> Path:
    """A tiny Llama-architecture base model made locally and saved with save_pretrained (safetensors)."""
    from llmops.model.tiny_model import make_tiny_model

    texts = sample_rows["prompt"].tolist() + sample_rows["response"].tolist()
    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny", texts, vocab_size=600, pretrain_steps=120)
