"""MLflow model registry: adapter-only versions with lineage tags, and the aliases that say which is live.

Aliases: ``challenger`` on every registration; ``champion`` when there is none yet or the gate promotes;
the champion it replaces keeps the alias ``previous``. Registration is idempotent per MLflow run (= DAG run):
a retried task finds its version, and two racing registrations converge on the lowest version of the run.
:func:`rollback` moves ``champion`` back (to ``previous`` or a chosen version).

Every version registered by the pipeline carries its adapter's content digest (``adapter.sha256``: the sha256 over
the adapter folder's files, :func:`llmops.content_hash.folder_digest`); :func:`download_adapter` checks the files it
downloaded against it and refuses a mismatch (:class:`~llmops.errors.AdapterDigestMismatch`), so what is served is
what was registered, whoever can write the artifact store. Versions registered before the tag load with a warning.
"""

from __future__ import annotations

import logging
from pathlib import Path

from llmops.errors import AdapterDigestMismatch, RegistryError
from llmops.tracking import client, outage_guard, unreachable

log = logging.getLogger(__name__)
CHALLENGER, CHAMPION, PREVIOUS = "challenger", "champion", "previous"
ADAPTER_DIGEST_TAG = "adapter.sha256"


def alias_version(name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client().get_model_version_by_alias(name, alias).version)
    except MlflowException as e:
        if unreachable(e):  # "the server did not answer" is not "there is no such alias"
            raise
        return None


def _ensure_model(c, name: str, description: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        c.get_registered_model(name)
    except MlflowException as e:
        if unreachable(e):
            raise
        try:
            c.create_registered_model(name, description=description)
        except MlflowException:
            c.get_registered_model(name)  # created concurrently


def versions_of_run(name: str, run_id: str) -> list[str]:
    found = client().search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    return sorted((str(v.version) for v in found), key=int)


def _one_version_for_run(c, name: str, run_id: str) -> str:
    """Keep the lowest version of this run; delete any extra one a concurrent registration made."""
    from mlflow.exceptions import MlflowException

    found = versions_of_run(name, run_id)
    for extra in found[1:]:
        try:
            c.delete_model_version(name, extra)
            log.warning("deleted duplicate version %s of %s for MLflow run %s (kept %s)", extra, name, run_id, found[0])
        except MlflowException:
            pass  # the other registration deleted it first
    return found[0]


@outage_guard("registering the model version and setting its aliases")
def register_adapter(name: str, *, run_id: str, artifact_path: str, tags: dict, promote: bool,
                     description: str = "", before_aliases=None) -> dict:
    """Create (or find) the model version for this run, set aliases, and return what happened.
    ``before_aliases(version)`` runs between the two (the vLLM servers load the version): if it raises, no alias
    moves."""
    c = client()
    _ensure_model(c, name, description)
    if versions_of_run(name, run_id):
        version = _one_version_for_run(c, name, run_id)
        log.info("model %s already has version %s for MLflow run %s; not registering again", name, version, run_id)
    else:
        c.create_model_version(name, source=f"runs:/{run_id}/{artifact_path}", run_id=run_id,
                               tags={k: str(v) for k, v in tags.items()}, description=description)
        version = _one_version_for_run(c, name, run_id)
        log.info("registered %s version %s", name, version)
    if before_aliases is not None:
        before_aliases(str(version))
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
    return {"name": name, "version": str(version), "aliases": aliases, "previous_champion": moved_from,
            "alias": CHAMPION if CHAMPION in aliases else CHALLENGER}


@outage_guard("reading a model version")
def version_info(name: str, version: str) -> dict:
    """The version's run, source and tags. Raises :class:`RegistryError` (permanent) when the registry answers
    that there is no such version, and :class:`~llmops.errors.TrackingUnavailable` (retried) when it does not
    answer at all."""
    from mlflow.exceptions import MlflowException

    try:
        mv = client().get_model_version(name, str(version))
    except MlflowException as e:
        if unreachable(e):  # an outage is not "no such version": leave it to the task's retries
            raise
        raise RegistryError(f"model '{name}' has no version {version}") from None
    return {"name": name, "version": str(mv.version), "run_id": mv.run_id, "source": mv.source, "tags": dict(mv.tags)}


def champion_info(name: str) -> dict | None:
    version = alias_version(name, CHAMPION)
    return version_info(name, version) if version else None


def download_adapter(info: dict, dst: str | Path) -> Path:
    """Download a version's adapter files into ``dst``: its source is an MLflow model (``runs:/<run>/model``, the
    adapter in ``artifacts/adapter``) or, for a version registered before those, the adapter folder itself. The files
    are checked against the version's ``adapter.sha256`` tag (:func:`check_adapter`)."""
    import mlflow.artifacts

    client()  # sets the tracking/registry URIs
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    source = info["source"].rstrip("/")
    if "MLmodel" in {Path(f.path).name for f in mlflow.artifacts.list_artifacts(artifact_uri=source)}:
        source += "/artifacts/adapter"  # the model's code and environment files are not needed here
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(dst)))
    check_adapter(info, local, source)
    return local


