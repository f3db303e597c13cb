"""Signing keys: the keystore directory (private halves) and the `signing_key` table (public)."""
