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
from pathlib import Path

from llmops import names, paths
from llmops.atomic import atomic_dir
from llmops.errors import InvalidName

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"


def _child(root: Path, sid: str) -> Path:
    """``root/<sid>`` resolved, refused unless it is a folder directly inside ``root``. The id's shape is checked
    where it enters (:func:`llmops.names.snapshot_id`); this only keeps every path built from it inside the root."""
    root_r = Path(root).resolve()
    path = names.inside(root_r, root_r / sid, "snapshot_id")
    if path.parent != root_r:
        raise InvalidName(f"snapshot_id: {sid!r} is refused: must name a folder directly inside {root_r}")
    return path


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

    def manifest(self, sid: str) -> dict | None:
        """The snapshot's manifest, or None while it does not exist."""
        path = _child(self.root, sid) / MANIFEST
        return json.loads(path.read_text()) if path.exists() else None

    def ids(self) -> list[str]:
        """The ids of every complete snapshot (those with a manifest), in no particular order."""
        if not self.root.exists():
            return []
        return [p.parent.name for p in self.root.glob(f"*/{MANIFEST}") if not p.parent.name.startswith(".")]

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
        return _child(self.root, sid)


class GCSStore:
    def __init__(self, url: str, use_case: str, gcp_conn_id: str, folder: str | None = None):
        """``folder``: the use case's folder under the prefix (and in the local scratch and cache), by default
        its name (a kind of snapshot may keep its own: :meth:`llmops.data.snapshots.kinds.SnapshotKind.folder`)."""
        from llmops.data.sources.gcs import parse_gs

        self.bucket, prefix = parse_gs(url.rstrip("/") + "/")
        self.folder = folder or use_case
        self.prefix = "/".join(p for p in (prefix.strip("/"), self.folder) if p)
        self.use_case, self.gcp_conn_id = use_case, gcp_conn_id

    def _hook(self):
        from llmops.data.sources.hooks import EndpointGCSHook

        return EndpointGCSHook(gcp_conn_id=self.gcp_conn_id)

    def uri(self, sid: str) -> str:
        return f"gs://{self.bucket}/{self.prefix}/{sid}"

    where = uri

    def scratch(self) -> Path:
        path = paths.llmops_home() / "tmp" / "snapshots" / self.folder
        path.mkdir(parents=True, exist_ok=True)
        return path

    def manifest(self, sid: str) -> dict | None:
        """The snapshot's manifest, or None while it does not exist (it is uploaded last)."""
        hook, name = self._hook(), f"{self.prefix}/{sid}/{MANIFEST}"
        if not hook.exists(self.bucket, name):
            return None
        return json.loads(hook.download(bucket_name=self.bucket, object_name=name))

    def ids(self) -> list[str]:
        """The ids of every complete snapshot (those whose manifest is uploaded), in no particular order."""
        depth = self.prefix.count("/") + 2
        return [n.split("/")[-2] for n in self._hook().list(self.bucket, prefix=f"{self.prefix}/")
                if n.endswith(f"/{MANIFEST}") and n.count("/") == depth]

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
        cache = _child(paths.llmops_home() / "cache" / "snapshots" / self.folder, sid)
        if (cache / MANIFEST).exists():
            return cache
        with atomic_dir(cache, exists="keep", complete=lambda p: (p / MANIFEST).exists()) as built:
            hook = self._hook()
            for name in hook.list(self.bucket, prefix=f"{self.prefix}/{sid}/"):
                target = built.path / name[len(self.prefix) + len(sid) + 2:]
                target.parent.mkdir(parents=True, exist_ok=True)
                hook.download(bucket_name=self.bucket, object_name=name, filename=str(target))
        log.info("downloaded snapshot %s from %s to %s", sid, self.uri(sid), cache)
        return cache


def store_for(cfg, kind=None) -> LocalStore | GCSStore:
    """The store of a use case's snapshots of ``kind`` (default: dataset snapshots), from its config:
    ``snapshots.root`` (a local folder, or ``gs://bucket/prefix`` with ``snapshots.gcp_conn_id``; snapshots under
    ``<root>/<folder>/``, the folder being the use case's name plus the kind's suffix), by default
    ``${LLMOPS_HOME}/snapshots/<folder>``. Called once, where the config enters (see
    :meth:`llmops.data.snapshots.handle.Snapshots.of`); nothing is looked up by name, so a broken config can never
    point a reader at another store."""
    name, root = cfg.name, cfg.snapshots.root
    folder = kind.folder(name) if kind is not None else name
    if not root:
        return LocalStore(paths.snapshots_root(folder), name)
    if root.startswith("gs://"):
        return GCSStore(root, name, cfg.snapshots.gcp_conn_id, folder)
    return LocalStore(paths.resolve(root) / folder, name)
