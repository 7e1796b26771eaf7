"""Experiments: runs compared side by side (compare.py), hyperparameter sweeps (sweep.py) and the Optuna
driver process that runs a search (driver.py)."""
