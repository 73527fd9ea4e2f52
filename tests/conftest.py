"""Shared fixtures: the minidfs cluster fixtures come from ``minidfs.testing``."""

pytest_plugins = ["minidfs.testing"]
