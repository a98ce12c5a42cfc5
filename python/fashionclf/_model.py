"""Model, predictions and errors over the C API."""
import ctypes
import enum
import json
import os
import weakref
from typing import NamedTuple

import numpy as np

from . import _lib

NUM_CLASSES = 10
IMAGE_SIDE = 28
UNSURE_BELOW = 0.5  # FCLF_UNSURE_BELOW
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


class Status(enum.IntEnum):
    """fclf_status values (fixed and never reused)."""
    OK = 0
    INVALID_ARGUMENT = 1
    IO = 2
    FORMAT = 3
    NO_MEMORY = 4
    INTERNAL = 5
    UNSUPPORTED = 6
    NUMERIC = 7


class FashionCLFError(Exception):
    """A call into libfashionclf failed. `status` is a Status (an int for codes newer than this binding),
    `status_name` its name ("IO", "FORMAT", ...), `detail` fclf_last_error()'s text."""

    def __init__(self, status, detail):
        try:
            status = Status(status)
            name = status.name
        except ValueError:
            name = f"STATUS_{status}"
        self.status = status
        self.status_name = name
        self.detail = detail
        super().__init__(f"{name}: {detail}")


def _check(lib, status):
    if status != 0:
        detail = (lib.fclf_last_error() or b"").decode("utf-8", "replace")
        raise FashionCLFError(status, detail)


class Prediction(NamedTuple):
    """One image's answer: label 0-9, its class name, the 10 probabilities (float32), the top probability
    and whether it is below UNSURE_BELOW (show such answers as unsure)."""
    label: int
    class_name: str
    probabilities: np.ndarray
    confidence: float
    unsure: bool


# fclf_classify*'s flags (fashionclf.h).
FLIP_AVERAGE = 1


def _prediction(probs, label, unsure=None):
    p = np.ctypeslib.as_array(probs).copy()
    confidence = float(p[label])
    return Prediction(int(label), CLASS_NAMES[label], p, confidence,
                      confidence < UNSURE_BELOW if unsure is None else bool(unsure))


def _call(lib, plain, classify, flip_average, *args):
    """fclf_predict* (`plain`) or, with flip_average, fclf_classify* (`classify`, flags FCLF_FLIP_AVERAGE):
    args are the inputs; returns the Prediction."""
    probs, label, unsure = (ctypes.c_float * NUM_CLASSES)(), ctypes.c_int(), ctypes.c_int()
    if not flip_average:
        _check(lib, getattr(lib, plain)(*args, probs, ctypes.byref(label)))
        return _prediction(probs, label.value)
    fn = _lib.require(lib, classify, "flip_average=True")
    _check(lib, fn(*args, FLIP_AVERAGE, probs, ctypes.byref(label), ctypes.byref(unsure)))
    return _prediction(probs, label.value, unsure.value)


def _bytes_pointer(data, what):
    """(pointer, size, keep-alive) for a bytes-like object."""
    try:
        buf = np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{what} must be bytes-like (bytes, bytearray, memoryview), got "
                        f"{type(data).__name__}: {e}") from None
    return buf.ctypes.data, buf.size, buf


def _path_bytes(path, what):
    try:
        b = os.fsencode(path)
    except TypeError:
        raise TypeError(f"{what} must be a str or os.PathLike, got {type(path).__name__}") from None
    if b"\0" in b:
        raise ValueError(f"{what} contains a NUL character")
    return b


def _free(lib, handle):
    lib.fclf_model_free(handle)


_FRAME_FORMATS = {  # (channels, bgr) -> fclf_pixel_format
    (1, False): 0, (3, False): 1, (4, False): 2, (3, True): 3, (4, True): 4, (1, True): 0,
}


