"""Organiser API tokens: created by the CLI, stored hashed, checked on every `/api/v1` call."""
