"""Text to token ids and back: the tokenizers (character-level, tiktoken BPE) and their spec, and text as
token spans for the Tokens screen and `nanogpt-tui tokens`. Torch-free."""
