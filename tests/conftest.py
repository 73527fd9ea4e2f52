"""Shared fixtures: the HDFS cluster fixtures (both backends) come from ``dfs_kit``;
``tmp_kit`` removes a passing test's ``tmp_path``; ``pytester`` runs pytest inside a test."""

pytest_plugins = ["dfs_kit", "tmp_kit", "pytester"]
