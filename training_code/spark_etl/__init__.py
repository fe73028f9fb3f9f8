"""The Spark ETL behind etl.py: raw CSV / JSON Lines to curated Parquet, on Glue and on local Spark."""
