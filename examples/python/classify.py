#!/usr/bin/env python3
"""Classify Fashion-MNIST test images with the fashionclf Python package (python/ in this repository).

    python3 classify.py [--lib PATH/libfashionclf.so] [--idx IMAGES.gz] [--count N]

Prints index, label, class name and probability per image, then the accuracy when the labels file
sits beside the images file. Needs NumPy; without --lib the library is found as the package does
(FASHIONCLF_LIB, the install prefix, the repository's build folders)."""
import argparse
import gzip
import os
import sys

try:
    import numpy as np
except ImportError:
    sys.exit("classify.py: needs NumPy (pip install numpy, or apt-get install python3-numpy)")
try:
    import fashionclf
except ImportError:  # not installed: use the package from this checkout
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
    import fashionclf

p = argparse.ArgumentParser()
p.add_argument("--lib", help="libfashionclf.so, or the folder holding it")
p.add_argument("--idx", default="/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
p.add_argument("--count", type=int, default=10)
args = p.parse_args()

try:
    if args.lib:
        fashionclf.load_library(args.lib)
    model = fashionclf.Model.default()
except (fashionclf.LibraryError, fashionclf.FashionCLFError) as e:
    sys.exit(f"classify.py: {e}")

with gzip.open(args.idx, "rb") as f:
    data = f.read()
n = max(0, min(args.count, int.from_bytes(data[4:8], "big")))
images = np.frombuffer(data, dtype=np.uint8, count=n * 784, offset=16).reshape(n, 28, 28)
with model:
    labels, probabilities = model.predict(images)
for i, label in enumerate(labels):
    print(f"{i}\t{label}\t{fashionclf.CLASS_NAMES[label]}\t{probabilities[i, label]:.4f}")

truth = args.idx.replace("images-idx3", "labels-idx1")
if n and truth != args.idx and os.path.exists(truth):
    with gzip.open(truth, "rb") as f:
        y = np.frombuffer(f.read(), dtype=np.uint8, count=n, offset=8)
    print(f"accuracy {np.mean(labels == y):.4f} on {n} images")
