"""A character-level tokenizer (ids below 128, the tiny Llama's vocabulary) for tests that need real text."""

from __future__ import annotations

import string

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast


def make_char_tokenizer() -> PreTrainedTokenizerFast:
    """One token per printable character; ``<s>`` 1, ``</s>`` 2 (eos and pad), ``<unk>`` 0."""
    characters = sorted(set(string.printable) - set("\x0b\x0c\r"))
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{char: index + 3 for index, char in enumerate(characters)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="</s>"
    )
