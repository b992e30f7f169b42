"""Training a run: its setup (folder, checks, model, optimizer), the Trainer loop, evals, optimizers,
torchrun DDP, the child process the app trains in, and stop signals."""
