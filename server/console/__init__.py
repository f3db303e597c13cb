"""The organiser console under `/console`: accounts and sessions, and server-rendered pages over
the same services as the API (docs/console.md)."""
