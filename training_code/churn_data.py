"""Seeded generator of a realistic, deliberately messy customer-churn data set.

    python churn_data.py --rows 100000 --out data/churn.csv

The same seed always gives the same file. Details: `python churn_data.py --help`; the code:
tabular/churn_data.py.
"""

import sys

from tabular.churn_data import main

if __name__ == "__main__":
    sys.exit(main())
