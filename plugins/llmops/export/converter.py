"""llama.cpp's GGUF converter, run in its own environment as a separate process.

``convert_hf_to_gguf.py`` (from the ``llama-cpp-python`` sdist's ``vendor/llama.cpp/``, with its ``conversion/``
package and ``gguf-py``) pins transformers 4.57, the project runs transformers 5: ``make gguf-tools`` makes its
environment in ``.venv-gguf`` (``LLMOPS_GGUF_TOOLS`` names another). The file is written under a temporary name and
renamed only once the converter exited cleanly and the result reads back as GGUF.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from llmops import paths
from llmops.atomic import atomic_file
from llmops.errors import ExportError

log = logging.getLogger(__name__)
OUT_TYPES = ("f32", "f16", "bf16", "q8_0")
WRAPPER = Path(__file__).with_name("llama_cpp_convert.py")
TAIL_LINES = 12


@dataclass(frozen=True)
class Converter:
    python: Path
    llama_cpp: Path  # the folder holding convert_hf_to_gguf.py, conversion/ and gguf-py/


def tools_dir() -> Path:
    return Path(os.environ.get("LLMOPS_GGUF_TOOLS") or paths.PROJECT_ROOT / ".venv-gguf")


def find_converter() -> Converter:
    """The installed converter, or an :class:`ExportError` saying how to install it."""
    root = tools_dir()
    conv = Converter(python=root / "bin" / "python", llama_cpp=root / "llama.cpp")
    missing = [str(p) for p in (conv.python, conv.llama_cpp / "convert_hf_to_gguf.py", conv.llama_cpp / "gguf-py",
                                root / ".installed") if not p.exists()]
    if missing:
        raise ExportError(f"GGUF export: llama.cpp's converter is not installed in {root} (missing {missing[0]}): "
                          "run `make gguf-tools` (or set LLMOPS_GGUF_TOOLS to such an environment)")
    return conv


def _tail(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("INFO:")]
    return "\n".join(lines[-TAIL_LINES:])


def convert(model_dir: str | Path, out_file: str | Path, out_type: str, *, timeout_s: float = 3600) -> Path:
    """Convert the safetensors folder ``model_dir`` into ``out_file`` (``out_type``: f16, q8_0, ...)."""
    from llmops.model.gguf import read_header

    if out_type not in OUT_TYPES:
        raise ExportError(f"GGUF export: out type {out_type!r} is not one of {', '.join(OUT_TYPES)}")
    conv = find_converter()
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(out_file, suffix=".gguf") as tmp:
        argv = [str(conv.python), str(WRAPPER), str(conv.llama_cpp), str(model_dir), "--outfile", str(tmp),
                "--outtype", out_type]
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        log.info("GGUF %s: %s", out_type, " ".join(argv))
        try:
            done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise ExportError(f"GGUF export of {model_dir} ({out_type}): the converter ran past {timeout_s:.0f} s") \
                from None
        if done.returncode != 0:
            why = _tail(done.stderr) or _tail(done.stdout) or f"exit status {done.returncode}"
            if "No space left on device" in done.stderr:
                why = f"disk full under {out_file.parent} ({shutil.disk_usage(out_file.parent).free} bytes free)\n{why}"
            raise ExportError(f"GGUF export of {model_dir} ({out_type}): llama.cpp's converter failed:\n{why}")
        read_header(tmp)  # a DataError naming the file if it is not readable GGUF
    log.info("GGUF %s written: %s (%d bytes)", out_type, out_file, out_file.stat().st_size)
    return out_file


def no_space(e: OSError) -> bool:
    return e.errno == errno.ENOSPC
