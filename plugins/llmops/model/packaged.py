"""Models shipped inside installed Python packages, named ``pkg:<package>/<path>``.

The general rule behind the ``pkg:`` references (a GGUF base model uses the same form, :mod:`llmops.model.gguf`):
the package is found without importing it, ``<path>`` is taken inside its folder, and it must exist. A path that
ends in ``.zip`` names an archived model folder: it is unpacked once, atomically, into
``${LLMOPS_HOME}/cache/unpacked/<sha256 of the archive>/`` and that folder is used (two workers unpacking at once:
the one that loses the rename uses the winner's folder). The archive's sha256 is the model's content digest.
"""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path

from llmops import paths
from llmops.errors import ConfigError

PKG_PREFIX = "pkg:"
MARKER = ".llmops_unpacked"


def is_packaged(ref: str) -> bool:
    return str(ref).startswith(PKG_PREFIX)


def package_path(ref: str, field: str = "embedding_model") -> Path:
    """The file or folder a ``pkg:<package>/<path>`` reference names; it must exist."""
    package, _, rel = str(ref)[len(PKG_PREFIX):].partition("/")
    spec = importlib.util.find_spec(package) if package.isidentifier() else None
    if spec is None or not spec.submodule_search_locations or not rel or ".." in Path(rel).parts:
        raise ConfigError(f"{field}: {ref!r}: no installed package {package!r} holding {rel!r} (pip install the "
                          "package that ships it)")
    path = Path(next(iter(spec.submodule_search_locations))) / rel
    if not path.exists():
        raise ConfigError(f"{field}: {ref!r}: the package {package!r} has no {rel!r} ({path})")
    return path


def unpacked(archive: Path) -> tuple[Path, str]:
    """(folder, sha256 of the archive): the archive unpacked once into the cache, keyed by its content."""
    from llmops.atomic import atomic_dir
    from llmops.model.gguf import file_sha256

    digest = file_sha256(archive)
    target = paths.llmops_home() / "cache" / "unpacked" / digest
    if not (target / MARKER).exists():
        with atomic_dir(target, exists="keep", complete=lambda p: (p / MARKER).exists()) as built:
            with zipfile.ZipFile(archive) as zf:
                for name in zf.namelist():
                    if name.startswith("/") or ".." in Path(name).parts:
                        raise ConfigError(f"{archive}: the archive holds an unsafe path {name!r}")
                zf.extractall(built.path)
            (built.path / MARKER).write_text(f"{archive.name} sha256:{digest}\n")
    return target, digest
