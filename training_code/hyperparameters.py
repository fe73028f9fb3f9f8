"""Hand tuned hyperparameters from a tuning trial to the final training, through a file.

    python hyperparameters.py record OUT --eta 0.1 --max_depth 6   # writes OUT/best_hyperparameters.json
    python hyperparameters.py flags IN                             # prints "--eta 0.1 --max_depth 6"

An Azure ML sweep hands on its best trial's outputs: each trial records what it ran with, and the
training node turns the best trial's record back into flags. The file has the local tuner's layout.
"""

import sys

from common.hyperparameters import main

if __name__ == "__main__":
    sys.exit(main())
