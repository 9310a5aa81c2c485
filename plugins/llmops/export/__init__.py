"""Exports of a registered model version, registered beside its adapter (artifacts of the same MLflow run):

- ``merged``: the adapter merged into the base (peft ``merge_and_unload(safe_merge=True)``), in the base's dtype,
  as a safetensors folder with the tokenizer (:mod:`llmops.export.merge`);
- ``gguf``: that folder converted by llama.cpp's own ``convert_hf_to_gguf.py`` (f16 and q8_0 by default), run in its
  own environment as a separate process (:mod:`llmops.export.converter`), each file with an Ollama ``Modelfile``
  beside it (:mod:`llmops.export.modelfile`).

:func:`llmops.export.publish.export_version` builds everything first and registers (uploads, then tags the version
with each export's content hash and size) only once all of it is complete.
"""
