"""Model Monitor: a data-quality baseline, drift checks of captured traffic against it, and model
quality from captured predictions joined with ground-truth labels.

    python monitor.py baseline --input RAW_TRAIN [--spec specs/churn.json] --output DIR
    python monitor.py analyze --baseline DIR --capture DIR --output DIR
    python monitor.py quality --capture DIR --ground-truth DIR --constraints FILE --problem-type P --output DIR
    python monitor.py labels --input LABELS.csv --ground-truth DIR

All write SageMaker Model Monitor's own file formats; `analyze` and `quality` exit 0 (no violation),
1 (violations) or 2 (nothing to analyse), as SageMaker's monitoring job ends. Details: `python monitor.py --help`;
the code: monitoring/.
"""

import sys

from monitoring.job import main

if __name__ == "__main__":
    sys.exit(main())
