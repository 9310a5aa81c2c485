"""Chunking: deterministic ids, token windows with the configured overlap, offsets that point into the document."""

from __future__ import annotations

from retrieval_cases import retrieval_config

from llmops.retrieval.chunking import chunk_document, chunk_documents


def test_same_documents_give_the_same_passages_and_ids(embedder, docs):
    cfg = retrieval_config().chunking
    first = chunk_documents(docs, embedder.tokenizer, cfg)
    second = chunk_documents(list(reversed(docs)), embedder.tokenizer, cfg)
    assert [c.chunk_id for c in first] == [c.chunk_id for c in second]
    assert len({c.chunk_id for c in first}) == len(first) > len(docs)  # several passages per document


def test_windows_have_the_size_and_overlap_in_model_tokens(embedder, docs):
    cfg = retrieval_config(**{"chunking.size": 20, "chunking.overlap": 5}).chunking
    key, text, _ = docs[0]
    chunks = chunk_document(key, text, embedder.tokenizer, cfg)
    tokens = [embedder.tokenizer.encode(c.text, add_special_tokens=False).ids for c in chunks]
    assert all(len(t) == 20 for t in tokens[:-1]) and 0 < len(tokens[-1]) <= 20
    for before, after in zip(tokens, tokens[1:], strict=False):
        assert before[-5:] == after[:5]  # the last 5 tokens of a window open the next one
    for c in chunks:
        assert text[c.start:c.end] == c.text  # offsets are character offsets into the document
    assert chunks[0].start == 0 and chunks[-1].end == len(text.rstrip())


def test_an_edit_changes_only_the_passages_it_touches(embedder):
    cfg = retrieval_config(**{"chunking.size": 12, "chunking.overlap": 0}).chunking
    text = " ".join(f"word{i}" for i in range(60))
    edited = text.replace("word50", "changed50")
    before = [c.chunk_id for c in chunk_document("doc", text, embedder.tokenizer, cfg)]
    after = [c.chunk_id for c in chunk_document("doc", edited, embedder.tokenizer, cfg)]
    same = [a == b for a, b in zip(before, after, strict=False)]
    assert same[0] and not all(same)
    assert before[0] != chunk_document("other", text, embedder.tokenizer, cfg)[0].chunk_id  # the key is in the id


def test_by_heading_gives_one_passage_per_markdown_section(embedder):
    cfg = retrieval_config(**{"chunking.by": "heading", "chunking.size": 64, "chunking.overlap": 8}).chunking
    text = "# Intro\n\nShort opening.\n\n## Usage\n\nCall it twice.\n\n## Notes\n\n" + "long " * 200
    chunks = chunk_document("doc", text, embedder.tokenizer, cfg)
    assert chunks[0].text == "# Intro\n\nShort opening." and chunks[1].text == "## Usage\n\nCall it twice."
    assert chunks[2].text.startswith("## Notes") and len(chunks) > 3  # the long section is cut into windows
    assert all(text[c.start:c.end] == c.text for c in chunks)
