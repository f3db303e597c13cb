"""Campaigns: e-ticket and news mail, the outbox, per-message status (ARCHITECTURE §6)."""
