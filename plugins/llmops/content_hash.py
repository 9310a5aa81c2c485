"""Content hashes of files and folders: what the registry records for exports and local base models.

A folder's digest is the sha256 of its sorted ``<relative path>\\0<file sha256>\\n`` lines, so it changes with
any file's content or name and not with timestamps or the order files were written. Dot-files and dot-folders
(temporary names, caches) are left out.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

BLOCK = 8 << 20


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(BLOCK), b""):
            h.update(block)
    return h.hexdigest()


def folder_files(folder: str | os.PathLike) -> list[Path]:
    """The folder's files (recursively, sorted), without dot-files or anything under a dot-folder."""
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def folder_digest(folder: str | os.PathLike) -> str:
    folder = Path(folder)
    h = hashlib.sha256()
    for p in folder_files(folder):
        h.update(f"{p.relative_to(folder).as_posix()}\0{file_sha256(p)}\n".encode())
    return h.hexdigest()


def size_bytes(path: str | os.PathLike) -> int:
    path = Path(path)
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in folder_files(path))


def digest(path: str | os.PathLike) -> str:
    """A file's sha256, or a folder's digest."""
    return file_sha256(path) if Path(path).is_file() else folder_digest(path)
