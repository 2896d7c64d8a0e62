"""Bridges to other sampling ecosystems (diffusers)."""
