"""GCS source: objects matching ``gs://bucket/prefix*`` downloaded into the run's folder, then read like files."""

from __future__ import annotations

import fnmatch
import logging
import re
from pathlib import Path

from llmops.config import SourceConfig
from llmops.errors import DataError

log = logging.getLogger(__name__)


def parse_gs(url: str) -> tuple[str, str]:
    m = re.match(r"^gs://([a-z0-9][a-z0-9._-]{1,220})/(.*)$", url)
    if not m:
        raise DataError(f"source.path: '{url}' is not gs://bucket/object-or-glob")
    return m.group(1), m.group(2)


def download(source: SourceConfig, work_dir: Path) -> list[tuple[Path, str]]:
    """Download the matching objects; return (local file, gs:// name) pairs, sorted by name."""
    from llmops.data.sources.hooks import EndpointGCSHook

    bucket, pattern = parse_gs(source.path)
    prefix = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
    hook = EndpointGCSHook(gcp_conn_id=source.gcp_conn_id)
    names = sorted(n for n in hook.list(bucket, prefix=prefix)
                   if not n.endswith("/") and fnmatch.fnmatchcase(n, pattern))
    if not names:
        raise DataError(f"source.path: '{source.path}' matches no object")
    work_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for i, name in enumerate(names):
        local = work_dir / f"{i:05d}-{Path(name).name}"
        hook.download(bucket_name=bucket, object_name=name, filename=str(local))
        out.append((local, f"gs://{bucket}/{name}"))
    log.info("downloaded %d object(s) from gs://%s/%s", len(out), bucket, prefix)
    return out
