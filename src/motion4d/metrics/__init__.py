"""Metrics: image quality, motion, geometry errors and the generation oracle."""
