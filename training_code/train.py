"""Train a tabular model: XGBoost (hist, early stopping) or a scikit-learn alternative.

    python train.py --train out/train --validation out/validation --transformer out/transformer \\
        --model-dir out/model --max_depth 6 --eta 0.1

SageMaker script mode as it is (channels and the model dir from SM_* variables, hyperparameters as
flags), and the same on Azure ML and locally. Prints one `<channel>:<metric>=<value>` line per metric
and writes the model with its transformer.json and model_meta.json. Every flag:
`python train.py --help`; the code: tabular/train.py.
"""

import sys

from tabular.train import main

if __name__ == "__main__":
    sys.exit(main())
