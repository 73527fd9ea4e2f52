"""Shared fixtures: the HDFS cluster fixtures (both backends) come from ``dfs_kit``."""

pytest_plugins = ["dfs_kit"]
