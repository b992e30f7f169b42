"""A prepared dataset on disk (nanoGPT's train.bin/val.bin plus dataset.json): writing and loading it
(format), reading its metadata safely (files), checking its ids against the vocabulary (token_check), and
drawing training batches from it (batches) and one example as the model sees it (example), and its
reference losses: a uniform guess and the count-based bigram (baseline). Only batches imports torch."""
