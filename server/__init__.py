"""The Tessera service: organiser API, guest pages and the check-in hub (Litestar)."""
