"""`python -m llmops.cli snapshots NAME [--show ID]`: the documented way to list snapshots and read a manifest."""

from __future__ import annotations

import json

import pytest

from llmops.cli import main
from llmops.config import SplitConfig
from tests.data.conftest import local_snapshots, make_rows

UC = "cli_qa"


@pytest.fixture(autouse=True)
def cli_use_case(use_case_file):
    """The CLI reads the use case's config (its snapshot store); this one keeps the default local store."""
    use_case_file(UC)


def write(df, **kw) -> dict:
    return local_snapshots(UC, SplitConfig()).write_frame(df, source={"kind": "local"}, validation={"success": True},
                                                          **kw)


def test_lists_snapshots_with_rows_partition_and_parents(llmops_home, capsys):
    assert main(["snapshots", UC]) == 0
    assert f"no snapshots for {UC}" in capsys.readouterr().out
    first = write(make_rows(60), partition_key="2026-01-05T00:00:00")
    second = write(make_rows(60, start=100), partition_key="2026-01-12T00:00:00")
    assert main(["snapshots", UC]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["snapshot", "created", "(UTC)"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == {first["snapshot_id"], second["snapshot_id"]}
    row = rows[second["snapshot_id"]]
    assert "2026-01-12T00:00:00" in row
    assert [int(row[3]), int(row[4])] == [second["rows"]["train"], second["rows"]["eval"]]
    assert row[-2:] == ["yes", first["snapshot_id"]]  # valid, and its parent is the first snapshot


def test_show_prints_the_manifest_and_an_unknown_id_is_a_clear_error(llmops_home, capsys):
    m = write(make_rows(60))
    assert main(["snapshots", UC, "--show", m["snapshot_id"]]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["snapshot_id"] == m["snapshot_id"] and shown["rows"] == m["rows"]
    assert [s["step"] for s in shown["steps"]] == ["leakage_check"]
    assert main(["snapshots", UC, "--show", "0000000000000000"]) == 1
    err = capsys.readouterr().err
    assert "has no snapshot '0000000000000000'" in err and "Traceback" not in err


@pytest.mark.parametrize("bad", ["../x", "4394C71ABE63714E", "4394c71abe63714e/.."])
def test_a_malformed_id_is_refused_at_the_command_line_before_any_read(llmops_home, capsys, bad):
    assert main(["snapshots", UC, "--show", bad]) == 1
    err = capsys.readouterr().err
    assert f"--show: {bad!r} is refused: a snapshot id is 16 lower-case hexadecimal digits" in err
    assert "Traceback" not in err and not (llmops_home / "snapshots").exists()
