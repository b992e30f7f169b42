"""Dataset sources and preparation: text in, nanoGPT-format token files out (through core's tokenizers)."""
