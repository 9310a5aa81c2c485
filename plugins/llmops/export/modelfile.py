"""An Ollama ``Modelfile`` beside an exported GGUF: the prompt format training used, and its stop tokens.

``TEMPLATE`` is the exact text the model was trained on for one question, with Ollama's ``{{ .Prompt }}`` where the
question goes: the use case's prompt template as the user turn, through the tokenizer's chat template when it has
one (its generation prompt included, kept whole: SmolLM2's BOS token is ``<|im_start|>``, the turn's first token),
else the prompt template alone (llama.cpp adds the GGUF's BOS token, as training did).
``PARAMETER stop`` lists the tokenizer's end-of-sequence token and the chat template's end-of-turn marker.
``ollama create <name> -f Modelfile`` in the GGUF's folder makes the model.
"""

from __future__ import annotations

from llmops.prompts import PromptTemplate

SLOT = "\x00llmops-prompt\x00"
OLLAMA_PROMPT = "{{ .Prompt }}"


def prompt_template_text(tokenizer, template: PromptTemplate) -> str:
    """The trained prompt format with Ollama's prompt placeholder (see ``llmops.model.encoding``)."""
    from llmops.model.encoding import uses_chat_template

    if uses_chat_template(tokenizer):
        text = tokenizer.apply_chat_template([{"role": "user", "content": template.render(SLOT).strip()}],
                                             tokenize=False, add_generation_prompt=True)
    else:
        text = template.render(SLOT)
    if SLOT not in text:
        raise ValueError("the chat template dropped the user turn: no Ollama TEMPLATE can be written")
    return text.replace(SLOT, OLLAMA_PROMPT)


def stop_tokens(tokenizer) -> list[str]:
    from llmops.model.encoding import uses_chat_template

    stops = [tokenizer.eos_token] if tokenizer.eos_token else []
    if uses_chat_template(tokenizer):
        turn = [{"role": "user", "content": "q"}]
        head = tokenizer.apply_chat_template(turn, tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(turn + [{"role": "assistant", "content": SLOT}], tokenize=False)
        if full.startswith(head) and SLOT in full:
            end = full.split(SLOT, 1)[1].strip()
            if end and end in tokenizer.all_special_tokens and end not in stops:
                stops.append(end)
    return stops


def _quote(text: str) -> str:
    return '"""' + text.replace('"""', '\\"\\"\\"') + '"""'


def modelfile(gguf_name: str, tokenizer, template: PromptTemplate, *, header: str = "") -> str:
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"FROM ./{gguf_name}", f"TEMPLATE {_quote(prompt_template_text(tokenizer, template))}"]
    lines += [f'PARAMETER stop "{s}"' for s in stop_tokens(tokenizer)]
    return "\n".join(lines) + "\n"
