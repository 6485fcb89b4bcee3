"""Writes digit.ppm, the sample's input: a real handwritten digit (scikit-learn's digits data
set, test image 7, a scanned "3" at 8x8) enlarged to a 43x37 RGB picture, dark ink on light
paper, as a camera or scanner would give it. Run once; the .ppm is committed.

    python samples/cv_digits/make_image.py samples/cv_digits/digit.ppm
"""
import sys

import cv2
import numpy as np
from sklearn.datasets import load_digits


def make(path: str) -> int:
    d = load_digits()
    idx = 1797 - 100 + 7  # digits_test.npz of samples/digits holds the last 100 images
    ink = (d.images[idx] / 16.0 * 255).astype(np.uint8)
    big = cv2.resize(ink, (37, 43), interpolation=cv2.INTER_CUBIC)
    paper = np.stack([255 - big, 250 - big * 0.9, 240 - big * 0.85], -1)
    img = np.clip(paper, 0, 255).astype(np.uint8)
    with open(path, "wb") as f:
        f.write(b"P6\n37 43\n255\n" + img.tobytes())
    return int(d.target[idx])


if __name__ == "__main__":
    print("label", make(sys.argv[1]))
