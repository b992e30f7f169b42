"""Training a run: its setup (folder, checks, model, optimizer), the Trainer loop, evals, optimizers,
torchrun DDP, the child process the app trains in, stop signals, what a failure says (failures), device
readings, a time budget's plan (budget) and the lecture's ladder of runs (ladder)."""
