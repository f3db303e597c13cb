"""The per-event change log that scanners follow (ARCHITECTURE §5)."""
