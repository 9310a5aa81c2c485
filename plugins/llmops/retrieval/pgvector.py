"""The pgvector backend: an index version's vectors in PostgreSQL, one table per version with an HNSW index.

**Where**: schema ``pgvector.schema_name`` (default ``llmops_indexes``) of the database the connection names, one
table ``<use_case>__<index_id>`` per version (``row int4`` = the passage's row in ``chunks.parquet``,
``embedding vector(<dimension>)``) with an HNSW index (``vector_cosine_ops``, ``m`` and ``ef_construction`` from the
config; both are part of the index id, since they decide what a query finds).

**Atomic**: the table is built in the staging schema (``<schema>_staging``, named ``b<pid>__<index_id>`` after the
building connection's backend pid), filled with one binary ``COPY``, indexed, committed, then published by
``ALTER TABLE ... RENAME`` and ``SET SCHEMA`` in one transaction. A build killed midway publishes nothing: its
staging table is never renamed, and the next build of the same id drops it once its connection is gone (a staging
table whose pid is still connected is a build in progress and is left alone). The index version becomes visible
only when its folder (``chunks.parquet`` and ``manifest.json``, written after the table) is renamed into place
(:mod:`llmops.retrieval.build`); a table published by a build killed before that is the same content (the id is a
hash of the inputs) and the retry keeps it.

**BM25** stays as the embedded backend keeps it (``bm25s`` files in the version's folder, beside ``chunks.parquet``),
not PostgreSQL full-text search: ``ts_rank`` is not BM25 (no inverse document frequency, another length
normalisation), so the ``bm25`` and ``hybrid`` figures, and the gate comparing versions, would change meaning with
the backend; both backends rank lexically the same way, and only the dense side moves to PostgreSQL. The folder is
on the volume every worker and the API share already (it holds the passages' text the citations quote).

**Connection**: the Airflow connection ``pgvector.conn_id`` (default ``llmops_pgvector``; host, port, login,
password, schema = database), read through Airflow's hook as the project's other connections are; without Airflow
or that connection (the API process), the URL in ``LLMOPS_PGVECTOR_URL``.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from llmops.errors import ConfigError, IndexNotFound, IndexUnavailable
from llmops.retrieval.backend import EmbeddedBackend, EmbeddedSearcher

log = logging.getLogger(__name__)
URL_ENV = "LLMOPS_PGVECTOR_URL"
DEFAULTS = {"conn_id": "llmops_pgvector", "schema_name": "llmops_indexes", "m": 16, "ef_construction": 64,
            "ef_search": 100}
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = struct.pack(">h", -1)


def connection_url(conn_id: str) -> str:
    """The PostgreSQL URL of the Airflow connection ``conn_id``, else ``LLMOPS_PGVECTOR_URL``."""
    conn = None
    try:
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(conn_id)
    except Exception as e:  # no Airflow here, or no such connection: the environment decides
        log.info("no Airflow connection %r (%s): pgvector URL from %s", conn_id, type(e).__name__, URL_ENV)
    if conn is not None:
        if not conn.host:
            raise ConfigError(f"Airflow connection {conn_id!r}: needs a host (and login, password, schema = database)")
        from urllib.parse import quote

        auth = quote(conn.login or "", safe="") + (f":{quote(conn.password, safe='')}" if conn.password else "")
        return f"postgresql://{auth + '@' if auth else ''}{conn.host}:{conn.port or 5432}/{conn.schema or 'postgres'}"
    url = os.environ.get(URL_ENV)
    if not url:
        raise ConfigError(f"retrieval.pgvector.conn_id: no Airflow connection {conn_id!r} and no {URL_ENV}: create "
                          f"the connection (AIRFLOW_CONN_{conn_id.upper()}) or set {URL_ENV}=postgresql://...")
    return url


def _redacted(url: str) -> str:
    from llmops.lineage.naming import redact_uri

    return redact_uri(url)


class Database:
    """One psycopg2 connection to the index database, opened on first use, reopened after a broken one."""

    def __init__(self, settings: dict):
        self.settings = {**DEFAULTS, **(settings or {})}
        self._conn = None
        self._lock = threading.RLock()

    @property
    def url(self) -> str:
        return connection_url(self.settings["conn_id"])

    def connect(self):
        import psycopg2

        url = self.url
        try:
            conn = psycopg2.connect(url, connect_timeout=10, application_name="llmops-index")
        except psycopg2.OperationalError as e:
            raise IndexUnavailable(f"pgvector database {_redacted(url)} (connection "
                                   f"{self.settings['conn_id']!r}): {str(e).strip()}") from None
        conn.autocommit = True
        return conn

    @contextmanager
    def cursor(self):
        import psycopg2

        with self._lock:
            if self._conn is None or self._conn.closed:
                self._conn = self.connect()
            try:
                with self._conn.cursor() as cur:
                    yield cur
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as e:
                self.close()
                raise IndexUnavailable(f"pgvector database (connection {self.settings['conn_id']!r}): "
                                       f"{str(e).strip()}") from None
            except BaseException:  # the session's state is unknown (a build stopped midway): start a new one
                self.close()
                raise

    def close(self) -> None:
        if self._conn is not None and not self._conn.closed:
            self._conn.close()
        self._conn = None


def table_name(use_case: str, index_id: str) -> str:
    return f"{use_case[:40]}__{index_id}"  # at most 62 characters: PostgreSQL's limit is 63


def _vector_literal(v: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.8g}" for x in np.asarray(v, dtype=np.float32)) + "]"


def copy_payload(vectors: np.ndarray) -> bytes:
    """``(row int4, embedding vector)`` tuples in PostgreSQL's binary COPY format (pgvector's binary form: int16
    dimension, int16 unused, then float4s, all big-endian)."""
    n, dim = vectors.shape
    tuples = np.zeros(n, dtype=np.dtype([("fields", ">i2"), ("row_len", ">i4"), ("row", ">i4"), ("vec_len", ">i4"),
                                         ("dim", ">i2"), ("unused", ">i2"), ("v", ">f4", (dim,))]))
    tuples["fields"], tuples["row_len"], tuples["row"] = 2, 4, np.arange(n)
    tuples["vec_len"], tuples["dim"], tuples["v"] = 4 + 4 * dim, dim, vectors
    return _COPY_HEADER + tuples.tobytes() + _COPY_TRAILER


def parse_copy(data: bytes, dim: int) -> np.ndarray:
    """The vectors of a binary ``COPY (SELECT embedding ... ORDER BY row)`` as float32, in row order."""
    body = data[len(_COPY_HEADER):len(data) - len(_COPY_TRAILER)]
    tuples = np.frombuffer(body, dtype=np.dtype([("fields", ">i2"), ("len", ">i4"), ("dim", ">i2"),
                                                 ("unused", ">i2"), ("v", ">f4", (dim,))]))
    return np.ascontiguousarray(tuples["v"], dtype=np.float32).reshape(len(tuples), dim)


class PgvectorSearcher(EmbeddedSearcher):
    """BM25 from the folder (as embedded); dense search by the table's HNSW index."""

    def __init__(self, folder: Path, manifest: dict, db: Database):
        super().__init__(folder, manifest, vectors=False)
        self.db, self.rows = db, int(manifest["chunks"])
        self.schema, self.table = manifest["pgvector"]["schema_name"], manifest["pgvector"]["table"]
        with db.cursor() as cur:
            cur.execute("SELECT to_regclass(%s)", (f'"{self.schema}"."{self.table}"',))
            if cur.fetchone()[0] is None:
                raise IndexNotFound(f"index {manifest['index_id']}: its pgvector table {self.schema}.{self.table} "
                                    f"is missing from {_redacted(db.url)}")

    def dense(self, vectors: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        from psycopg2 import sql

        k = min(k, self.rows)
        if k == 0:
            return [[] for _ in vectors]
        query = sql.SQL("SELECT row, 1 - (embedding <=> %s::vector) FROM {}.{} ORDER BY embedding <=> %s::vector, "
                        "row LIMIT %s").format(sql.Identifier(self.schema), sql.Identifier(self.table))
        import psycopg2.errors

        out = []
        try:
            with self.db.cursor() as cur:
                cur.execute("SET hnsw.ef_search = %s", (min(1000, max(k, int(self.db.settings["ef_search"]))),))
                for v in np.asarray(vectors, dtype=np.float32):
                    literal = _vector_literal(v)
                    cur.execute(query, (literal, literal, k))
                    out.append([(int(r), float(s)) for r, s in cur.fetchall()])
        except psycopg2.errors.UndefinedTable:
            raise IndexNotFound(f"pgvector table {self.schema}.{self.table} is missing (dropped?)") from None
        return out


class PgvectorBackend(EmbeddedBackend):
    name = "pgvector"

    def __init__(self, settings: dict | None = None):
        self.db = Database(settings or {})

    def write(self, folder: Path, texts: list[str], vectors: np.ndarray, manifest: dict) -> None:
        """The bm25 files into ``folder``; the vectors into a staging table, published by rename."""
        super().write_bm25(folder, texts)
        s = self.db.settings
        final = table_name(manifest["use_case"], manifest["index_id"])
        manifest["pgvector"] = {**{k: s[k] for k in DEFAULTS}, "table": final}
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        with self.db.cursor() as cur:
            self._prepare(cur, manifest["index_id"])
            staging = self._build_staging(cur, manifest, vectors)
            self.publish(cur, staging, final)
        log.info("pgvector: %d vectors in %s.%s (HNSW m=%s, ef_construction=%s)", len(vectors), s["schema_name"],
                 final, s["m"], s["ef_construction"])

    def _prepare(self, cur, index_id: str) -> None:
        """The extension and schemas; the staging tables of this id's earlier builds whose connection is gone."""
        from psycopg2 import sql

        schema = self.db.settings["schema_name"]
        cur.execute("SELECT pg_advisory_lock(hashtext('llmops_indexes_setup'))")
        try:
            cur.execute("CREATE EXTENSION IF NOT EXISTS vector")
            for name in (schema, f"{schema}_staging"):
                cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(name)))
        finally:
            cur.execute("SELECT pg_advisory_unlock(hashtext('llmops_indexes_setup'))")
        cur.execute("SELECT array_agg(pid) FROM pg_stat_activity")
        alive = set(cur.fetchone()[0] or [])
        cur.execute("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = %s AND c.relkind = 'r' AND c.relname LIKE %s", (f"{schema}_staging",
                                                                                        f"b%\\_\\_{index_id}"))
        for (name,) in cur.fetchall():
            pid = name[1:].split("__", 1)[0]
            if pid.isdigit() and int(pid) not in alive:
                log.info("dropping %s_staging.%s, left by a build that stopped midway", schema, name)
                cur.execute(sql.SQL("DROP TABLE IF EXISTS {}.{}").format(sql.Identifier(f"{schema}_staging"),
                                                                         sql.Identifier(name)))

    def _build_staging(self, cur, manifest: dict, vectors: np.ndarray) -> str:
        from psycopg2 import sql

        s = self.db.settings
        cur.execute("SELECT pg_backend_pid()")
        staging = f"b{cur.fetchone()[0]}__{manifest['index_id']}"
        table = sql.SQL("{}.{}").format(sql.Identifier(f"{s['schema_name']}_staging"), sql.Identifier(staging))
        dim = int(manifest["embedding"]["dimension"])
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
        cur.execute(sql.SQL("CREATE TABLE {} (row int4 PRIMARY KEY, embedding vector({}) NOT NULL)").format(
            table, sql.Literal(dim)))
        cur.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(table, sql.Literal(
            f"llmops index {manifest['index_id']} of use case {manifest['use_case']} "
            f"(corpus snapshot {manifest['corpus_snapshot_id']})")))
        if len(vectors):
            import io

            cur.copy_expert(sql.SQL("COPY {} (row, embedding) FROM STDIN WITH (FORMAT binary)").format(table),
                            io.BytesIO(copy_payload(vectors)))
        cur.execute(sql.SQL("CREATE INDEX ON {} USING hnsw (embedding vector_cosine_ops) WITH (m = {}, "
                            "ef_construction = {})").format(table, sql.Literal(int(s["m"])),
                                                            sql.Literal(int(s["ef_construction"]))))
        return staging

    def publish(self, cur, staging: str, final: str) -> bool:
        """Rename the staging table into the index schema in one transaction; an existing table of the same name
        (the same id, so the same content, published by a build killed before its folder) is kept."""
        from psycopg2 import sql

        schema = self.db.settings["schema_name"]
        stage = sql.SQL("{}.{}").format(sql.Identifier(f"{schema}_staging"), sql.Identifier(staging))
        cur.execute("BEGIN")
        try:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{schema}.{final}",))
            cur.execute("SELECT to_regclass(%s)", (f'"{schema}"."{final}"',))
            if cur.fetchone()[0] is not None:
                cur.execute(sql.SQL("DROP TABLE {}").format(stage))
                published = False
            else:
                cur.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(stage, sql.Identifier(final)))
                cur.execute(sql.SQL("ALTER TABLE {}.{} SET SCHEMA {}").format(
                    sql.Identifier(f"{schema}_staging"), sql.Identifier(final), sql.Identifier(schema)))
                published = True
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        return published

    def open(self, folder: Path, manifest: dict) -> PgvectorSearcher:
        return PgvectorSearcher(folder, manifest, self.db)

    def vectors(self, folder: Path, manifest: dict) -> np.ndarray:
        import io

        from psycopg2 import sql

        meta = manifest["pgvector"]
        buf = io.BytesIO()
        with self.db.cursor() as cur:
            cur.copy_expert(sql.SQL("COPY (SELECT embedding FROM {}.{} ORDER BY row) TO STDOUT WITH (FORMAT binary)")
                            .format(sql.Identifier(meta["schema_name"]), sql.Identifier(meta["table"])), buf)
        return parse_copy(buf.getvalue(), int(manifest["embedding"]["dimension"]))
