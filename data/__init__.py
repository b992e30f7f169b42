"""Dataset sources and preparation: text or records in (sources, records), nanoGPT-format token files out
(prepare, through core's tokenizers)."""
