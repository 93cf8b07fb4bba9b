"""Training (chapters 05 and 06): the recipe, learning-rate schedules, data loaders, checkpoints,
evaluation, the run directory, weight averaging and run tracking. The loop itself is
``scripts/train.py``, exported from chapter 05."""
