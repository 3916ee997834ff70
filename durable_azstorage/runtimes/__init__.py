"""Adapters that run user code (see docs/architecture.md)."""
