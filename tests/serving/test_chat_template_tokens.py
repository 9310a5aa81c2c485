"""A base model with a ChatML chat template (as SmolLM2-Instruct has): training, evaluation and the OpenAI chat route
all render a question as the same tokens (the prompt template as the user turn, then the chat template)."""

from __future__ import annotations

import shutil

import openai
import pytest
from fastapi.testclient import TestClient

from llmops.serving.app import Settings, create_app

KEY = "sk-test-chat-template-0123456789"
CHATML = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
          "{{ '<|im_start|>system\nYou are a helpful AI assistant.<|im_end|>\n' }}{% endif %}"
          "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


@pytest.fixture(scope="module")
def tiny_model_dir(tiny_model_dir, tmp_path_factory):
    """The tiny model with a ChatML chat template added to its tokenizer."""
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("chatml") / "tiny-chatml"
    shutil.copytree(tiny_model_dir, folder)
    tok = AutoTokenizer.from_pretrained(folder)
    tok.chat_template = CHATML
    tok.save_pretrained(folder)
    return folder


def _trained_prompt_part(m, question: str, answer: str, max_len: int, cache_dir) -> list[int]:
    """The prompt part of the training example of (question, answer), made by the training code path."""
    import pandas as pd

    from llmops.train.tokenize import train_examples

    rows = pd.DataFrame({"prompt": [question], "response": [answer]})
    example = next(iter(train_examples(rows, m.tokenizer, m.template, max_len, cache_dir=cache_dir)))
    return [t for t, label in zip(example["input_ids"], example["labels"], strict=True) if label == -100]


@pytest.mark.parametrize("length", ["fits", "longer than max_seq_len"])
def test_chat_route_evaluation_and_training_agree_token_for_token(cfg, registered, tmp_path, length, submit_spy):
    """Training, evaluation and the chat route render a question as the same tokens; a prompt longer than
    max_seq_len keeps its last max_seq_len - 1 tokens everywhere: the end of the question and the assistant header
    the answer follows."""
    from llmops.model import encoding

    rows, max_len = registered["rows"], cfg.training.max_seq_len
    if length == "fits":  # the shortest prompt: no truncation on either side
        i = rows["prompt"].str.len().idxmin()
        q, a = rows["prompt"].loc[i], rows["response"].loc[i]
    else:
        q, a = " ".join(rows["prompt"].head(40)), "the answer"  # far longer than max_seq_len tokens
    app = create_app(cfg, Settings.for_use_case(cfg, reload_interval_s=3600, max_new_tokens=2, api_keys=(KEY,)))
    with TestClient(app) as http:
        m = app.state.store.get("champion")
        assert encoding.uses_chat_template(m.tokenizer)
        seen = submit_spy(m.engine)
        client = openai.OpenAI(base_url="http://testserver/v1", api_key=KEY, http_client=http, max_retries=0)
        client.chat.completions.create(model=cfg.model_name, messages=[{"role": "user", "content": q}], max_tokens=2)

    prompt_part = _trained_prompt_part(m, q, a, max_len, tmp_path)
    assert seen.ids == [prompt_part] == [encoding.prompt_ids(m.tokenizer, m.template, q, max_len)]
    text = m.tokenizer.decode(prompt_part)
    assert text.endswith("<|im_end|>\n<|im_start|>assistant\n")
    if length == "fits":
        assert text.startswith("<|im_start|>system\n")
        assert m.template.render(q).strip() in text  # our prompt template is the user turn
        # the response part the loss is computed on ends with the chat template's end-of-turn marker
        whole = encoding.encode(m.tokenizer, m.template, q, a, 10_000)  # not cut at max_seq_len
        assert whole["input_ids"][:len(prompt_part)] == prompt_part
        assert m.tokenizer.decode(whole["input_ids"][len(prompt_part):]) == a + "<|im_end|>\n"
    else:
        assert len(prompt_part) == max_len - 1
