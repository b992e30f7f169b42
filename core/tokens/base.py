"""What every tokenizer is (the Tokenizer interface, its errors, nanoGPT's storage dtype) and the part the
tiktoken-backed ones share (EncodingTokenizer). Torch-free: the app uses tokenizers on its UI thread.

The kinds themselves: core.tokens.tokenizers (char, gpt2, cl100k_base) and core.tokens.bpe (a BPE
learned from a dataset's text); core.tokens.tokenizers.load_tokenizer rebuilds any of them from its spec.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from core.common.lazy import lazy

if TYPE_CHECKING:
    import numpy as np
    import tiktoken
else:
    np = lazy("numpy")  # imported on first use: the app's first paint does not wait for numpy


ENDOFTEXT = "<|endoftext|>"  # the end-of-text token of GPT-2's BPE and of a BPE learned here (tiktoken's name)


class TokenizerError(ValueError):
    """Text or ids a tokenizer cannot handle, or a bad tokenizer spec."""


class TokenizerUnavailable(TokenizerError):
    """A tokenizer that cannot be built on this machine (files missing, not downloaded)."""


def storage_dtype(vocab_size: int) -> type[np.unsignedinteger]:
    """nanoGPT's token dtype: uint16 when every id fits, else uint32."""
    return np.uint16 if vocab_size <= 2**16 else np.uint32


class Tokenizer(ABC):
    """Turns text into token ids and back."""

    name: str
    vocab_size: int

    @abstractmethod
    def encode(self, text: str, allow_special: bool = False) -> list[int]:
        """Token ids of `text`; special tokens such as <|endoftext|> are plain text unless allowed."""

    @abstractmethod
    def encode_array(self, text: str) -> np.ndarray:
        """Token ids of `text` (special tokens as plain text) as an array of `self.dtype`, fast."""

    @abstractmethod
    def decode(self, ids: Sequence[int]) -> str:
        """The text of `ids`."""

    @abstractmethod
    def token_bytes(self, token_id: int) -> bytes:
        """The raw bytes of one token (a BPE token may be part of a UTF-8 character)."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """The JSON-safe spec that `load_tokenizer` turns back into this tokenizer."""

    @property
    def special_tokens(self) -> dict[str, int]:
        return {}

    @property
    def dtype(self) -> type[np.unsignedinteger]:
        return storage_dtype(self.vocab_size)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} vocab_size={self.vocab_size}>"


class EncodingTokenizer(Tokenizer):
    """A byte-level BPE that a `tiktoken.Encoding` encodes and decodes (subclasses say how to rebuild it)."""

    def __init__(self, name: str, encoding: tiktoken.Encoding) -> None:
        self.name = name
        self.encoding = encoding
        self.vocab_size = encoding.n_vocab

    def encode(self, text: str, allow_special: bool = False) -> list[int]:
        if allow_special:
            return self.encoding.encode(text, allowed_special="all")
        return self.encoding.encode_ordinary(text)

    def encode_array(self, text: str) -> np.ndarray:
        # As encode_ordinary (no special tokens: disallowing none lets their text through as plain text), but
        # into tiktoken's own buffer, not a Python list of ints built while holding the GIL: threads encoding
        # chunks side by side (data.prepare) then barely wait for each other, and a UI thread stays responsive.
        return self.encoding.encode_to_numpy(text, disallowed_special=()).astype(self.dtype)

    def decode(self, ids: Sequence[int]) -> str:
        ids = [int(i) for i in ids]
        for token_id in ids:
            self._check_id(token_id)
        return self.encoding.decode(ids, errors="replace")

    def token_bytes(self, token_id: int) -> bytes:
        return self.encoding.decode_single_token_bytes(self._check_id(token_id))

    @property
    def special_tokens(self) -> dict[str, int]:
        return {token: self.encoding.encode_single_token(token) for token in self.encoding.special_tokens_set}

    def _check_id(self, token_id: int) -> int:
        token_id = int(token_id)
        # Some encodings have holes in their id range: ask tiktoken rather than compare with n_vocab.
        try:
            self.encoding.decode_single_token_bytes(token_id)
        except (KeyError, OverflowError, ValueError):
            raise TokenizerError(f"token id {token_id} is not in the {self.name} vocabulary") from None
        return token_id
