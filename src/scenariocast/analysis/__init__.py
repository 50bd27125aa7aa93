"""Analyses on results: what moved a forecast (and later comparison, scoring, sensitivity)."""
