"""Atomic writes: a file or a folder is made under a temporary name beside its target, then renamed into place.

A reader never sees half a file or half a folder, and a failed or killed write leaves the target as it was (the
temporary name starts with a dot and holds ``.tmp``, so listings skip it and a retry's cleanup finds it).

- :func:`atomic_file` yields a temporary path to write to; :func:`write_text` and :func:`write_json` are the
  common cases.
- :func:`atomic_dir` yields a temporary folder to build. ``exists="replace"`` swaps out an earlier try (a run's own
  output, such as an adapter); ``exists="keep"`` keeps what is already there (content-addressed output, such as
  a snapshot, where a concurrent writer of the same id may have won): ``published`` then says which one stays.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_file(path: str | os.PathLike, *, suffix: str = "", fsync: bool = False) -> Iterator[Path]:
    """Write to the yielded temporary path; on success it replaces ``path``, on error it is removed. A writer that
    removes the temporary file itself (it decided there is nothing to keep) leaves ``path`` as it was.

    ``suffix`` ends the temporary name, for writers that add or check an extension (``np.save``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if not tmp.exists():
            return
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str, *, fsync: bool = False) -> Path:
    with atomic_file(path, fsync=fsync) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike, data, *, fsync: bool = False, **dump_kwargs) -> Path:
    """``data`` as JSON (indented, keys sorted, anything else as ``str`` unless told otherwise)."""
    opts = {"indent": 2, "sort_keys": True, "default": str, **dump_kwargs}
    return write_text(path, json.dumps(data, **opts), fsync=fsync)


class AtomicDir:
    """What :func:`atomic_dir` yields: ``path`` is the folder to build; ``published`` is set on exit."""

    def __init__(self, path: Path, target: Path):
        self.path = path
        self.target = target
        self.published = False


@contextmanager
def atomic_dir(target: str | os.PathLike, *, exists: str = "replace",
               complete: Callable[[Path], bool] | None = None) -> Iterator[AtomicDir]:
    """Build a folder under a temporary name and rename it to ``target``.

    ``exists="replace"``: an earlier ``target`` is removed first (a retry's own output).
    ``exists="keep"``: an existing ``target`` stays and the built copy is dropped (``published`` is False), as
    long as ``complete(target)`` says it is whole (default: it is a folder); otherwise the rename's error is raised.
    """
    if exists not in ("replace", "keep"):
        raise ValueError(f"exists must be 'replace' or 'keep', not {exists!r}")
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    built = AtomicDir(Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)), target)
    try:
        yield built
        if exists == "replace" and target.exists():
            shutil.rmtree(target)
        try:
            os.rename(built.path, target)
            built.published = True
        except OSError:
            if exists == "replace" or not (complete or Path.is_dir)(target):
                raise
    finally:
        shutil.rmtree(built.path, ignore_errors=True)
