"""Run llama.cpp's ``convert_hf_to_gguf.py`` in the converter's own environment (``make gguf-tools``).

This file is executed there as a script, by that environment's Python (transformers 4.57), and imports nothing of
``llmops``: ``python llama_cpp_convert.py <llama.cpp folder> <convert_hf_to_gguf.py arguments...>``.

One addition to the converter. For a byte-level BPE tokenizer, llama.cpp names the pre-tokenizer (the regex that
splits text before BPE) by a hash of the token ids the tokenizer gives for a fixed text. The hash depends on the
vocabulary, so only tokenizers of models listed in llama.cpp are recognized; any tokenizer trained locally (the
project's tiny test model) is refused with "BPE pre-tokenizer was not recognized". When that happens and the
folder's ``tokenizer.json`` says the pre-tokenizer is exactly GPT-2's (a single ``ByteLevel`` with its regex, no
normalizer), the pre-tokenizer is ``gpt-2``, which llama.cpp implements; any other tokenizer is still refused.
"""

from __future__ import annotations

import json
import logging
import runpy
import sys
from pathlib import Path

log = logging.getLogger("llmops-gguf")


def plain_gpt2_pretokenizer(model_dir: Path) -> bool:
    """Whether ``tokenizer.json`` is a BPE with GPT-2's byte-level pre-tokenizer and nothing else before it."""
    try:
        spec = json.loads((Path(model_dir) / "tokenizer.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    pre = spec.get("pre_tokenizer") or {}
    return (spec.get("model", {}).get("type") == "BPE" and not spec.get("normalizer")
            and pre.get("type") == "ByteLevel" and pre.get("use_regex", True) and not pre.get("add_prefix_space"))


def main(argv: list[str]) -> None:
    llama_cpp = Path(argv[0]).resolve()
    sys.path.insert(0, str(llama_cpp))
    sys.path.insert(1, str(llama_cpp / "gguf-py"))
    from conversion import base

    recognized = base.TextModel.get_vocab_base_pre

    def get_vocab_base_pre(self, tokenizer) -> str:
        try:
            return recognized(self, tokenizer)
        except NotImplementedError:
            if not plain_gpt2_pretokenizer(self.dir_model):
                raise
            log.warning("tokenizer of %s is not one llama.cpp lists, but its pre-tokenizer is GPT-2's: 'gpt-2'",
                        self.dir_model)
            return "gpt-2"

    base.TextModel.get_vocab_base_pre = get_vocab_base_pre
    script = llama_cpp / "convert_hf_to_gguf.py"
    sys.argv = [str(script), *argv[1:]]
    runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main(sys.argv[1:])
