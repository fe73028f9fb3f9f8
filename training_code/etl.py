"""Glue ETL on Spark: raw CSV / JSON Lines to curated Parquet, with every row accounted for.

The same script runs as an AWS Glue 5 job (Spark 3.5) and, locally, on pyspark in local mode:

    cd training_code && python etl.py --JOB_NAME local --raw_path ../data/raw \\
        --curated_path ../out/curated --quarantine_path ../out/quarantine \\
        --report_path ../out/report --spec_path specs/churn.json [--ingestion_date 2026-07-01]

Incremental: a ledger under <curated>/_ledger/ records each raw object processed, and a run reads
only the raw objects it does not hold (none: nothing is written, "0 new raw objects", exit 0). Rows
that break the spec go to the quarantine zone with their reason; curated and quarantined rows are
written as Parquet to <zone>/ingestion_date=<D>/batch=<batch id>/ (a re-run after a crash rewrites
the same batch), with etl_report.json. A bad input exits 2 before anything is written. The code:
spark_etl/.
"""

import sys

from spark_etl.job import main

if __name__ == "__main__":
    sys.exit(main())
