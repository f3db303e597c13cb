"""The event's logo and banner: checked, re-encoded, stored in the database, served by hash."""
