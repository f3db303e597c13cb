"""Contact lists: organiser-wide address books, imported, merged, duplicated and exported."""
