"""The code version recorded in every manifest, model version and run."""

from __future__ import annotations

import functools
import subprocess

from llmops import __version__, paths


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """``<package version>+g<git sha>[.dirty]`` when the project is a git checkout, else the package version."""
    try:
        sha = subprocess.run(
            ["git", "-C", str(paths.PROJECT_ROOT), "rev-parse", "--short=12", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(paths.PROJECT_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{sha}{'.dirty' if dirty else ''}"
