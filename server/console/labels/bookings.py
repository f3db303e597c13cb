"""Labels of the bookings and tickets pages (server/console/bookings_pages.py)."""

TABLE: dict[str, tuple[str, str, str]] = {}
