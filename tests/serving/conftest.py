"""A registered tiny adapter (two versions) in a real MLflow SQLite registry, and a snapshot to cite from; for the
vLLM gateway tests, the vLLM venv, their base model and their adapters."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from llmops.config import TrainingConfig, UseCaseConfig, load_use_case
from llmops.paths import PROJECT_ROOT

USE_CASE = "stackoverflow_qa"


@pytest.fixture(scope="module")
def serving_home(tmp_path_factory):
    return tmp_path_factory.mktemp("serving-home")


@pytest.fixture
def cfg(serving_home, monkeypatch, tiny_model_dir) -> UseCaseConfig:
    monkeypatch.setenv("LLMOPS_HOME", str(serving_home))
    base = load_use_case(PROJECT_ROOT / "include" / "use_cases" / f"{USE_CASE}.yaml")
    safety = base.evaluation.safety.model_copy(update={"blocked_patterns": [r"\bDROP TABLE\b", r"rm -rf /"]})
    return base.model_copy(update={"base_model": str(tiny_model_dir), "evaluation": base.evaluation.model_copy(
        update={"safety": safety})})


# Adapters trained in this session, by what determines them (base, snapshot, rows, template, seed): every serving
# module registers its versions in its own registry, and training with the same inputs and seed gives the same
# weights, so each one is trained once per session and logged again from where it was written.
_TRAINED: dict[tuple, Path] = {}


def train_and_register(cfg: UseCaseConfig, rows, run_name: str, promote: bool, seed: int) -> str:
    """Train a few LoRA steps (once per session for the same inputs), log the adapter to an MLflow run and register
    it; return the version."""
    from llmops import paths, registry, tracking
    from llmops.prompts import load_template
    from llmops.train.lora import finetune

    template = load_template(cfg.prompt_template)
    key = (str(cfg.base_model), rows.attrs.get("snapshot_id", ""), len(rows), cfg.prompt_template, template.hash,
           seed)
    if key not in _TRAINED or not _TRAINED[key].exists():
        training = TrainingConfig(epochs=1, learning_rate=5e-3, batch_size=16, max_seq_len=96, max_train_rows=96,
                                  seed=seed, checkpoint_every_steps=0, queue="default", pool="default_pool")
        result = finetune(rows, base_model=cfg.base_model, revision=None, template=template, training=training,
                          out_dir=paths.run_dir(cfg.name, run_name),
                          metadata={"snapshot_id": rows.attrs.get("snapshot_id", ""), "base_model": cfg.base_model,
                                    "prompt_template": cfg.prompt_template, "prompt_template_hash": template.hash,
                                    "prompt_template_text": template.text})
        _TRAINED[key] = Path(result["adapter_dir"])
    run = tracking.run_for_dag_run(cfg.name, run_name)
    tracking.log_artifacts(run, _TRAINED[key], "adapter")
    return registry.register_adapter(cfg.model_name, run_id=run, artifact_path="adapter", tags={"t": run_name},
                                     promote=promote)["version"]


@pytest.fixture
def registered(cfg, sample_rows, serving_home):
    """Version 1 = champion, trained on a snapshot written in the same LLMOPS_HOME (made once per module)."""
    from llmops import registry
    from llmops.data.snapshots.handle import Snapshots

    snapshots = Snapshots.of(cfg)
    if not snapshots.manifests():
        snapshots.write_frame(sample_rows.head(300), source={"kind": "test"}, validation={"success": True})
    sid = snapshots.latest_id()
    rows = snapshots.load_split(sid, "train")
    rows.attrs["snapshot_id"] = sid
    if registry.alias_version(cfg.model_name, "champion") is None:
        train_and_register(cfg, rows, "run-v1", promote=True, seed=0)
    return {"snapshot_id": sid, "rows": rows}


@pytest.fixture
def train_and_register_fn():
    """:func:`train_and_register`, for test modules run without the project root on sys.path."""
    return train_and_register


# ---- the vLLM gateway tests (test_vllm_lora.py, test_vllm_merged.py)


@pytest.fixture(scope="session")
def vllm_python() -> str:
    """The vLLM venv's python; made here (`make vllm-tools`) when missing, else the test skips."""
    stamp, python = PROJECT_ROOT / ".venv-vllm" / ".installed", PROJECT_ROOT / ".venv-vllm" / "bin" / "python"
    if not stamp.exists():
        done = subprocess.run(["make", "-C", str(PROJECT_ROOT), "vllm-tools"], capture_output=True, text=True,
                              timeout=1800)
        if not stamp.exists():
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-5:])
            pytest.skip(f"the vLLM environment could not be made; `make vllm-tools` said:\n{tail}")
    return str(python)


@pytest.fixture(scope="session")
def base64(tmp_path_factory, sample_rows) -> Path:
    """The tiny Llama-architecture model with head_dim 64 (hidden 128, 2 heads) and a chat template."""
    from model_cache import tiny_model
    from vllm_gateway import CHAT_TEMPLATE

    out = tiny_model(tmp_path_factory.mktemp("vllm-models") / "tiny64", sample_rows["prompt"].tolist() +
                     sample_rows["response"].tolist(), hidden_size=128, heads=2, vocab_size=600, pretrain_steps=20)
    config = out / "tokenizer_config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "chat_template": CHAT_TEMPLATE}))
    return out


@pytest.fixture(scope="session")
def lora_adapters(base64, tmp_path_factory, make_random_adapter) -> dict[str, Path]:
    """Random adapters with the metadata training writes: ``a`` and ``b`` (rank 4) and ``big`` (rank 16, above
    the servers' --max-lora-rank)."""
    from llmops.prompts import load_template

    template = load_template("include/prompts/qa_v1.txt")
    meta = {"base_model": str(base64), "prompt_template": template.path, "prompt_template_text": template.text,
            "prompt_template_hash": template.hash, "snapshot_id": ""}
    root = tmp_path_factory.mktemp("vllm-adapters")
    return {name: make_random_adapter(base64, root / name, seed, rank=rank, metadata=meta)
            for name, seed, rank in (("a", 1, 4), ("b", 2, 4), ("big", 3, 16))}



class SubmitSpy(list):
    """The jobs an engine was given, in order; the engine's own ``submit`` still runs each one."""

    def __init__(self, engine):
        super().__init__()
        self.engine, self.active = engine, True
        submit = engine.submit
        engine.submit = lambda job: (self.append(job), submit(job))[1]

    @property
    def ids(self) -> list[list[int]]:
        """The prompt token ids of each job."""
        return [job.ids for job in self]

    def stop(self) -> None:
        """The engine's own ``submit`` again (the jobs seen so far stay here)."""
        if self.active:
            del self.engine.submit
            self.active = False


@pytest.fixture
def submit_spy():
    """``submit_spy(engine)`` -> a :class:`SubmitSpy` of what reaches that engine; every spy still watching at the
    end of the test is taken off, newest first."""
    spies = []

    def spy(engine) -> SubmitSpy:
        spies.append(SubmitSpy(engine))
        return spies[-1]

    yield spy
    for s in reversed(spies):
        s.stop()
