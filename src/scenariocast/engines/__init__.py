"""Inference engines; every engine returns a ForecastResult."""
