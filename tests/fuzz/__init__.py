"""Fuzz targets, one per parser, with seed corpora; run them with ``tests/fuzz/run.py``."""
