#!/usr/bin/env python3
"""Classify Fashion-MNIST test images with libfashionclf through ctypes (no third-party packages).

    python3 classify.py [--lib PATH/libfashionclf.so] [--idx IMAGES.gz] [--count N]

Prints index, label, class name and probability per image, then the accuracy when the labels file
sits beside the images file."""
import argparse
import ctypes
import gzip
import os
import sys

p = argparse.ArgumentParser()
p.add_argument("--lib", default="libfashionclf.so")
p.add_argument("--idx", default="/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
p.add_argument("--count", type=int, default=10)
args = p.parse_args()

lib = ctypes.CDLL(args.lib)
lib.fclf_model_load_default.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
lib.fclf_model_load_default.restype = ctypes.c_int
lib.fclf_predict_batch.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
                                   ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_int)]
lib.fclf_predict_batch.restype = ctypes.c_int
lib.fclf_model_free.argtypes = [ctypes.c_void_p]
lib.fclf_class_name.argtypes = [ctypes.c_int]
lib.fclf_class_name.restype = ctypes.c_char_p
lib.fclf_last_error.restype = ctypes.c_char_p

model = ctypes.c_void_p()
if lib.fclf_model_load_default(ctypes.byref(model)) != 0:
    sys.exit("classify.py: " + lib.fclf_last_error().decode())

with gzip.open(args.idx, "rb") as f:
    data = f.read()
n = min(args.count, int.from_bytes(data[4:8], "big"))
pixels = data[16:16 + n * 784]
probs = (ctypes.c_float * (n * 10))()
labels = (ctypes.c_int * n)()
if lib.fclf_predict_batch(model, pixels, n, probs, labels) != 0:
    sys.exit("classify.py: " + lib.fclf_last_error().decode())
for i in range(n):
    print(f"{i}\t{labels[i]}\t{lib.fclf_class_name(labels[i]).decode()}\t{probs[i * 10 + labels[i]]:.4f}")

truth = args.idx.replace("images-idx3", "labels-idx1")
if truth != args.idx and os.path.exists(truth):
    with gzip.open(truth, "rb") as f:
        y = f.read()[8:8 + n]
    print(f"accuracy {sum(labels[i] == y[i] for i in range(n)) / n:.4f} on {n} images")
lib.fclf_model_free(model)
