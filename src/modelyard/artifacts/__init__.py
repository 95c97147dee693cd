"""Artifact storage: keys, stores, hashing."""
