"""E-tickets: issued on confirm, signed, changed without reissue, reissued, blocked, revoked."""
