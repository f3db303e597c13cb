"""The guest-facing e-ticket page and its files, reached by the ticket's secret link."""
