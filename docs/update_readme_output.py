"""Rewrite the README's sample ``make demo`` output from a real run, instead of pasting it.

    python docs/update_readme_output.py                  # runs `make demo`, then rewrites the block
    python docs/update_readme_output.py --from-log FILE  # a printout saved before (make demo | tee FILE)

The block between the two ``make demo output`` markers in README.md becomes one line saying when, at which commit and
on which machine it was recorded, then the summary the demo printed (from its "what the pipeline produced" banner
to "demo pipeline took ...s"), with the project's absolute path and run ids replaced by ``...`` and ``<run>``.
Nothing is written when the run fails or prints no summary.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BEGIN = "<!-- BEGIN make demo output (python docs/update_readme_output.py) -->"
END = "<!-- END make demo output -->"
BANNER = "=" * 72


def summary(printout: str, root: Path = ROOT) -> list[str]:
    """The demo's summary lines: after the banner that opens it, through the 'demo pipeline took' line."""
    lines = printout.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("use case ") and "what the pipeline produced" in line]
    if not starts:
        raise ValueError("no summary in the printout (did the demo finish?)")
    body = lines[starts[-1] + 1:]
    if body and body[0] == BANNER:
        body = body[1:]
    out = []
    for line in body:
        line = line.replace(str(root), "...")
        line = re.sub(r"(runs/[a-z0-9_]+/)[^/\s]+/", r"\1<run>/", line)
        out.append(line.rstrip())
        if line.startswith("demo pipeline took"):
            break
    while out and not out[-1]:
        out.pop()
    return out


def machine() -> str:
    model = ""
    try:
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), "")
    except OSError:
        pass
    return f"{model or 'CPU'}, {os.cpu_count()} cores"


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def block(lines: list[str], *, date: str, at_commit: str, on: str) -> str:
    return "\n".join([BEGIN, f"Recorded on {date}, at commit {at_commit}, on {on}:", "", "```", *lines, "```", END])


def rewrite(readme: str, new_block: str) -> str:
    if readme.count(BEGIN) != 1 or readme.count(END) != 1:
        raise ValueError(f"README.md needs exactly one pair of markers: {BEGIN} ... {END}")
    head, rest = readme.split(BEGIN, 1)
    return head + new_block + rest.split(END, 1)[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from-log", type=Path, help="a saved `make demo` printout instead of a new run")
    parser.add_argument("--root", type=Path, default=ROOT, help="with --from-log: the checkout the printout came "
                        "from (e.g. a fresh clone), whose path is replaced by '...'; default: this one")
    args = parser.parse_args(argv)
    if args.from_log:
        printout = args.from_log.read_text(encoding="utf-8")
    else:
        lines = []
        with subprocess.Popen(["make", "demo"], cwd=ROOT, stdout=subprocess.PIPE, text=True) as run:
            for line in run.stdout:  # shown as it comes, kept for the block
                sys.stdout.write(line)
                lines.append(line)
        printout = "".join(lines)
        if run.returncode:
            print(f"make demo failed (exit {run.returncode}): README.md left as it is", file=sys.stderr)
            return run.returncode
    new = block(summary(printout, args.root), date=datetime.date.today().isoformat(), at_commit=commit(), on=machine())
    README.write_text(rewrite(README.read_text(encoding="utf-8"), new), encoding="utf-8")
    print(f"rewrote the sample output in {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
