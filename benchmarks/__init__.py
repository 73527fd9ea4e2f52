"""``hdfs-csi bench``: read performance of the mount against direct HDFS and local disk.

Layout (one concern per module):

* :mod:`benchmarks.cli` - flags, ``register(parser)`` / ``run(args)``;
* :mod:`benchmarks.runner` - one run: data in place, environment up, scenario x mode;
* :mod:`benchmarks.datasets` - seeded generation, ``MANIFEST.json``, upload via the seam;
* :mod:`benchmarks.targets` - the four-call read interface (direct HDFS or a directory);
* :mod:`benchmarks.scenarios` - ``seq``, ``small``, ``meta``, ``dataloader``, ``parquet``;
* :mod:`benchmarks.environment` - minidfs child process, ``hdfs-csi mount`` daemons, versions;
* :mod:`benchmarks.stats`, :mod:`benchmarks.report` - figures, table, JSON, chart;
* :mod:`benchmarks.arrowfs`, :mod:`benchmarks.pagecache` - pyarrow over the seam, cold caches.

See BENCHMARKS.md for what each scenario and mode measures.
"""
