"""Labels of the doors, pairing and live dashboard pages."""

TABLE: dict[str, tuple[str, str, str]] = {}