class Model:
    """A loaded fashionclf model. Model(path) loads a model file (fclf-train --out FILE); Model.default()
    the model built into the library; Model.from_bytes(data) a model file's contents. Free it with close()
    or a with-block; otherwise it is freed when garbage-collected. A model is immutable: any number of
    threads may predict with it at once, but close() must not run while another thread uses it."""

    def __init__(self, path):
        lib = _lib.lib()
        p = _path_bytes(path, "model path")
        handle = ctypes.c_void_p()
        _check(lib, lib.fclf_model_load(p, ctypes.byref(handle)))
        self._adopt(lib, handle)

    @classmethod
    def default(cls):
        """The model built into the library."""
        lib = _lib.lib()
        handle = ctypes.c_void_p()
        _check(lib, lib.fclf_model_load_default(ctypes.byref(handle)))
        self = cls.__new__(cls)
        self._adopt(lib, handle)
        return self

    @classmethod
    def from_bytes(cls, data):
        """A model from the bytes of a model file (copied; `data` may be released afterwards)."""
        lib = _lib.lib()
        ptr, size, keep = _bytes_pointer(data, "model data")
        handle = ctypes.c_void_p()
        _check(lib, lib.fclf_model_load_memory(ptr, size, ctypes.byref(handle)))
        del keep
        self = cls.__new__(cls)
        self._adopt(lib, handle)
        return self

    def _adopt(self, lib, handle):
        self._lib = lib
        self._handle = handle.value
        self._metadata = None
        # finalize runs at most once: from close(), on garbage collection, or at interpreter exit.
        self._finalizer = weakref.finalize(self, _free, lib, handle.value)

    def close(self):
        """Frees the model now. Closing twice is harmless; using a closed model raises ValueError."""
        if getattr(self, "_finalizer", None) is not None:
            self._finalizer()
            self._handle = None

    @property
    def closed(self):
        return getattr(self, "_handle", None) is None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        if self.closed:
            return "<fashionclf.Model closed>"
        m = self.metadata
        return f"<fashionclf.Model {m.get('architecture')} {m.get('parameters')} parameters>"

    def _h(self):
        if self.closed:
            raise ValueError("the model is closed")
        return self._handle

    @property
    def metadata(self):
        """What the model says about itself (fclf_model_metadata) as a dict: architecture, parameters,
        format_version, test_accuracy, created, ... (None where the file does not record them)."""
        if self._metadata is None:
            text = self._lib.fclf_model_metadata(self._h())
            self._metadata = json.loads(text.decode("utf-8"))
        return dict(self._metadata)

    def predict(self, images):
        """Classifies a batch with one fclf_predict_batch call. `images`: a C-contiguous NumPy uint8 array of
        shape (n, 28, 28), (n, 784) or (28, 28) (n = 1), 0 = background, 255 = garment. Returns
        (labels int32 (n,), probabilities float32 (n, 10))."""
        h = self._h()
        if not isinstance(images, np.ndarray):
            raise TypeError(f"images must be a NumPy uint8 array, got {type(images).__name__}")
        if images.dtype != np.uint8:
            raise ValueError(f"images must have dtype uint8 (0 = background, 255 = garment), got {images.dtype}")
        side = IMAGE_SIDE
        if images.shape == (side, side):
            n = 1
        elif images.ndim == 3 and images.shape[1:] == (side, side):
            n = images.shape[0]
        elif images.ndim == 2 and images.shape[1] == side * side:
            n = images.shape[0]
        else:
            raise ValueError(f"images must have shape (n, 28, 28), (n, 784) or (28, 28), got {images.shape}")
        if not images.flags.c_contiguous:
            raise ValueError("images must be C-contiguous (row-major); pass np.ascontiguousarray(images)")
        labels = np.empty(n, dtype=np.int32)
        probs = np.empty((n, NUM_CLASSES), dtype=np.float32)
        if n == 0:
            return labels, probs
        _check(self._lib, self._lib.fclf_predict_batch(
            h, images.ctypes.data, n,
            probs.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
            labels.ctypes.data_as(ctypes.POINTER(ctypes.c_int))))
        return labels, probs

    def classify(self, image, flip_average=False):
        """One 28x28 uint8 image (fclf_predict) -> Prediction. flip_average=True: the mean of the image's and
        its mirror image's probabilities, and `unsure` also when the two name different classes
        (fclf_classify with FCLF_FLIP_AVERAGE, fclf-classify --flip-average)."""
        h = self._h()
        if not isinstance(image, np.ndarray):
            raise TypeError(f"image must be a NumPy uint8 array, got {type(image).__name__}")
        if image.dtype != np.uint8:
            raise ValueError(f"image must have dtype uint8 (0 = background, 255 = garment), got {image.dtype}")
        if image.shape not in ((IMAGE_SIDE, IMAGE_SIDE), (IMAGE_SIDE * IMAGE_SIDE,)):
            raise ValueError(f"image must have shape (28, 28) or (784,), got {image.shape}")
        image = np.ascontiguousarray(image)
        return _call(self._lib, "fclf_predict", "fclf_classify", flip_average, h, image.ctypes.data)

    def classify_photo(self, path, flip_average=False):
        """A PNG or JPEG file through the real-photo pipeline (fclf_predict_image_file) -> Prediction.
        A missing file raises FashionCLFError with status IO; not an image, FORMAT. flip_average as in
        classify()."""
        h = self._h()
        p = _path_bytes(path, "photo path")
        return _call(self._lib, "fclf_predict_image_file", "fclf_classify_image_file", flip_average, h, p)

    def classify_photo_bytes(self, data, flip_average=False):
        """A PNG or JPEG held in memory (fclf_predict_image_memory) -> Prediction. flip_average as in
        classify()."""
        h = self._h()
        ptr, size, keep = _bytes_pointer(data, "photo data")
        result = _call(self._lib, "fclf_predict_image_memory", "fclf_classify_image_memory", flip_average, h, ptr, size)
        del keep
        return result

    def classify_frame(self, frame, bgr=False, flip_average=False):
        """A raw uint8 frame through the photo pipeline (fclf_predict_pixels): HxW gray, HxWx3 RGB or
        HxWx4 RGBA (BGR/BGRA with bgr=True, as OpenCV gives). Rows may be strided (a crop of a bigger
        frame); the pixels within a row must be packed. flip_average as in classify(). -> Prediction."""
        h = self._h()
        if not isinstance(frame, np.ndarray):
            raise TypeError(f"frame must be a NumPy uint8 array, got {type(frame).__name__}")
        if frame.dtype != np.uint8:
            raise ValueError(f"frame must have dtype uint8, got {frame.dtype}")
        if frame.ndim == 2:
            channels = 1
        elif frame.ndim == 3 and frame.shape[2] in (3, 4):
            channels = frame.shape[2]
        else:
            raise ValueError(f"frame must have shape (H, W) gray, (H, W, 3) RGB or (H, W, 4) RGBA, got {frame.shape}")
        height, width = frame.shape[0], frame.shape[1]
        if height > 2**31 - 1 or width > 2**31 - 1:
            raise ValueError(f"frame is too large: {width}x{height}")
        # Strides of axes of length 0 or 1 carry no meaning (NumPy may set them to anything); an empty frame
        # goes on to the library, which refuses it with INVALID_ARGUMENT.
        empty = frame.size == 0
        packed = empty or ((width <= 1 or frame.strides[1] == channels) and (channels == 1 or frame.strides[2] == 1))
        row_bytes = width * channels if height <= 1 or empty else frame.strides[0]
        if not packed or row_bytes < width * channels:
            raise ValueError("frame's pixels must be packed within each row, rows top to bottom; "
                             "pass np.ascontiguousarray(frame)")
        return _call(self._lib, "fclf_predict_pixels", "fclf_classify_pixels", flip_average, h, frame.ctypes.data,
                     width, height, row_bytes, _FRAME_FORMATS[(channels, bool(bgr))])
