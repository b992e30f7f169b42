"""The GPT engine: tokenizers, dataset format, model, trainer, sampler, checkpoints, devices.

Imports neither `data` nor `nanogpt_tui` nor Textual (tests/test_layering.py checks it).
"""
