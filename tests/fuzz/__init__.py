"""Hostile input and failing parts: generated requests, raw bytes, a database that goes away."""