def fetch_adapter(name: str, version: str, folder: str | Path) -> Path:
    """``name`` version ``version``'s adapter files in ``folder``: downloaded and checked once (atomically: a
    reader never sees half a folder), reused as they are afterwards."""
    import shutil

    from llmops.atomic import atomic_dir
    from llmops.model.loading import METADATA_FILE

    folder = Path(folder)
    if not (folder / METADATA_FILE).exists():
        with atomic_dir(folder, exists="keep", complete=lambda p: (p / METADATA_FILE).exists()) as built:
            got = download_adapter(version_info(name, version), built.path / "dl")
            for f in got.iterdir():
                shutil.move(str(f), built.path / f.name)
            shutil.rmtree(built.path / "dl")
    return folder


def check_adapter(info: dict, local: Path, source: str = "") -> None:
    """Raise :class:`AdapterDigestMismatch` (after deleting the files) when the downloaded adapter folder ``local``
    is not what was registered; a version without the tag (registered before it existed) passes with a warning."""
    import shutil

    from llmops.content_hash import folder_digest

    want = (info.get("tags") or {}).get(ADAPTER_DIGEST_TAG)
    where = f"{info.get('name')} version {info.get('version')}"
    if not want:
        log.warning("%s has no %s tag (registered before adapter digests were recorded): its files are loaded "
                    "unchecked", where, ADAPTER_DIGEST_TAG)
        return
    got = folder_digest(local)
    if got != want:
        shutil.rmtree(local, ignore_errors=True)
        raise AdapterDigestMismatch(
            f"{where}: the adapter files downloaded from {source or info.get('source')} have sha256 {got}, not the "
            f"{want} registered with the version ({ADAPTER_DIGEST_TAG}): refusing to load them (changed in the "
            "artifact store after registration?)")


def set_version_tags(name: str, version: str, tags: dict) -> None:
    c = client()
    for k, v in tags.items():
        c.set_model_version_tag(name, str(version), k, str(v))


@outage_guard("moving the champion alias")
def rollback(name: str, to_version: str | None = None, *, reason: str = "", before_alias=None) -> dict:
    """Move ``champion`` to ``to_version`` (default: the ``previous`` alias); the champion it replaces becomes
    ``previous``, so a rollback can itself be undone. Moving to the current champion changes nothing.
    ``before_alias(version)`` runs before the alias moves (the vLLM servers load the version)."""
    from datetime import UTC, datetime

    c = client()
    current = alias_version(name, CHAMPION)
    target = str(to_version) if to_version else alias_version(name, PREVIOUS)
    if target is None:
        raise RegistryError(f"model '{name}': no version given and no `{PREVIOUS}` alias to roll back to")
    version_info(name, target)  # raises when it does not exist
    if target == current:
        log.info("%s version %s is already the champion; nothing to do", name, target)
        return {"name": name, "version": target, "from_version": current, "moved": False, "alias": CHAMPION}
    if before_alias is not None:
        before_alias(target)
    c.set_registered_model_alias(name, CHAMPION, target)
    if current is not None:
        c.set_registered_model_alias(name, PREVIOUS, current)
    set_version_tags(name, target, {"llmops.rollback": f"{datetime.now(UTC).isoformat(timespec='seconds')} from "
                                                       f"version {current}{': ' + reason if reason else ''}"})
    log.info("rolled back %s: %s version %s -> %s (previous = %s)", name, CHAMPION, current, target, current)
    return {"name": name, "version": target, "from_version": current, "moved": True, "alias": CHAMPION}
