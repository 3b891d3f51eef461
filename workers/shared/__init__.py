"""Torch-free: everything the API (app/) may import, and the vocabulary models/ builds on. Nothing here
imports torch, models/, workers.jobs or workers.local (tests/unit/test_layout.py)."""
