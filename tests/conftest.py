"""Shared fixtures: the HDFS cluster fixtures (both backends) come from ``dfs_kit``;
``tmp_kit`` removes a passing test's ``tmp_path``; ``watchdog_kit`` gives every test a
time limit that even a GIL-holding hang cannot outlast; ``pytester`` runs pytest inside
a test."""

pytest_plugins = ["dfs_kit", "tmp_kit", "watchdog_kit", "pytester"]
