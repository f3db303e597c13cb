"""Labels of the campaign pages (server/console/campaigns_pages.py)."""

TABLE: dict[str, tuple[str, str, str]] = {}
