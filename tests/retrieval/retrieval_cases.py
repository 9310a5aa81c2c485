"""The small corpus and labelled questions of the retrieval tests, and helpers (imported by the tests beside it)."""

from __future__ import annotations

from pathlib import Path

from llmops.config import RetrievalConfig

TOPICS = {
    "gzip": "The gzip module compresses and decompresses files in the GNU zip format. gzip.open opens a compressed "
            "file in binary or text mode; gzip.compress returns the compressed bytes of its argument and "
            "gzip.decompress reverses it. Compression level 9 is the slowest and smallest.",
    "json": "The json module encodes Python objects as JSON text and decodes JSON documents. json.dumps serialises "
            "an object to a string, json.loads parses a string into dictionaries and lists. Keys may be sorted "
            "with sort_keys and output indented with indent.",
    "socket": "The socket module is the low-level networking interface. A socket is created with an address family "
              "and a type, bound to a host and port, and then listens for and accepts TCP connections or sends "
              "UDP datagrams to a remote peer.",
    "threading": "The threading module runs code in several threads of one process. A Thread runs a target "
                 "function; a Lock gives one thread at a time access to shared state, and an Event lets one "
                 "thread wait until another signals it.",
    "re": "The re module matches regular expressions against strings. re.compile builds a pattern object, "
          "re.search finds the first match anywhere, re.findall returns every non-overlapping match, and re.sub "
          "replaces matches with a replacement string.",
    "csv": "The csv module reads and writes comma-separated values files, as spreadsheets export them. csv.reader "
           "yields each row as a list of fields, csv.DictWriter writes dictionaries as rows under a header line, "
           "and dialects describe delimiters and quoting.",
    "datetime": "The datetime module represents dates and times. A date has a year, month and day; a timedelta is "
                "a duration; strftime formats a timestamp as text and strptime parses text into a datetime, and "
                "time zones are given by tzinfo objects.",
    "random": "The random module generates pseudo-random numbers. random.random returns a float in the half-open "
              "interval from zero to one, random.choice picks an element of a sequence, random.shuffle permutes "
              "a list in place and random.seed makes the sequence repeatable.",
    "sqlite3": "The sqlite3 module is an interface to the SQLite embedded database engine. connect opens a "
               "database file, a cursor executes SQL statements with parameters, commit makes changes durable, "
               "and rows can be fetched one at a time or all at once.",
    "hashlib": "The hashlib module computes secure hash and message digest algorithms such as SHA-256 and MD5. "
               "hashlib.sha256 returns a hash object; update feeds it bytes and hexdigest returns the digest as "
               "a string of hexadecimal digits.",
}
QUESTIONS = [
    {"question": "How do I compress bytes in the GNU zip format?", "relevant": ["gzip"]},
    {"question": "How can I turn a dictionary into a JSON string?", "relevant": ["json"]},
    {"question": "How do I accept TCP connections on a port?", "relevant": ["socket"]},
    {"question": "How do I stop two threads changing shared state at once?", "relevant": ["threading"]},
    {"question": "How do I replace every match of a pattern in a string?", "relevant": ["re"]},
    {"question": "How do I read rows from a comma-separated file?", "relevant": ["csv"]},
    {"question": "How do I parse text into a date and time?", "relevant": ["datetime"]},
    {"question": "How do I pick a random element from a list?", "relevant": ["random"]},
    {"question": "How do I run SQL against an embedded database file?", "relevant": ["sqlite3"]},
    {"question": "How do I compute a SHA-256 digest in hexadecimal?", "relevant": ["hashlib"]},
]


def retrieval_config(**changes) -> RetrievalConfig:
    raw = {"corpus": {"source": {"path": "corpus.jsonl", "prompt_column": "key", "response_column": "text"},
                      "expectation_suite": "include/expectations/corpus_documents.json"},
           "chunking": {"size": 24, "overlap": 6}, "retriever": {"kind": "hybrid", "k": 3},
           "questions": "questions.jsonl"}
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = raw
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return RetrievalConfig.model_validate(raw)


def index_folders(use_case: str) -> list[Path]:
    from llmops.retrieval.build import indexes_root

    root = indexes_root(use_case)
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name not in ("evaluations",)) if root.exists() else []


def pg_tables(rcfg: RetrievalConfig, *, staging: bool = False) -> list[str]:
    """The tables in the pgvector backend's index schema (or its staging schema). A staging table is named after
    its builder's session (``b<pid>__<index id>``): this waits up to 10 s for those sessions to end, as a build
    stopped midway closes its connection and the server ends the session a moment later."""
    import time

    from llmops.retrieval.pgvector import Database

    db = Database(rcfg.pgvector.model_dump())
    schema = rcfg.pgvector.schema_name + ("_staging" if staging else "")
    deadline = time.monotonic() + 10
    with db.cursor() as cur:
        while True:
            cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY tablename", (schema,))
            names = [r[0] for r in cur.fetchall()]
            pids = [int(n[1:].split("__")[0]) for n in names if staging]
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,))
            if cur.fetchone()[0] == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    db.close()
    return names
