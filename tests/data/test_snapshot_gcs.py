"""Snapshots stored on GCS (``snapshots.root: gs://bucket/prefix``) through the provider's GCSHook, against the
local GCS emulator: published with the manifest last, never rewritten, listed and read back through a cache."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from llmops import paths
from llmops.cli import main
from llmops.config import load_by_name
from llmops.data.snapshots.handle import Snapshots
from llmops.errors import ConfigError, SnapshotNotFound
from tests.data.conftest import make_rows
from tests.data.emulators import connection_env

UC = "gcs_qa"
BUCKET = "llmops-snapshots"


@pytest.fixture
def gcs_root(gcs_emulator, tmp_path, monkeypatch):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    for k, v in connection_env("llmops_snapshots", gcs_emulator).items():
        monkeypatch.setenv(k, v)
    client = storage.Client(project="llmops-test", credentials=AnonymousCredentials(),
                            client_options={"api_endpoint": gcs_emulator})
    if not client.bucket(BUCKET).exists():
        client.create_bucket(BUCKET)
    prefix = f"team/{tmp_path.name}"  # one prefix per test: the emulator lives for the whole session
    cfg = yaml.safe_load((paths.PROJECT_ROOT / "include" / "use_cases" / "stackoverflow_qa.yaml").read_text())
    cfg["name"] = UC
    cfg["snapshots"].update(root=f"gs://{BUCKET}/{prefix}", gcp_conn_id="llmops_snapshots", train_on="last_n",
                            last_n=2)
    (tmp_path / "use_cases").mkdir()
    (tmp_path / "use_cases" / f"{UC}.yaml").write_text(yaml.safe_dump(cfg))
    monkeypatch.setenv("LLMOPS_USE_CASES_DIR", str(tmp_path / "use_cases"))
    bucket = client.bucket(BUCKET)

    def objects() -> dict[str, int]:
        return {b.name[len(prefix) + 1:]: b.generation for b in client.list_blobs(BUCKET, prefix=f"{prefix}/")}

    return {"bucket": bucket, "prefix": prefix, "objects": objects}


def snaps() -> Snapshots:
    """A fresh handle on the use case's snapshots, as the operator or CLI that holds its config opens it (its
    snapshots.root is gs://)."""
    return Snapshots.of(load_by_name(UC))


def write(df, **kw):
    return snaps().write_frame(df, source={"kind": "local"}, validation={"success": True}, **kw)


def test_snapshot_is_published_to_gcs_and_read_back(gcs_root, llmops_home):
    m = write(make_rows(60), partition_key="2026-01-05T00:00:00")
    sid = m["snapshot_id"]
    assert m["uri"] == f"gs://{BUCKET}/{gcs_root['prefix']}/{UC}/{sid}"
    objects = gcs_root["objects"]()
    assert set(objects) >= {f"{UC}/{sid}/{f}" for f in ("train.parquet", "eval.parquet", "train.jsonl",
                                                          "eval.jsonl", "manifest.json")}
    assert not (llmops_home / "snapshots").exists()  # nothing kept locally but the scratch folder, now empty
    assert not any((llmops_home / "tmp" / "snapshots" / UC).iterdir())

    assert snaps().manifest(sid)["rows"] == m["rows"]
    assert [s["snapshot_id"] for s in snaps().manifests()] == [sid] and snaps().latest_id() == sid
    train = snaps().load_split(sid, "train")
    assert len(train) == m["rows"]["train"]
    assert (llmops_home / "cache" / "snapshots" / UC / sid / "train.parquet").exists()

    # the same rows again: same id, and not one object is rewritten
    assert write(make_rows(60).sample(frac=1, random_state=3))["snapshot_id"] == sid
    assert gcs_root["objects"]() == objects


def test_a_failed_write_leaves_nothing_visible(gcs_root, llmops_home):
    def batches():
        yield make_rows(30)
        raise OSError("source went away")

    with pytest.raises(OSError, match="source went away"):
        snaps().write(batches(), source={}, validation={})
    assert gcs_root["objects"]() == {}
    assert snaps().manifests() == []
    with pytest.raises(SnapshotNotFound, match=f"gs://{BUCKET}/{gcs_root['prefix']}/{UC}/0000000000000000"):
        snaps().manifest("0000000000000000")


def test_last_n_union_and_cli_work_on_gcs(gcs_root, llmops_home, capsys):
    a = write(make_rows(60), interval={"start": "2026-01-05T00:00:00+00:00", "end": "2026-01-12T00:00:00+00:00"})
    b = write(make_rows(60, start=40), interval={"start": "2026-01-12T00:00:00+00:00",
                                                 "end": "2026-01-19T00:00:00+00:00"})
    sid, why = snaps().choose(None, [{"snapshot_id": b["snapshot_id"]}])
    assert "union of the last 2" in why
    union = snaps().manifest(sid)
    assert union["parents"] == [a["snapshot_id"], b["snapshot_id"]]
    assert union["rows"]["input"] == 100  # rows 40-59 appear in both and are kept once
    both = pd.concat([snaps().load_split(sid, p) for p in ("train", "eval")])
    assert both["prompt"].is_unique and len(both) == 100
    assert main(["snapshots", UC]) == 0
    listed = capsys.readouterr().out
    assert a["snapshot_id"] in listed and b["snapshot_id"] in listed and sid in listed


def test_an_unknown_scheme_for_the_root_is_a_config_error(tmp_path, monkeypatch):
    cfg = yaml.safe_load((paths.PROJECT_ROOT / "include" / "use_cases" / "stackoverflow_qa.yaml").read_text())
    cfg["name"] = "bad_root"
    cfg["snapshots"]["root"] = "s3://bucket/prefix"
    (tmp_path / "bad_root.yaml").write_text(yaml.safe_dump(cfg))
    monkeypatch.setenv("LLMOPS_USE_CASES_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match="snapshots.root"):
        load_by_name("bad_root")
    from llmops.cli import main

    assert main(["snapshots", "bad_root"]) == 1  # never silently listed from the default local store instead


def test_the_dataset_card_is_uploaded_before_the_manifest_and_cached(gcs_root, llmops_home, tmp_path, monkeypatch):
    from datasets import load_dataset

    from llmops.data.sources.hooks import EndpointGCSHook

    uploaded = []
    real_upload = EndpointGCSHook.upload

    def upload(self, *args, **kwargs):
        uploaded.append(kwargs["object_name"].rsplit("/", 1)[-1])
        return real_upload(self, *args, **kwargs)

    monkeypatch.setattr(EndpointGCSHook, "upload", upload)
    m = write(make_rows(60))
    assert "README.md" in uploaded and uploaded[-1] == "manifest.json"
    assert f"{UC}/{m['snapshot_id']}/README.md" in gcs_root["objects"]()
    folder = snaps().dataset_folder(m["snapshot_id"])
    assert folder == llmops_home / "cache" / "snapshots" / UC / m["snapshot_id"]
    assert (folder / "README.md").exists()
    ds = load_dataset(str(folder), cache_dir=str(tmp_path / "hf-cache"))
    assert {s: ds[s].num_rows for s in ds} == {"train": m["rows"]["train"], "eval": m["rows"]["eval"]}
