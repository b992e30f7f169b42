"""The GPT engine, in packages that import one way (each only those listed before it):

    common     paths, atomic writes, safe opens of shared files, folder locks, formatting, devices,
               process memory
    tokens     tokenizers (a BPE learned from a dataset too), token spans, bits per byte
    dataset    the on-disk dataset: format, metadata, id checks, batches, a training example, reference losses
    model      nanoGPT's GPT, the lecture's steps before it (ladder), a forward pass listed, the anatomy in numbers
    settings   every user knob with its range: training, presets, schedule, memory, sampling, time budgets
    runs       a run folder: events, metrics.jsonl, checkpoints, listing, control.json, watch, curves
    inference  generation, low-precision weights, looking inside a model
    interop    GPT-2 weights in, nanoGPT and Hugging Face exports out, metrics to TensorBoard, CSV and wandb
    training   setup, the Trainer, evals, optimizers, torchrun, the training child process, device readings,
               failures in words, training to a time budget, the lecture's ladder of runs

Imports neither `data` nor `nanogpt_tui` nor Textual (tests/test_layering.py checks all of it).
"""
