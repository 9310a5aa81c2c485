"""One encoder: the prompt part (chat template or bos + template), the response part (end-of-turn or eos), the
prompt masked from the loss."""

from __future__ import annotations

from llmops.model import encoding, loading
from llmops.prompts import PromptTemplate

TEMPLATE = PromptTemplate(path="inline", text="### Question:\n{prompt}\n\n### Answer:\n")


def test_chat_template_formats_turns_and_masks_the_prompt(tiny_model_dir):
    tok = loading.load_tokenizer(str(tiny_model_dir))
    tok.chat_template = ("{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}</s>{% endfor %}"
                         "{% if add_generation_prompt %}<s>assistant: {% endif %}")
    ex = encoding.encode(tok, TEMPLATE, "What is a dict?", "A mapping.", max_len=128)
    prefix = encoding.prompt_ids(tok, TEMPLATE, "What is a dict?", 128)
    assert tok.decode(prefix) == "<s>user: ### Question:\nWhat is a dict?\n\n### Answer:</s><s>assistant: "
    assert ex["input_ids"][: len(prefix)] == prefix and ex["labels"][: len(prefix)] == [-100] * len(prefix)
    assert tok.decode(ex["labels"][len(prefix):]) == "A mapping.</s>"


def test_no_chat_template_keeps_bos_template_eos(tiny_model_dir):
    tok = loading.load_tokenizer(str(tiny_model_dir))
    assert not encoding.uses_chat_template(tok)
    ex = encoding.encode(tok, TEMPLATE, "What is a dict?", "A mapping.", max_len=128)
    assert ex["input_ids"][0] == tok.bos_token_id and ex["input_ids"][-1] == tok.eos_token_id


def test_prompt_tokens_are_masked_from_the_loss(tiny_model_dir):
    tok = loading.load_tokenizer(str(tiny_model_dir))
    ex = encoding.encode(tok, TEMPLATE, "How do I merge two dicts?", "Use a | b.", max_len=128)
    prefix = encoding.prompt_ids(tok, TEMPLATE, "How do I merge two dicts?", 128)
    assert ex["input_ids"][: len(prefix)] == prefix
    assert ex["labels"][: len(prefix)] == [encoding.IGNORE] * len(prefix)
    answer = ex["labels"][len(prefix):]
    assert encoding.IGNORE not in answer and answer[-1] == tok.eos_token_id
    assert tok.decode(answer, skip_special_tokens=True).strip() == "Use a | b."


def test_a_long_prompt_keeps_its_last_max_len_minus_one_tokens(tiny_model_dir):
    tok = loading.load_tokenizer(str(tiny_model_dir))
    question = " ".join(["How do I reverse a list in python without copying it?"] * 20)
    whole = encoding.prompt_ids(tok, TEMPLATE, question, 10_000)
    cut = encoding.prompt_ids(tok, TEMPLATE, question, 32)
    assert len(whole) > 32 and cut == whole[-31:]
    ex = encoding.encode(tok, TEMPLATE, question, "Use reversed(xs).", 32)
    assert ex["input_ids"][:31] == cut and len(ex["input_ids"]) == 32 and ex["labels"][31] != encoding.IGNORE


def test_one_row_is_encoded_as_in_a_batch(tiny_model_dir):
    tok = loading.load_tokenizer(str(tiny_model_dir))
    prompts, responses = ["What is a dict?", "How do I sort a list?"], ["A mapping.", "sorted(xs)"]
    batch = encoding.encode_batch(tok, TEMPLATE, prompts, responses, 64)
    assert [encoding.encode(tok, TEMPLATE, p, r, 64) for p, r in zip(prompts, responses, strict=True)] == [
        {"input_ids": i, "labels": lab} for i, lab in zip(batch["input_ids"], batch["labels"], strict=True)]
    assert encoding.prompt_ids_batch(tok, TEMPLATE, prompts, 64) == [
        encoding.prompt_ids(tok, TEMPLATE, p, 64) for p in prompts]
