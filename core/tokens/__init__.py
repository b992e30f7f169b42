"""Text to token ids and back: the tokenizers (character-level, tiktoken BPE, a BPE learned from a dataset)
and their spec, learning a BPE (bpe_train) and its merges (merges), text as token spans for the Tokens
screen and `nanogpt-tui tokens`, and the bytes each id stands for (bits_per_byte). Torch-free."""
