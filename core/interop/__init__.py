"""Other tools' files: GPT-2 weights from a Hugging Face folder (--init-from), and exports a run to nanoGPT's
ckpt.pt or Hugging Face's GPT2LMHeadModel folder, with its tokenizer in Hugging Face's format (hf_tokenizer)."""
