"""The Ollama Modelfile carries the prompt format training used and the stop tokens, for plain and chat tokenizers."""

from __future__ import annotations

import pytest

from llmops.export.modelfile import modelfile, prompt_template_text, stop_tokens
from llmops.prompts import PromptTemplate

TEMPLATE = PromptTemplate(path="t.txt", text="Question: {prompt}\nAnswer:\n")
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from llmops.model import loading

    return loading.load_tokenizer(str(tiny_model_dir))


def test_plain_tokenizer_uses_the_prompt_template_and_eos(tokenizer, tiny_model_dir):
    text = modelfile("m.gguf", tokenizer, TEMPLATE, header="made by a test")
    assert text.splitlines()[:2] == ["# made by a test", "FROM ./m.gguf"]
    assert 'TEMPLATE """Question: {{ .Prompt }}\nAnswer:\n"""' in text
    assert stop_tokens(tokenizer) == ["</s>"] and 'PARAMETER stop "</s>"' in text


def test_chat_tokenizer_wraps_the_prompt_template_in_the_chat_template(tokenizer):
    from llmops.model.encoding import prompt_ids

    chat = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    chat.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    chat.chat_template = CHATML
    text = prompt_template_text(chat, TEMPLATE)
    assert text == "<|im_start|>user\nQuestion: {{ .Prompt }}\nAnswer:<|im_end|>\n<|im_start|>assistant\n"
    assert stop_tokens(chat) == ["</s>", "<|im_end|>"]
    chat.bos_token = "<|im_start|>"  # as SmolLM2's tokenizer has it: the template is kept whole
    assert prompt_template_text(chat, TEMPLATE) == text
    # what Ollama would send for a question is exactly what training and evaluation feed the model
    filled = text.replace("{{ .Prompt }}", "How do I sort a dict?")
    assert chat(filled, add_special_tokens=False)["input_ids"] == prompt_ids(chat, TEMPLATE, "How do I sort a dict?",
                                                                             512)
