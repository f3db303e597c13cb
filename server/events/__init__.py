"""Events and their ticket types."""
