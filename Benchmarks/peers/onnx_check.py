#!/usr/bin/env python3
"""fclf-export's ONNX against fashionclf itself: ONNX Runtime's labels and probabilities on the 10,000
Fashion-MNIST test images, compared with libfashionclf's fclf_predict_batch on the same images.

    python3 onnx_check.py MODEL.onnx LIBDIR/libfashionclf.so [MODEL.fclf]   (no MODEL.fclf: the built-in model)

Needs numpy and onnxruntime (requirements.txt); prints agreement, max |p_ort - p_fclf| and both accuracies."""
import ctypes
import gzip
import os
import sys

import numpy as np
import onnxruntime as ort

DATA = os.environ.get("FCLF_DATA", "/usr/share/datasets/fashion-mnist")
onnx_path, lib_path = sys.argv[1], sys.argv[2]
model_path = sys.argv[3] if len(sys.argv) > 3 else None

pixels = np.frombuffer(gzip.open(os.path.join(DATA, "t10k-images-idx3-ubyte.gz")).read()[16:], np.uint8)
truth = np.frombuffer(gzip.open(os.path.join(DATA, "t10k-labels-idx1-ubyte.gz")).read()[8:], np.uint8)
n = len(truth)

lib = ctypes.CDLL(lib_path)
lib.fclf_last_error.restype = ctypes.c_char_p
handle = ctypes.c_void_p()
rc = lib.fclf_model_load(model_path.encode(), ctypes.byref(handle)) if model_path else lib.fclf_model_load_default(ctypes.byref(handle))
if rc != 0:
    sys.exit("onnx_check: " + lib.fclf_last_error().decode())
ours = np.zeros((n, 10), np.float32)
labels = np.zeros(n, np.int32)
buf = np.ascontiguousarray(pixels)
rc = lib.fclf_predict_batch(handle, buf.ctypes.data_as(ctypes.c_void_p), ctypes.c_size_t(n),
                            ours.ctypes.data_as(ctypes.c_void_p), labels.ctypes.data_as(ctypes.c_void_p))
if rc != 0:
    sys.exit("onnx_check: " + lib.fclf_last_error().decode())

session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
x = (pixels.reshape(n, 1, 28, 28).astype(np.float32) * np.float32(1 / 255))
theirs = session.run(["probabilities"], {"x": x})[0]
agree = int((theirs.argmax(1) == labels).sum())
print(f"{os.path.basename(onnx_path)}: ONNX Runtime {ort.__version__} and fashionclf agree on {agree}/{n} labels; "
      f"max |p_ort - p_fclf| = {np.abs(theirs - ours).max():.2e}; test accuracy fashionclf {(labels == truth).mean():.4f}, "
      f"ONNX Runtime {(theirs.argmax(1) == truth).mean():.4f}")
print("metadata:", session.get_modelmeta().custom_metadata_map.get("fashionclf_metadata", "(none)")[:200])
sys.exit(0 if agree == n else 1)
