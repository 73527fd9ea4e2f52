"""pytest plugin with minidfs fixtures (see minidfs/__init__.py)."""
