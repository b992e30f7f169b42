"""Using a trained model: streaming generation (sampler), lower-precision weights (quantize), and looking
inside a model (inspect_model: attention, logit lens, embeddings)."""
