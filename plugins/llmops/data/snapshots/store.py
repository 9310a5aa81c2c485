"""Where snapshots live: a local folder (the default, ``${LLMOPS_HOME}/snapshots/<use_case>``) or a GCS prefix
(``snapshots.root: gs://bucket/prefix`` with ``snapshots.gcp_conn_id``).

A snapshot is built in a local scratch folder, then published. Locally, publishing is one atomic rename. On GCS,
every file is uploaded first and ``manifest.json`` last, and readers only see a snapshot once its manifest
exists, so a failed upload leaves nothing visible. Either way a snapshot that already exists is never rewritten.
To be read (training, evaluation, serving), a GCS snapshot is downloaded once into
``${LLMOPS_HOME}/cache/snapshots/<use_case>/<id>/`` (again atomically).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from llmops import names, paths

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"


class LocalStore:
    def __init__(self, root: Path, use_case: str | None = None):
        self.root = Path(root)
        self.use_case = use_case or self.root.name

    def uri(self, sid: str) -> str:
        return (self.root / sid).resolve().as_uri()

    def where(self, sid: str) -> str:
        return str(self.root / sid)

    def scratch(self) -> Path:
        """Build snapshots next to their final place, so publishing is a rename on one filesystem."""
        self.root.mkdir(parents=True, exist_ok=True)
        return self.root

    def _dir(self, sid: str) -> Path:
        """The snapshot's folder: the id checked by its shape, the path checked to stay inside the root."""
        return names.inside(self.root, self.root / names.snapshot_id(sid), "snapshot_id")

    def manifest(self, sid: str) -> dict | None:
        path = self._dir(sid) / MANIFEST
        return json.loads(path.read_text()) if path.exists() else None

    def manifests(self) -> list[dict]:
        if not self.root.exists():
            return []
        return [json.loads(p.read_text()) for p in self.root.glob(f"*/{MANIFEST}") if not p.parent.name.startswith(".")]

    def publish(self, built: Path, sid: str) -> bool:
        """Move the built folder into place; False when that id exists already (the built copy is left)."""
        final = self.root / sid
        try:
            os.rename(built, final)
        except OSError:
            if not (final / MANIFEST).exists():
                raise
            return False
        return True

    def local_dir(self, sid: str) -> Path:
        return self._dir(sid)


class GCSStore:
    def __init__(self, url: str, use_case: str, gcp_conn_id: str):
        from llmops.data.sources.gcs import parse_gs

        self.bucket, prefix = parse_gs(url.rstrip("/") + "/")
        self.prefix = "/".join(p for p in (prefix.strip("/"), use_case) if p)
        self.use_case, self.gcp_conn_id = use_case, gcp_conn_id

    def _hook(self):
        from llmops.data.sources.hooks import EndpointGCSHook

        return EndpointGCSHook(gcp_conn_id=self.gcp_conn_id)

    def uri(self, sid: str) -> str:
        return f"gs://{self.bucket}/{self.prefix}/{sid}"

    where = uri

    def scratch(self) -> Path:
        path = paths.llmops_home() / "tmp" / "snapshots" / self.use_case
        path.mkdir(parents=True, exist_ok=True)
        return path

    def manifest(self, sid: str) -> dict | None:
        hook, name = self._hook(), f"{self.prefix}/{names.snapshot_id(sid)}/{MANIFEST}"
        if not hook.exists(self.bucket, name):
            return None
        return json.loads(hook.download(bucket_name=self.bucket, object_name=name))

    def manifests(self) -> list[dict]:
        hook = self._hook()
        names = [n for n in hook.list(self.bucket, prefix=f"{self.prefix}/")
                 if n.endswith(f"/{MANIFEST}") and n.count("/") == self.prefix.count("/") + 2]
        return [json.loads(hook.download(bucket_name=self.bucket, object_name=n)) for n in names]

    def publish(self, built: Path, sid: str) -> bool:
        """Upload every file, the manifest last; False when that id exists already."""
        hook = self._hook()
        if hook.exists(self.bucket, f"{self.prefix}/{sid}/{MANIFEST}"):
            return False
        files = sorted(p for p in built.rglob("*") if p.is_file() and p.name != MANIFEST)
        for p in [*files, built / MANIFEST]:
            hook.upload(bucket_name=self.bucket, object_name=f"{self.prefix}/{sid}/{p.relative_to(built).as_posix()}",
                        filename=str(p))
        log.info("uploaded snapshot %s (%d files) to %s", sid, len(files) + 1, self.uri(sid))
        return True

    def local_dir(self, sid: str) -> Path:
        """A local copy of the snapshot (downloaded once, atomically)."""
        cache = paths.llmops_home() / "cache" / "snapshots" / self.use_case / names.snapshot_id(sid)
        if (cache / MANIFEST).exists():
            return cache
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{sid}.", dir=cache.parent))
        try:
            hook = self._hook()
            for name in hook.list(self.bucket, prefix=f"{self.prefix}/{sid}/"):
                target = tmp / name[len(self.prefix) + len(sid) + 2:]
                target.parent.mkdir(parents=True, exist_ok=True)
                hook.download(bucket_name=self.bucket, object_name=name, filename=str(target))
            try:
                os.rename(tmp, cache)
            except OSError:
                if not (cache / MANIFEST).exists():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        log.info("downloaded snapshot %s from %s to %s", sid, self.uri(sid), cache)
        return cache


def store_for(use_case, root: Path | str | None = None, gcp_conn_id: str = "google_cloud_default"):
    """The store of a use case's snapshots.

    ``use_case``: the use case's config (its ``snapshots.root`` and ``gcp_conn_id`` decide where), a store (returned
    as is), or a bare name (the default ``${LLMOPS_HOME}/snapshots/<name>``). Nothing is looked up by name: the
    caller that holds the config passes it down, so a broken config can never point a reader at another store.
    ``root`` overrides: a local folder (used as is) or ``gs://bucket/prefix`` (snapshots under
    ``<prefix>/<use_case>/``)."""
    if isinstance(use_case, LocalStore | GCSStore):
        return use_case
    name = use_case if isinstance(use_case, str) else use_case.name
    if root is None and not isinstance(use_case, str) and use_case.snapshots.root:
        settings = use_case.snapshots
        if not settings.root.startswith("gs://"):
            return LocalStore(paths.resolve(settings.root) / name, name)
        root, gcp_conn_id = settings.root, settings.gcp_conn_id
    if root is None:
        return LocalStore(paths.snapshots_root(name), name)
    if str(root).startswith("gs://"):
        return GCSStore(str(root), name, gcp_conn_id)
    return LocalStore(Path(root), name)
