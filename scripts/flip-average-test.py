#!/usr/bin/env python3
"""Test-set accuracy of a model through the C API, plain and with test-time flip averaging
(fclf_classify with FCLF_FLIP_AVERAGE), and how the unsure mark splits the answers.

    PYTHONPATH=python FASHIONCLF_LIB=.build/release python3 scripts/flip-average-test.py [MODEL.fclf]

Without MODEL the built-in model. Reads Debian's dataset-fashion-mnist (or FASHION_MNIST_DIR)."""
import gzip
import os
import sys

import numpy as np

import fashionclf


def idx(directory, name, offset):
    with gzip.open(os.path.join(directory, name)) as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def main():
    directory = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
    images = idx(directory, "t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
    labels = idx(directory, "t10k-labels-idx1-ubyte.gz", 8)
    with (fashionclf.Model(sys.argv[1]) if len(sys.argv) > 1 else fashionclf.Model.default()) as model:
        batch, _ = model.predict(images)
        for name, flip in (("plain", False), ("flip-averaged", True)):
            answers = [model.classify(image, flip_average=flip) for image in images]
            right = np.array([a.label == t for a, t in zip(answers, labels)])
            unsure = np.array([a.unsure for a in answers])
            print(f"{name}: test accuracy {right.mean():.4f}; unsure {unsure.sum()} ({unsure.mean():.1%}), "
                  f"right among the others {right[~unsure].mean():.4f}")
        print(f"batch (fclf_predict_batch) accuracy {np.mean(batch == labels):.4f}")


if __name__ == "__main__":
    main()
