"""The Spark-only tests (the engine's own settings, its file commits, DuckDB-vs-Spark agreement).

The run's one SparkSession (``local[2]``) is the ``spark_session`` fixture of tests.engines.fixtures,
re-exported here for modules that import it by name; the tests every engine shares run through
the ``engine_name`` fixture there, Spark on each module's subset.
"""

from __future__ import annotations

from tests.engines.fixtures import spark_session  # noqa: F401 - the fixture, for modules importing it from here
