"""What only the pgvector backend has: its connection (an Airflow connection, else LLMOPS_PGVECTOR_URL), the binary
COPY format, one table per version with an HNSW index, and clear errors for a missing table or an unreachable
server. The behaviour both backends share is tested over both (the `backend` fixture)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from retrieval_cases import retrieval_config

from llmops.errors import ConfigError, IndexNotFound, IndexUnavailable
from llmops.retrieval import build
from llmops.retrieval.pgvector import Database, connection_url, copy_payload, parse_copy
from llmops.retrieval.search import open_index


def test_the_binary_copy_format_round_trips():
    import struct

    vectors = np.random.default_rng(0).normal(size=(7, 5)).astype(np.float32)
    payload = copy_payload(vectors)
    header = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
    first = struct.pack(">hii", 2, 4, 0) + struct.pack(">ihh", 4 + 4 * 5, 5, 0) + vectors[0].astype(">f4").tobytes()
    assert payload.startswith(header + first) and payload.endswith(b"\xff\xff")
    assert len(payload) == len(header) + 7 * len(first) + 2
    # what COPY (SELECT embedding ...) TO STDOUT sends: one field per tuple, the same floats in row order
    reply = header + b"".join(struct.pack(">hihh", 1, 4 + 4 * 5, 5, 0) + v.astype(">f4").tobytes()
                              for v in vectors) + b"\xff\xff"
    assert np.array_equal(parse_copy(reply, 5), vectors)


def test_the_connection_is_an_airflow_connection_or_the_url_variable(monkeypatch):
    monkeypatch.delenv("LLMOPS_PGVECTOR_URL", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_LLMOPS_PGVECTOR_T", raising=False)
    with pytest.raises(ConfigError, match="no Airflow connection 'llmops_pgvector_t' and no LLMOPS_PGVECTOR_URL"):
        connection_url("llmops_pgvector_t")
    monkeypatch.setenv("LLMOPS_PGVECTOR_URL", "postgresql://reader:pw@db:5432/llmops_indexes")
    assert connection_url("llmops_pgvector_t") == "postgresql://reader:pw@db:5432/llmops_indexes"
    # an Airflow connection wins (here from the environment, as a deployment's secrets backend would give it)
    monkeypatch.setenv("AIRFLOW_CONN_LLMOPS_PGVECTOR_T", json.dumps({
        "conn_type": "postgres", "host": "pg.internal", "port": 6543, "login": "indexer", "password": "p@ss/word",
        "schema": "llmops_indexes"}))
    assert connection_url("llmops_pgvector_t") == "postgresql://indexer:p%40ss%2Fword@pg.internal:6543/llmops_indexes"


def test_an_unreachable_server_is_unavailable_naming_it_without_the_password(monkeypatch):
    import socket

    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("LLMOPS_PGVECTOR_URL", f"postgresql://u:secret-pw@127.0.0.1:{port}/idx")
    with pytest.raises(IndexUnavailable) as e, Database({"conn_id": "llmops_pgvector_none"}).cursor():
        pass
    assert f"postgresql://127.0.0.1:{port}/idx" in str(e.value) and "secret-pw" not in str(e.value)
    assert "'llmops_pgvector_none'" in str(e.value)


def test_config_accepts_pgvector_and_names_bad_fields():
    cfg = retrieval_config(backend="pgvector")
    assert (cfg.pgvector.conn_id, cfg.pgvector.schema_name, cfg.pgvector.m) == ("llmops_pgvector", "llmops_indexes", 16)
    with pytest.raises(ValueError, match="pgvector.schema_name"):
        retrieval_config(backend="pgvector", pgvector={"schema_name": "Bad-Name; drop"})


@pytest.fixture
def pg_rcfg(pgvector_url, monkeypatch):
    import secrets

    monkeypatch.setenv("LLMOPS_PGVECTOR_URL", pgvector_url)
    return retrieval_config(backend="pgvector", pgvector={"conn_id": "llmops_pgvector_test",
                                                         "schema_name": f"t_{secrets.token_hex(4)}", "m": 8})


def test_one_table_per_version_with_an_hnsw_cosine_index(embedder, pg_rcfg, docs):
    built = build.build_index("uc", "snap1", docs, pg_rcfg, embedder)
    table = f"uc__{built['index_id']}"
    assert built["pgvector"]["table"] == table and "password" not in json.dumps(built)
    db = Database(pg_rcfg.pgvector.model_dump())
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM {}.{}".format(pg_rcfg.pgvector.schema_name, f'"{table}"'))
        assert cur.fetchone()[0] == built["chunks"]
        cur.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = %s",
                    (pg_rcfg.pgvector.schema_name, table))
        defs = " ".join(r[0] for r in cur.fetchall())
    assert "USING hnsw (embedding vector_cosine_ops)" in defs and "m='8'" in defs.replace(" ", "")
    # the dense side answers like the exact search over the same vectors (HNSW on 20 rows finds them all)
    index = open_index("uc", built["index_id"], embedder)
    vectors = build.backend_of(index.manifest).vectors(index.folder, index.manifest)
    query = embedder.encode(["How do I accept TCP connections on a port?"])
    exact = np.argsort(-(vectors @ query[0]))[:5].tolist()
    assert [r for r, _ in index.dense_rows(query, 5)[0]] == exact
    db.close()


def test_a_dropped_table_is_index_not_found_naming_it(embedder, pg_rcfg, docs):
    built = build.build_index("uc", "snap1", docs, pg_rcfg, embedder)
    index = open_index("uc", built["index_id"], embedder)
    schema, table = pg_rcfg.pgvector.schema_name, f"uc__{built['index_id']}"
    db = Database(pg_rcfg.pgvector.model_dump())
    with db.cursor() as cur:
        cur.execute(f'DROP TABLE {schema}."{table}"')
    db.close()
    with pytest.raises(IndexNotFound, match=f"pgvector table {schema}.{table} is missing"):
        index.search("gzip", "dense")
    with pytest.raises(IndexNotFound, match=f"its pgvector table {schema}.{table} is missing from postgresql://"):
        open_index("uc", built["index_id"], embedder)
