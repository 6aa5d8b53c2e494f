"""Shipped prompt templates (see sqlft.prompts)."""
