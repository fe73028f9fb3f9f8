"""Preprocess a tabular data set: deduplicate, quarantine unusable rows, split, fit the transform.

    python preprocess.py --input data/churn.csv --spec specs/churn.json --output-dir out/preprocess

Writes the transformed train/validation/test splits, the raw splits that monitoring and batch
transform read, the fitted transformer/transformer.json, a data report and the quarantined rows.
Every flag and output: `python preprocess.py --help`; the code: tabular/preprocess.py.
"""

import sys

from tabular.preprocess import main

if __name__ == "__main__":
    sys.exit(main())
