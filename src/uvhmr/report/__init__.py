"""The report rule: the paper's tables regenerated from the metrics JSONs (tables.py)."""
