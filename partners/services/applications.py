"""See partners/services/__init__.py."""
