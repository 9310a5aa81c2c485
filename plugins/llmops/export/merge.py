"""The merged model of a registered adapter: LoRA weights folded into the base, saved as plain safetensors."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from llmops.atomic import atomic_dir
from llmops.errors import ExportError

log = logging.getLogger(__name__)
MARKER = "llmops_merged.json"


def readable_by_transformers_4(folder: Path) -> None:
    """transformers 5 names its tokenizer class ``TokenizersBackend``, which transformers 4 (llama.cpp's converter,
    most tools today) does not know; ``PreTrainedTokenizerFast`` loads the same ``tokenizer.json`` in both."""
    path = folder / "tokenizer_config.json"
    if not path.exists():
        return
    config = json.loads(path.read_text(encoding="utf-8"))
    if config.get("tokenizer_class") == "TokenizersBackend":
        config["tokenizer_class"] = "PreTrainedTokenizerFast"
        path.write_text(json.dumps(config, indent=2, sort_keys=True), encoding="utf-8")


def merge_adapter(base_model, tokenizer, adapter_dir: str | Path, out_dir: str | Path, provenance: dict) -> Path:
    """Merge the adapter in ``adapter_dir`` into ``base_model`` (loaded in its own dtype) and save the result with
    the tokenizer into ``out_dir`` atomically (an earlier try is replaced). ``provenance`` is written beside it."""
    from llmops.model import loading

    out_dir = Path(out_dir)
    try:
        model = loading.load_adapter(base_model, adapter_dir).merge_and_unload(safe_merge=True)
    except ValueError as e:  # safe_merge found NaNs: the adapter is broken
        raise ExportError(f"{adapter_dir}: merging the adapter into the base failed: {e}") from None
    model.eval()
    with atomic_dir(out_dir) as built:
        model.save_pretrained(built.path, safe_serialization=True)
        tokenizer.save_pretrained(built.path)
        readable_by_transformers_4(built.path)
        (built.path / MARKER).write_text(json.dumps({**provenance, "dtype": str(model.dtype).removeprefix("torch.")},
                                                    indent=2, sort_keys=True), encoding="utf-8")
    log.info("merged %s into the base (%s): %s", adapter_dir, model.dtype, out_dir)
    return out_dir
