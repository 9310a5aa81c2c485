"""The registered `champion`, loaded for a serving step (batch predictions, prompt comparison)."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from llmops.config import UseCaseConfig
from llmops.errors import NothingToDo


@contextlib.contextmanager
def champion_model(cfg: UseCaseConfig, purpose: str):
    """Yields (the loaded champion, its version), its files in a temporary folder removed afterwards. Raises
    :class:`NothingToDo` when the model has no champion yet."""
    from llmops import registry
    from llmops.serving.model_store import load_version

    version = registry.alias_version(cfg.model_name, "champion")
    if version is None:
        raise NothingToDo(f"{cfg.model_name} has no champion yet; nothing to {purpose}")
    with tempfile.TemporaryDirectory() as cache:
        yield load_version(cfg, "champion", version, Path(cache)), version
