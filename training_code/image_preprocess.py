"""Preprocess an image folder (one sub-folder per label) into stratified train/validation/test splits.

    python image_preprocess.py --input data/images --output-dir out/preprocess --seed 42

Unreadable images are quarantined with their reason and duplicates dropped. Details:
`python image_preprocess.py --help`; the code: image/preprocess.py.
"""

import sys

from image.preprocess import main

if __name__ == "__main__":
    sys.exit(main())
