"""Labels of the imports, contact lists and exports pages."""

TABLE: dict[str, tuple[str, str, str]] = {}
