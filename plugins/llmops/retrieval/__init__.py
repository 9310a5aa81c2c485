"""Grounding: a versioned passage index built from a corpus snapshot, gated on retrieval quality (docs/retrieval.md).

- :mod:`.corpus`: the corpus read, validated and written as a content-addressed snapshot; its documents
- :mod:`.chunking`: documents -> passages with deterministic ids (key, offsets, text hash)
- :mod:`.embedding`: the embedding model by identity (reference + content digest + dimension)
- :mod:`.backend`: the backend interface and the embedded backend (bm25s + exact cosine over numpy)
- :mod:`.fusion`: reciprocal rank fusion
- :mod:`.build`: the index id, incremental and atomic builds
- :mod:`.search`: an opened index: bm25, dense, hybrid search; ``retrieve(question)`` on the live index
- :mod:`.metrics`: recall@k, MRR@10, nDCG@10 with bootstrap intervals, retrievers side by side
- :mod:`.live`: the retrieval gate, publish and rollback of the ``live`` alias

Nothing here imports Airflow.
"""
