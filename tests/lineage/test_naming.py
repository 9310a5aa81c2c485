"""Dataset identifiers: the same thing gets the same (namespace, name) on both sides; no credential survives."""

from __future__ import annotations

from pathlib import Path

from llmops.lineage import naming


def test_file_uri_and_path_name_the_same_dataset(tmp_path):
    folder = tmp_path / "snapshots" / "qa" / "abc"
    assert naming.from_uri(folder.as_uri()) == naming.from_uri(str(folder)) == ("file", str(folder))
    assert naming.to_uri(*naming.from_uri(folder.as_uri())) == folder.as_uri()


def test_gcs_uri_is_bucket_namespace_and_object_name():
    assert naming.from_uri("gs://my-bucket/snaps/qa/abc") == ("gs://my-bucket", "snaps/qa/abc")
    assert naming.to_uri("gs://my-bucket", "snaps/qa/abc") == "gs://my-bucket/snaps/qa/abc"


def test_credentials_and_query_are_dropped_from_uris():
    assert naming.redact_uri("postgresql+psycopg2://mlflow:hunter2@db:5432/mlflow?sslkey=/k") == \
        "postgresql+psycopg2://db:5432/mlflow"
    assert naming.redact_uri("https://user:tok@mlflow.example.com/api?token=x#f") == "https://mlflow.example.com/api"
    assert naming.redact_uri("sqlite:////srv/llmops/mlflow.db") == "sqlite:////srv/llmops/mlflow.db"
    ns, name = naming.model_version("http://u:secret@mlflow:5000", "qa-lora", 3)
    assert (ns, name) == ("http://mlflow:5000", "qa-lora/3") and "secret" not in ns


def test_bigquery_query_names_the_tables_it_reads():
    query = """SELECT q.title, a.body FROM `bigquery-public-data.stackoverflow.posts_questions` q
               JOIN `bigquery-public-data.stackoverflow.posts_answers` a ON a.id = q.accepted_answer_id
               WHERE q.creation_date >= @start AND q.creation_date < @end"""
    assert naming.source_datasets({"kind": "bigquery", "query": query}) == [
        ("bigquery", "bigquery-public-data.stackoverflow.posts_answers"),
        ("bigquery", "bigquery-public-data.stackoverflow.posts_questions")]


def test_source_files_and_gcs_objects():
    lineage = {"kind": "gcs", "files": ["gs://b/raw/a.jsonl", "gs://b/raw/b.jsonl"]}
    assert naming.source_datasets(lineage) == [("gs://b", "raw/a.jsonl"), ("gs://b", "raw/b.jsonl")]
    assert naming.source_datasets({"kind": "files", "files": ["/data/qa.jsonl"]}) == [("file", "/data/qa.jsonl")]


def test_base_model_is_a_hub_id_or_a_local_folder(tmp_path):
    assert naming.base_model("Qwen/Qwen2.5-0.5B") == ("huggingface", "Qwen/Qwen2.5-0.5B")
    assert naming.base_model(str(tmp_path)) == ("file", str(Path(tmp_path)))
