"""GCS and BigQuery sources through the real Google client libraries and the provider's hooks, against local
emulators started here (each from its own venv). Connections come from AIRFLOW_CONN_* environment variables."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from llmops.config import SourceConfig
from llmops.data.ingest import read_source
from llmops.errors import DataError
from tests.data.emulators import connection_env

ROWS = [
    {"question": f"How do I parse date number {i}?", "answer": f"Use strptime with format {i}.",
     "created_at": f"2026-01-{5 + i:02d}T10:00:00Z"} for i in range(6)
]


@pytest.fixture
def gcs(gcs_emulator, monkeypatch):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    for k, v in connection_env("llmops_gcs", gcs_emulator).items():
        monkeypatch.setenv(k, v)
    client = storage.Client(project="llmops-test", credentials=AnonymousCredentials(),
                            client_options={"api_endpoint": gcs_emulator})
    bucket = client.bucket("qa-data")
    if not bucket.exists():
        client.create_bucket("qa-data")
    return client.bucket("qa-data")


def test_gcs_glob_is_read_through_the_hook_and_named_by_object(gcs, tmp_path):
    body = "".join(json.dumps(r) + "\n" for r in ROWS)
    gcs.blob("so/2026/part-1.jsonl").upload_from_string(body[: len(body) // 2].rsplit("\n", 1)[0] + "\n")
    gcs.blob("so/2026/part-2.jsonl").upload_from_string(body.split("\n", 3)[3])
    gcs.blob("so/other/ignored.csv").upload_from_string("question,answer\nx,y\n")
    source = SourceConfig(kind="gcs", path="gs://qa-data/so/2026/*.jsonl", prompt_column="question",
                          response_column="answer", timestamp_column="created_at", gcp_conn_id="llmops_gcs")
    df, lineage = read_source(source, work_dir=tmp_path / "dl")
    assert sorted(df["prompt"]) == sorted(r["question"] for r in ROWS)
    assert lineage["files"] == ["gs://qa-data/so/2026/part-1.jsonl", "gs://qa-data/so/2026/part-2.jsonl"]
    assert set(df["source_file"]) == set(lineage["files"])
    # the interval keeps only its rows
    df, _ = read_source(source, (datetime(2026, 1, 6, tzinfo=UTC), datetime(2026, 1, 8, tzinfo=UTC)),
                        work_dir=tmp_path / "dl2")
    assert sorted(df["prompt"]) == [ROWS[1]["question"], ROWS[2]["question"]]


def test_gcs_malformed_object_is_named_with_its_line(gcs, tmp_path):
    gcs.blob("bad/a.jsonl").upload_from_string(json.dumps(ROWS[0]) + "\n{not json\n")
    source = SourceConfig(kind="gcs", path="gs://qa-data/bad/*.jsonl", prompt_column="question",
                          response_column="answer", gcp_conn_id="llmops_gcs")
    with pytest.raises(DataError, match=r"gs://qa-data/bad/a.jsonl:2: not valid JSON"):
        read_source(source, work_dir=tmp_path / "dl")


def test_gcs_glob_matching_nothing_names_the_path(gcs, tmp_path):
    source = SourceConfig(kind="gcs", path="gs://qa-data/nothing/*.jsonl", gcp_conn_id="llmops_gcs")
    with pytest.raises(DataError, match="matches no object"):
        read_source(source, work_dir=tmp_path / "dl")


QUERY = """
SELECT q.title AS question, a.body AS answer, q.creation_date AS created_at
FROM so.questions AS q JOIN so.answers AS a ON a.id = q.accepted_answer_id
WHERE q.tags LIKE '%python%' AND q.creation_date >= @start AND q.creation_date < @end
ORDER BY q.creation_date
"""


@pytest.fixture
def bigquery_tables(bq_emulator, monkeypatch):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    for k, v in connection_env("llmops_bq", bq_emulator).items():
        monkeypatch.setenv(k, v)
    client = bigquery.Client(project="llmops-test", credentials=AnonymousCredentials(),
                             client_options={"api_endpoint": bq_emulator})
    client.query("CREATE SCHEMA IF NOT EXISTS so").result()
    client.query("CREATE OR REPLACE TABLE so.questions (id INT64, title STRING, tags STRING, "
                 "accepted_answer_id INT64, creation_date TIMESTAMP)").result()
    client.query("CREATE OR REPLACE TABLE so.answers (id INT64, body STRING)").result()
    client.query("""INSERT INTO so.questions VALUES
        (1, 'How do I sort a dict by value?', 'python|dict', 11, TIMESTAMP '2026-01-05 10:00:00'),
        (2, 'How do I read a CSV file?', 'python|csv', 12, TIMESTAMP '2026-01-13 10:00:00'),
        (3, 'How do I center a div?', 'css', 13, TIMESTAMP '2026-01-06 10:00:00'),
        (4, 'How do I reverse a list?', 'python', NULL, TIMESTAMP '2026-01-07 10:00:00')""").result()
    client.query("""INSERT INTO so.answers VALUES (11, '<p>Use <code>sorted(d.items(), key=...)</code></p>'),
        (12, '<p>Use the csv module.</p>'), (13, '<p>Flexbox.</p>')""").result()
    return client


def test_bigquery_query_takes_the_interval_as_parameters(bigquery_tables):
    source = SourceConfig(kind="bigquery", query=QUERY, prompt_column="question", response_column="answer",
                          timestamp_column="created_at", gcp_conn_id="llmops_bq")
    week1 = (datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 1, 12, tzinfo=UTC))
    df, lineage = read_source(source, week1)
    assert df["prompt"].tolist() == ["How do I sort a dict by value?"]  # joined, tag-filtered, in the interval
    assert df["response"].tolist() == ["<p>Use <code>sorted(d.items(), key=...)</code></p>"]
    assert lineage["parameters"] == {"start": "2026-01-05T00:00:00+00:00", "end": "2026-01-12T00:00:00+00:00"}
    assert lineage["query"] == QUERY and "is_anonymous" not in json.dumps(lineage)
    df, _ = read_source(source)  # no interval: every row
    assert len(df) == 2


def test_bigquery_empty_interval_gives_no_rows(bigquery_tables):
    source = SourceConfig(kind="bigquery", query=QUERY, prompt_column="question", response_column="answer",
                          gcp_conn_id="llmops_bq")
    df, _ = read_source(source, (datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 1, 8, tzinfo=UTC)))
    assert len(df) == 0
