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


def test_chat_route_evaluation_and_training_agree_token_for_token(cfg, registered):
    from llmops.train import sft_data

    app = create_app(cfg, Settings.for_use_case(cfg, reload_interval_s=3600, max_new_tokens=2, api_keys=(KEY,)))
    with TestClient(app) as http:
        m = app.state.store.get("champion")
        assert sft_data.uses_chat_template(m.tokenizer)
        seen = []
        sched = app.state.service.scheduler(m)
        submit = sched.submit
        sched.submit = lambda job: (seen.append(job.ids), submit(job))[1]
        rows = registered["rows"]
        i = rows["prompt"].str.len().idxmin()  # a prompt that fits max_seq_len whole (no truncation on either side)
        q, a = rows["prompt"].loc[i], rows["response"].loc[i]
        client = openai.OpenAI(base_url="http://testserver/v1", api_key=KEY, http_client=http, max_retries=0)
        client.chat.completions.create(model=cfg.model_name, messages=[{"role": "user", "content": q}], max_tokens=2)

    trained = sft_data.encode(m.tokenizer, m.template, q, a, cfg.training.max_seq_len)
    prompt_part = [t for t, label in zip(trained["input_ids"], trained["labels"], strict=True) if label == -100]
    evaluated = sft_data.prompt_ids(m.tokenizer, m.template, q, cfg.training.max_seq_len)
    assert seen == [prompt_part] == [evaluated]
    text = m.tokenizer.decode(prompt_part)
    assert text.startswith("<|im_start|>system\n") and text.endswith("<|im_end|>\n<|im_start|>assistant\n")
    assert m.template.render(q).strip() in text  # our prompt template is the user turn
    # the response part the loss is computed on ends with the chat template's end-of-turn marker
    whole = sft_data.encode(m.tokenizer, m.template, q, a, 10_000)  # not cut at max_seq_len
    assert whole["input_ids"][:len(prompt_part)] == prompt_part
    assert m.tokenizer.decode(whole["input_ids"][len(prompt_part):]) == a + "<|im_end|>\n"


def test_a_prompt_longer_than_max_seq_len_is_cut_the_same_way_everywhere(cfg, registered):
    """Training, evaluation and the chat route keep the prompt's last max_seq_len - 1 tokens: the end of the
    question and the assistant header the answer follows."""
    from llmops.train import sft_data

    app = create_app(cfg, Settings.for_use_case(cfg, reload_interval_s=3600, max_new_tokens=2, api_keys=(KEY,)))
    with TestClient(app) as http:
        m = app.state.store.get("champion")
        seen = []
        sched = app.state.service.scheduler(m)
        submit = sched.submit
        sched.submit = lambda job: (seen.append(job.ids), submit(job))[1]
        q = " ".join(registered["rows"]["prompt"].head(40))  # far longer than max_seq_len tokens
        client = openai.OpenAI(base_url="http://testserver/v1", api_key=KEY, http_client=http, max_retries=0)
        client.chat.completions.create(model=cfg.model_name, messages=[{"role": "user", "content": q}], max_tokens=2)

    max_len = cfg.training.max_seq_len
    trained = sft_data.encode(m.tokenizer, m.template, q, "the answer", max_len)
    prompt_part = [t for t, label in zip(trained["input_ids"], trained["labels"], strict=True) if label == -100]
    assert len(prompt_part) == max_len - 1 and len(trained["input_ids"]) == max_len
    assert seen == [prompt_part] == [sft_data.prompt_ids(m.tokenizer, m.template, q, max_len)]
    assert m.tokenizer.decode(prompt_part).endswith("<|im_end|>\n<|im_start|>assistant\n")
