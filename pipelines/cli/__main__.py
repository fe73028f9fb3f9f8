"""`python -m pipelines.cli`: the `mlops` command without its entry-point script."""

import sys

from pipelines.cli import main

sys.exit(main())
