"""Every knob a user sets, with its range and default, torch-free so the CLI and the screens read them before
torch loads: training settings (train_config), presets, the learning-rate schedule, the memory estimate,
and sampling settings."""
