"""Dataset sources and preparation: text or records in (sources, records), nanoGPT-format token files out
(prepare, through core's tokenizers, or a BPE learned from the text's train split: learn_bpe)."""
