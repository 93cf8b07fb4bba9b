"""Weights: reading checkpoint files safely, converting other libraries' layouts, the published
numbers and the model zoo table (``python -m regnet_tutorial.weights zoo``)."""
