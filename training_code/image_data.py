"""Seeded generator of image data sets in the per-class folder layout: OUT/<label>/<name>.png.

    python image_data.py --out data/images --per-class 200 --seed 42 --size 32

Product surfaces with or without a defect, or scikit-learn's handwritten digits; no download. Details:
`python image_data.py --help`; the code: image/data.py.
"""

import sys

from image.data import main

if __name__ == "__main__":
    sys.exit(main())
