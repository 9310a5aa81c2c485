"""A version's adapter folder, opened: its metadata, the prompt template it was trained with, and its base.

:func:`open_adapter` is the one reading of an adapter folder for everything that runs a registered version: the
API's model stores (in-process and vLLM), the vLLM registration checks, the MLflow pyfunc and the exports. The
base is found by the identity recorded at training (:func:`llmops.model.identity.load_ref`; the use case's
``base_model`` on this host is one place looked in), and the template is the one stored in the metadata, never the
file the use case names today.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from llmops.prompts import PromptTemplate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Adapter:
    path: Path
    metadata: dict
    template: PromptTemplate
    base_ref: str
    revision: str | None
    trust_remote_code: bool = False

    @property
    def snapshot_id(self) -> str:
        return self.metadata.get("snapshot_id", "")

    def load_tokenizer(self):
        from llmops.model import loading

        return loading.load_tokenizer(self.base_ref, self.revision, trust_remote_code=self.trust_remote_code)

    def load_base(self, **model_kwargs):
        """(base model, tokenizer), without the adapter."""
        from llmops.model import loading

        return loading.load_base(self.base_ref, self.revision, trust_remote_code=self.trust_remote_code,
                                 **model_kwargs)

    def load_merged(self, **model_kwargs):
        """(model, tokenizer): the adapter merged into its base, in eval mode (a served version never trains)."""
        from llmops.model import loading

        base, tokenizer = self.load_base(**model_kwargs)
        model = loading.load_adapter(base, self.path).merge_and_unload()
        model.eval()
        return model, tokenizer


def open_adapter(path: str | Path, base_model: str | None = None, *, trust_remote_code: bool = False) -> Adapter:
    """The adapter folder ``path`` (as training wrote it); ``base_model``: the use case's base on this host, one
    place its recorded identity is looked for."""
    from llmops.model.identity import load_ref
    from llmops.model.loading import adapter_metadata

    path = Path(path)
    meta = adapter_metadata(path)
    template = PromptTemplate(path=meta.get("prompt_template", ""), text=meta["prompt_template_text"])
    base_ref, revision = load_ref(meta, base_model)
    return Adapter(path, meta, template, base_ref, revision, trust_remote_code)
