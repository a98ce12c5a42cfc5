import gzip
import os
import sys

import numpy as np
import pytest

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(PYTHON_DIR)
sys.path.insert(0, PYTHON_DIR)  # test this checkout's package, installed or not

import fashionclf  # noqa: E402

DATA = "/usr/share/datasets/fashion-mnist"
PHOTOS = os.path.join(REPO, "examples", "photos")
MODEL_FILE = os.path.join(REPO, "Sources", "CModelData", "builtin-model.fclf")


@pytest.fixture(scope="session")
def model():
    with fashionclf.Model.default() as m:
        yield m


def _idx(name, header, count):
    path = os.path.join(DATA, name)
    if not os.path.exists(path):
        pytest.skip(f"{path} missing (apt-get install dataset-fashion-mnist)")
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(header + count * (784 if header == 16 else 1)), dtype=np.uint8)[header:]


@pytest.fixture(scope="session")
def test_set():
    """The first 1,000 test images (1000, 28, 28) and their labels."""
    n = 1000
    return _idx("t10k-images-idx3-ubyte.gz", 16, n).reshape(n, 28, 28), _idx("t10k-labels-idx1-ubyte.gz", 8, n)
