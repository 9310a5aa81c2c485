"""Shared fixtures. Nothing here touches the network or the project's own .airflow/.llmops folders."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from tiers import (  # noqa: F401  (hooks: slow marks, the xdist scheduler by tier, the per-tier time summary)
    pytest_collection_modifyitems,
    pytest_runtest_logreport,
    pytest_terminal_summary,
    pytest_xdist_make_scheduler,
)

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "include" / "data" / "stackoverflow_qa" / "questions.jsonl"
BUNDLED_USE_CASE = ROOT / "include" / "use_cases" / "stackoverflow_qa.yaml"

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
    """A tiny Llama-architecture base model made locally and saved with save_pretrained (safetensors); built once per
    content and copied into the session's folder (tests/model_cache.py)."""
    from model_cache import tiny_model

    texts = sample_rows["prompt"].tolist() + sample_rows["response"].tolist()
    return tiny_model(tmp_path_factory.mktemp("models") / "tiny", texts, vocab_size=600, pretrain_steps=120)


@pytest.fixture
def use_case_file(tmp_path, monkeypatch):
    """Writes a use-case file for this test and points ``LLMOPS_USE_CASES_DIR`` at its folder (so
    ``load_by_name`` reads it): ``write(name, changes, stem=None, data=None)`` takes the bundled
    stackoverflow_qa.yaml (or ``data``), names it ``name`` (None: keep the name), sets each dotted key of
    ``changes`` (``{"snapshots.root": "gs://b/p"}``) and writes ``<stem or name>.yaml``; returns its path."""
    import yaml

    folder = tmp_path / "use_cases"

    def write(name: str | None = "stackoverflow_qa", changes: dict | None = None, *, stem: str | None = None,
              data: dict | None = None) -> Path:
        data = copy.deepcopy(data) if data is not None else yaml.safe_load(BUNDLED_USE_CASE.read_text())
        if name is not None:
            data["name"] = name
        for dotted, value in (changes or {}).items():
            *parents, last = dotted.split(".")
            node = data
            for key in parents:
                node = node.setdefault(key, {})
            node[last] = value
        folder.mkdir(exist_ok=True)
        path = folder / f"{stem or data['name']}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        monkeypatch.setenv("LLMOPS_USE_CASES_DIR", str(folder))
        return path

    return write


@pytest.fixture
def fake_adapter(tmp_path):
    """Adapter files as the finetune task leaves them (bytes, not real weights; ``llmops_adapter.json`` with
    the lineage metadata) and the DAG run's MLflow run: ``make(use_case, dag_run_id, weights=..., register=False,
    tags=None, **metadata)`` returns the :class:`~llmops.payloads.Trained` payload. With ``register`` the files
    are logged to the run and registered as a version of ``<use_case>-lora`` (``tags``), its number in
    ``details["version"]``."""
    from llmops import registry, tracking
    from llmops.payloads import Trained

    def make(use_case: str, dag_run_id: str = "manual__1", *, weights: bytes | None = None, register: bool = False,
             tags: dict | None = None, **metadata):
        adapter = tmp_path / "adapters" / dag_run_id / "adapter"
        adapter.mkdir(parents=True)
        (adapter / "adapter_config.json").write_text("{}")
        (adapter / "adapter_model.safetensors").write_bytes(weights or b"weights of " + dag_run_id.encode())
        meta = {"snapshot_id": "0123456789abcdef", "dag_run_id": dag_run_id, "base_model": "tiny",
                "base_model_revision": "", "prompt_template_hash": "abc", "config_hash": "def",
                "code_version": "0.1", **metadata}
        (adapter / "llmops_adapter.json").write_text(json.dumps(meta))
        run = tracking.run_for_dag_run(use_case, dag_run_id)
        details = {"dag_run_id": dag_run_id}
        if register:
            tracking.log_artifacts(run, adapter, "adapter")
            details["version"] = registry.register_adapter(f"{use_case}-lora", run_id=run, artifact_path="adapter",
                                                           promote=True, tags=tags or {})["version"]
        return Trained(snapshot_id=meta["snapshot_id"], mlflow_run_id=run, adapter_dir=str(adapter),
                       base_model=meta["base_model"], details=details)

    return make


def random_adapter(base_dir, out_dir, seed: int, *, rank: int = 4, metadata: dict | None = None):
    """A LoRA adapter initialised at random (no training) on ``base_dir``, saved like a trained one."""
    import torch
    from peft import LoraConfig, get_peft_model

    from llmops.model import loading

    torch.manual_seed(seed)
    base, _ = loading.load_base(str(base_dir))
    model = get_peft_model(base, LoraConfig(r=rank, lora_alpha=2 * rank, target_modules="all-linear",
                                            init_lora_weights=False))
    return loading.save_adapter(model, out_dir, {"seed": seed, "base_model": str(base_dir), **(metadata or {})})


@pytest.fixture(scope="session")
def adapters(tiny_model_dir, tmp_path_factory):
    """Two random adapters on the tiny model: ``challenger`` and ``champion`` (their folders)."""
    root = tmp_path_factory.mktemp("adapters")
    return {name: str(random_adapter(tiny_model_dir, root / name, seed))
            for name, seed in (("challenger", 1), ("champion", 2))}


@pytest.fixture(scope="session")
def make_random_adapter():
    """:func:`random_adapter`, for test modules that cannot import this conftest by name."""
    return random_adapter


@pytest.fixture(scope="session")
def gguf_tools():
    """llama.cpp's converter environment; made here (`make gguf-tools`) when missing, else the test skips."""
    from llmops.errors import ExportError
    from llmops.export import converter

    try:
        return converter.find_converter()
    except ExportError:
        pass
    from llmops.paths import PROJECT_ROOT

    done = subprocess.run(["make", "-C", str(PROJECT_ROOT), "gguf-tools"], capture_output=True, text=True,
                          timeout=1800)
    try:
        return converter.find_converter()
    except ExportError as e:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-5:])
        pytest.skip(f"llama.cpp's GGUF converter environment could not be made ({e}); `make gguf-tools` said:\n"
                    f"{tail}")
