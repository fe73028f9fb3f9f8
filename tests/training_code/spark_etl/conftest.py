"""One local Spark session for every ETL test module (local[2], no UI, 2 shuffle partitions)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pyspark.sql import SparkSession

from spark_etl import job as etl


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    # C1-only JIT: the tests run many tiny jobs, where C2's compile time is pure cost.
    session = etl.local_spark(master="local[2]", shuffle_partitions=2, java_options="-XX:TieredStopAtLevel=1")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
