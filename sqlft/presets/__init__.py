"""Shipped presets: one YAML per model x hardware (see sqlft.config)."""
