"""fashionclf: classify clothing images (Fashion-MNIST's 10 classes) with libfashionclf, through ctypes.

    import numpy as np, fashionclf
    with fashionclf.Model.default() as model:
        labels, probabilities = model.predict(images)      # uint8 (n, 28, 28)
        print(model.classify_photo("shirt.jpg"))

Importing never fails for want of the library: it is found and loaded when the first model is (or on
fashionclf.load_library()), from FASHIONCLF_LIB, the install prefix, or the repository's build folders."""
from ._lib import LibraryError, load_library
from ._lib import lib as _library
from ._model import (CLASS_NAMES, IMAGE_SIDE, NUM_CLASSES, UNSURE_BELOW, FashionCLFError, Model, Prediction,
                     Status)

__version__ = "1.1.0"
__all__ = ["CLASS_NAMES", "IMAGE_SIDE", "NUM_CLASSES", "UNSURE_BELOW", "FashionCLFError", "LibraryError",
           "Model", "Prediction", "Status", "load_library", "set_threads", "version"]


def version():
    """The loaded library's version, "MAJOR.MINOR.PATCH" (fclf_version)."""
    return _library().fclf_version().decode()


def set_threads(n):
    """Threads for batch predictions started after this call, process-wide: n >= 1 that many, 0 the
    default (OMP_NUM_THREADS, else every core). Results do not depend on it."""
    _library().fclf_set_threads(int(n))
