"""A run folder and what it records: the events a trainer reports (events) and their log (metrics.jsonl),
checkpoints (checkpoint) and their listing, the run files of runs/ (files), steering from another
process (control.json), watching a run as it grows (watch), and loss curves (curves). Only checkpoint and
listing import torch."""
