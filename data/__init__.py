"""Dataset sources and preparation: text in, nanoGPT-format token files out (through core's tokenizers, or a
BPE learned from the text's train split: learn_bpe)."""
