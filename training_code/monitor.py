"""Model Monitor: a data-quality baseline, and drift checks of captured traffic against it.

    python monitor.py baseline --input RAW_TRAIN [--spec specs/churn.json] --output DIR
    python monitor.py analyze --baseline DIR --capture DIR --output DIR

Both write SageMaker Model Monitor's own file formats; `analyze` exits 0 (no violation), 1 (violations)
or 2 (nothing to analyse), as SageMaker's monitoring job ends. Details: `python monitor.py --help`;
the code: monitoring/.
"""

import sys

from monitoring.job import main

if __name__ == "__main__":
    sys.exit(main())
