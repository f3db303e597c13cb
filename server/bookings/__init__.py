"""Bookings: created pending, confirmed (which issues tickets) or cancelled (which revokes them)."""
