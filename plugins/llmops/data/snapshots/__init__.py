"""Dataset snapshots: the store (local folder or gs://), writing, the read handle, the dataset card, the JSONL
export and the canonical order of a split's rows."""
