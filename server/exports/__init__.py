"""Exports: the formula guard, CSV and XLSX writers, and the event exports (bookings, tickets,
check-ins) organisers download."""
