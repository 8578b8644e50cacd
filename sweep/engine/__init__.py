"""The trial engine: everything one trial needs (configs, tuned values, recipe,
augmentation, checkpoints, the training loop), importable and testable without Ray.
With ``sweep.models`` and ``sweep.data`` it is the lower layer; ``sweep.driver`` sits
on top and nothing here imports it (``tests/test_layers.py`` checks)."""
