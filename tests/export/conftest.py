"""A registered model version on a real MLflow SQLite store (tiny base, random LoRA adapter with the lineage
metadata training writes); llama.cpp's converter environment is the root conftest's ``gguf_tools``."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from torch_threads import one_torch_thread  # noqa: F401  (autouse: torch on one thread here)

ROOT = Path(__file__).resolve().parents[2]
NAME = "exp_qa"


@pytest.fixture(scope="session")
def adapter_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """A LoRA adapter with non-zero weights (no training needed) and the metadata training saves with it."""
    import torch
    from peft import LoraConfig, get_peft_model

    from llmops.model import loading
    from llmops.prompts import load_template

    template = load_template("include/prompts/qa_v1.txt")
    torch.manual_seed(3)
    base, _ = loading.load_base(str(tiny_model_dir))
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                            init_lora_weights=False))
    meta = {"use_case": NAME, "dag_run_id": "manual__export", "snapshot_id": "0123456789abcdef",
            "base_model": str(tiny_model_dir), "base_model_revision": "", "prompt_template": template.path,
            "prompt_template_hash": template.hash, "prompt_template_text": template.text, "config_hash": "c",
            "code_version": "test"}
    return loading.save_adapter(model, tmp_path_factory.mktemp("trained") / "adapter", meta)


@pytest.fixture
def use_case(tmp_path, monkeypatch, tiny_model_dir):
    from llmops.config import load_by_name

    cfg = yaml.safe_load((ROOT / "include" / "use_cases" / "stackoverflow_qa.yaml").read_text())
    cfg.update(name=NAME, base_model=str(tiny_model_dir), export=["merged", "gguf"])
    (tmp_path / "use_cases").mkdir()
    (tmp_path / "use_cases" / f"{NAME}.yaml").write_text(yaml.safe_dump(cfg))
    monkeypatch.setenv("LLMOPS_USE_CASES_DIR", str(tmp_path / "use_cases"))
    return load_by_name(NAME)


@pytest.fixture
def registered(use_case, adapter_dir) -> dict:
    """Version 1 of ``exp_qa-lora``, registered by the register step itself (``register_trained``)."""
    from llmops import tracking
    from llmops.payloads import Decision, Evaluation, Trained
    from llmops.steps.register import register_trained

    run = tracking.run_for_dag_run(NAME, "manual__export")
    trained = Trained.from_xcom({"snapshot_id": "0123456789abcdef", "mlflow_run_id": run,
                                 "adapter_dir": str(adapter_dir), "base_model": use_case.base_model})
    evaluation = Evaluation.from_xcom({"metrics": {"challenger": {"eval_loss": 1.0}}, "results": ""})
    decision = Decision.from_xcom({"passed": True, "rules": [], "reference": "base"})
    result = register_trained(use_case, trained, evaluation, decision)
    return {**result, "run_id": run, "cfg": use_case}
