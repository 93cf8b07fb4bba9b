"""Utilities every layer may use: atomic writes, file locks, progress, the environment report,
the command lines' conventions and the notebook -> script exporter. Nothing here imports the
rest of the package."""
