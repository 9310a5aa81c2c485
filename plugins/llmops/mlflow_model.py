"""Each registered version is an MLflow model: ``mlflow.pyfunc.load_model("models:/<name>@champion")`` answers
chat input (``{"messages": [{"role": "user", "content": ...}]}``, MLflow's ``llm/v1/chat`` task), and
``mlflow models serve`` serves it.

Why a small pyfunc of our own rather than MLflow's transformers flavor with PEFT: the answer must use exactly the
prompt formatting training used (the use case's prompt template as the user turn, through the tokenizer's chat
template), which the transformers flavor does not know; the base must be found by its identity on the loading host
(a GGUF file by hash, a local folder by content digest: ``llmops.model.identity``), where the transformers flavor
records a hub id or a local path; storage stays adapter-only either way. The model carries MLflow's standard chat
signature (``CHAT_MODEL_INPUT_SCHEMA`` / ``CHAT_MODEL_OUTPUT_SCHEMA``), the ``llm/v1/chat`` task and an input
example, so the UI shows both. (It is a plain ``PythonModel`` with that signature, not a ``ChatModel``: saving a
``ChatModel`` loads the base and answers the example, which a registering worker without the base could not do.)

The model folder (``runs:/<run>/model``) holds ``MLmodel``, the adapter (``artifacts/adapter/``: LoRA weights,
``adapter_config.json`` naming the base by identity, ``llmops_adapter.json`` with the prompt template and lineage),
and the ``llmops`` package (``code/``), so a host with torch, transformers and peft loads it without this project.
Greedy decoding, as in evaluation; ``max_tokens`` bounds the answer. Only the last user message is answered (the
models are tuned on single questions); ``temperature`` and other sampling parameters are ignored.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import mlflow
from mlflow.pyfunc import PythonModel

log = logging.getLogger(__name__)
ARTIFACT_PATH = "model"
DEFAULT_MAX_TOKENS = 64
INPUT_EXAMPLE = {"messages": [{"role": "user", "content": "How do I reverse a list in Python?"}], "max_tokens": 8}


def _requests(model_input) -> list[dict]:
    """One ``{"messages": [...], "max_tokens": ...}`` per request, from a DataFrame (schema-enforced input), a
    dict or a list of dicts."""
    if hasattr(model_input, "to_dict"):
        return model_input.to_dict(orient="records")
    return [model_input] if isinstance(model_input, dict) else list(model_input)


class LLMOpsChatModel(PythonModel):
    """A registered adapter on its base, answering in the trained prompt format."""

    def load_context(self, context):
        from llmops.model.adapter import open_adapter

        adapter = open_adapter(context.artifacts["adapter"])
        self.meta, self.template = adapter.metadata, adapter.template
        self.model, self.tokenizer = adapter.load_merged()
        self.max_len = int((self.meta.get("training") or {}).get("max_seq_len") or 256)

    def answer(self, messages: list[dict], max_tokens: int | None) -> dict:
        from llmops.evaluate.evaluation import generate
        from llmops.model.encoding import prompt_ids

        users = [m for m in messages if (m.get("role") if isinstance(m, dict) else None) == "user"]
        if not users:
            raise mlflow.exceptions.MlflowException.invalid_parameter_value("messages: no message with role 'user'")
        prompt = users[-1].get("content") or ""
        max_new = int(max_tokens or DEFAULT_MAX_TOKENS)
        [text] = generate(self.model, self.tokenizer, self.template, [prompt], max_new_tokens=max_new,
                          max_len=self.max_len, batch_size=1)
        n_prompt = len(prompt_ids(self.tokenizer, self.template, prompt, self.max_len))
        n_out = len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        return {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()),
                "model": f"{self.meta.get('use_case', '')}@{self.meta.get('dag_run_id', '')}",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "length" if n_out >= max_new else "stop"}],
                "usage": {"prompt_tokens": n_prompt, "completion_tokens": n_out, "total_tokens": n_prompt + n_out}}

    def predict(self, context, model_input, params=None):
        import math

        out = []
        for req in _requests(model_input):
            max_tokens = req.get("max_tokens")
            if isinstance(max_tokens, float) and math.isnan(max_tokens):
                max_tokens = None
            out.append(self.answer(list(req["messages"]), max_tokens))
        return out


def requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in ("mlflow", "torch", "transformers", "peft", "safetensors", "pydantic",
                                           "pyyaml")]


def _drop_source_paths(mlmodel: Path) -> None:
    """MLflow records where each artifact was copied from (a path of this host); only the copy's place is kept."""
    import yaml

    spec = yaml.safe_load(mlmodel.read_text())
    for entry in spec["flavors"]["python_function"].get("artifacts", {}).values():
        entry["uri"] = entry["path"]
    mlmodel.write_text(yaml.safe_dump(spec, default_flow_style=False, sort_keys=False))


def save(adapter_dir: str | Path, out_dir: str | Path) -> Path:
    """Write the MLflow model folder for a (portable) adapter folder (the input example is checked against the
    signature; the base is not loaded)."""
    from mlflow.models import ModelSignature
    from mlflow.types.llm import CHAT_MODEL_INPUT_SCHEMA, CHAT_MODEL_OUTPUT_SCHEMA

    from llmops import paths
    from llmops.atomic import atomic_dir

    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory() as code, atomic_dir(out_dir) as built:
        shutil.copytree(paths.PROJECT_ROOT / "plugins" / "llmops", Path(code) / "llmops",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        built.path.rmdir()  # save_model makes the folder itself
        mlflow.pyfunc.save_model(
            path=str(built.path), python_model=LLMOpsChatModel(), artifacts={"adapter": str(adapter_dir)},
            signature=ModelSignature(CHAT_MODEL_INPUT_SCHEMA, CHAT_MODEL_OUTPUT_SCHEMA), input_example=INPUT_EXAMPLE,
            metadata={"task": "llm/v1/chat"}, code_paths=[str(Path(code) / "llmops")],
            pip_requirements=requirements())
        _drop_source_paths(built.path / "MLmodel")
    log.info("MLflow model of %s written to %s", adapter_dir, out_dir)
    return out_dir
