"""Tiny randomly initialised BLIP-2 and LLaVA models, built offline and saved to folders.

The tokenizer is a word-level ``tokenizers`` model over a few dozen words, so nothing is
downloaded. Captions from random weights are random words; tests assert shapes, batching and
caching, not meaning. Use them with ``pytest_plugins = ["tests.captioner_fixtures"]``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

WORDS = (
    "Describe detail. a photo of the red blue green cat dog car on grass snow street describe this image in detail "
    "question answer : . , ? USER: ASSISTANT: Question: Answer: yes no Yes No Does contain"
).split()
SPECIAL = ["<pad>", "<s>", "</s>", "<unk>", "<image>"]
# Same format as LLaVA-1.5's template: "USER: <image> prompt ASSISTANT:".
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'].upper() }}: {% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image> {% else %}{{ c['text'] }}{% endif %}{% endfor %} {% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


def tiny_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {word: i for i, word in enumerate(SPECIAL + WORDS)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>",
        additional_special_tokens=["<image>"],
    )


def _vision(config_class):
    return config_class(hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=2,
                        image_size=32, patch_size=8).to_dict()


def _save_without_special_outputs(model, folder: Path) -> None:
    """Random weights often generate only special tokens, which decode to "". With the special
    tokens' output rows zeroed and two word rows opposite, some word always scores above every
    special token, so each caption is exactly ``max_new_tokens`` words: easy to check."""
    import torch

    n = len(SPECIAL)
    with torch.no_grad():
        rows = model.get_output_embeddings().weight
        rows[:n] = 0
        rows[n + 1] = -rows[n]
    model.save_pretrained(folder)


def build_blip2(folder: Path, *, text: str) -> Path:
    """A BLIP-2 with an OPT (decoder-only) or T5 (encoder-decoder) language model."""
    import torch
    from transformers import (Blip2Config, Blip2ForConditionalGeneration, Blip2Processor, Blip2QFormerConfig,
                              Blip2VisionConfig, BlipImageProcessor, OPTConfig, T5Config)

    tokenizer = tiny_tokenizer()
    ids = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}
    if text == "opt":
        text_config = OPTConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, ffn_dim=37,
                                num_attention_heads=2, word_embed_proj_dim=32, max_position_embeddings=128, **ids)
    else:
        text_config = T5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=37, num_layers=1,
                               num_decoder_layers=1, num_heads=2, decoder_start_token_id=0, **ids)
    config = Blip2Config(
        vision_config=_vision(Blip2VisionConfig),
        qformer_config=Blip2QFormerConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                          intermediate_size=37, encoder_hidden_size=32,
                                          vocab_size=len(tokenizer)).to_dict(),
        text_config=text_config.to_dict(),
        num_query_tokens=4,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
    )
    torch.manual_seed(0)
    _save_without_special_outputs(Blip2ForConditionalGeneration(config), folder)
    processor = Blip2Processor(image_processor=BlipImageProcessor(size={"height": 32, "width": 32}),
                               tokenizer=tokenizer, num_query_tokens=4)
    processor.save_pretrained(folder)
    return folder


def build_llava(folder: Path) -> Path:
    import torch
    from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig,
                              LlavaForConditionalGeneration, LlavaProcessor)

    tokenizer = tiny_tokenizer()
    config = LlavaConfig(
        vision_config=_vision(CLIPVisionConfig),
        text_config=LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37, num_hidden_layers=1,
                                num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                                pad_token_id=0, bos_token_id=1, eos_token_id=2).to_dict(),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    torch.manual_seed(0)
    _save_without_special_outputs(LlavaForConditionalGeneration(config), folder)
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=tokenizer, patch_size=8, vision_feature_select_strategy="default", num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
    )
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_blip2_opt(tmp_path_factory) -> Path:
    return build_blip2(tmp_path_factory.mktemp("blip2_opt"), text="opt")


@pytest.fixture(scope="session")
def tiny_blip2_t5(tmp_path_factory) -> Path:
    return build_blip2(tmp_path_factory.mktemp("blip2_t5"), text="t5")


@pytest.fixture(scope="session")
def tiny_llava(tmp_path_factory) -> Path:
    return build_llava(tmp_path_factory.mktemp("llava"))
