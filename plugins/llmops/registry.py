"""MLflow model registry: adapter-only versions with lineage tags, and the aliases that say which is live.

Aliases: ``challenger`` on every registration; ``champion`` when there is none yet or the gate promotes;
the champion it replaces keeps the alias ``previous``. Registration is idempotent per MLflow run (= DAG run).
"""

from __future__ import annotations

import logging

from llmops.tracking import client

log = logging.getLogger(__name__)
CHALLENGER, CHAMPION, PREVIOUS = "challenger", "champion", "previous"


def alias_version(name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return client().get_model_version_by_alias(name, alias).version
    except MlflowException:
        return None


def _ensure_model(c, name: str, description: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        c.get_registered_model(name)
    except MlflowException:
        try:
            c.create_registered_model(name, description=description)
        except MlflowException:
            c.get_registered_model(name)  # created concurrently


def register_adapter(name: str, *, run_id: str, artifact_path: str, tags: dict, promote: bool,
                     description: str = "") -> dict:
    """Create (or find) the model version for this run, set aliases, and return what happened."""
    c = client()
    _ensure_model(c, name, description)
    existing = c.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    if existing:
        version = existing[0].version
        log.info("model %s already has version %s for MLflow run %s; not registering again", name, version, run_id)
    else:
        mv = c.create_model_version(name, source=f"runs:/{run_id}/{artifact_path}", run_id=run_id,
                                    tags={k: str(v) for k, v in tags.items()}, description=description)
        version = mv.version
        log.info("registered %s version %s", name, version)
    c.set_registered_model_alias(name, CHALLENGER, version)
    champion = alias_version(name, CHAMPION)
    aliases = [CHALLENGER]
    if champion == version:
        aliases.append(CHAMPION)
    elif champion is None or promote:
        if champion is not None:
            c.set_registered_model_alias(name, PREVIOUS, champion)
        c.set_registered_model_alias(name, CHAMPION, version)
        aliases.append(CHAMPION)
        log.info("alias %s -> %s version %s (previous: %s)", CHAMPION, name, version, champion)
    moved_from = champion if CHAMPION in aliases and champion != version else None
    return {"name": name, "version": str(version), "aliases": aliases, "previous_champion": moved_from}
