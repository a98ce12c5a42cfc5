"""The reference frameworks on exactly the seed's work, with our protocol: 2 threads, warm-up, medians.

Each function returns a dict of figures; compare.py calls them between runs of our fclf-bench so that
ours and theirs are measured back to back."""
import os
import time

import numpy as np

THREADS = int(os.environ.get("FCLF_THREADS", "2"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
DATA = os.environ.get("FCLF_DATA", "/usr/share/datasets/fashion-mnist")


def median(xs):
    return sorted(xs)[len(xs) // 2]


def synthetic(batch, steps, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.random((batch * steps, 1, 28, 28), dtype=np.float32)
    y = (np.arange(batch * steps) % 10).astype(np.int64)
    return x, y


# ---- PyTorch eager -------------------------------------------------------------------------------

def torch_train(model, batch, runs=7, steps=8):
    import torch
    torch.set_num_threads(THREADS)
    nn = torch.nn
    if model == "cnn":
        net = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                            nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(), nn.Linear(128, 10))
    else:
        net = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    x, y = synthetic(batch, steps)
    xb = [torch.from_numpy(x[i * batch:(i + 1) * batch]) for i in range(steps)]
    yb = [torch.from_numpy(y[i * batch:(i + 1) * batch]) for i in range(steps)]

    def epoch():
        for a, b in zip(xb, yb):
            opt.zero_grad(set_to_none=True)
            loss_fn(net(a), b).backward()
            opt.step()

    epoch()
    epoch()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - t)
    return {"images_per_second": batch * steps / median(times)}


# ---- Keras (TensorFlow backend), the seed's framework ---------------------------------------------

def keras_train(model, batch, runs=5, steps=40):
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(THREADS)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras
    from keras import layers
    if model == "cnn":
        net = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
                                layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2), layers.Flatten(),
                                layers.Dense(128, activation="relu"), layers.Dense(10, activation="softmax")])
    else:
        net = keras.Sequential([keras.Input((28, 28, 1)), layers.Flatten(), layers.Dense(128, activation="relu"),
                                layers.Dense(64, activation="relu"), layers.Dense(10, activation="softmax")])
    net.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = synthetic(batch, steps)
    x = x.transpose(0, 2, 3, 1)  # Keras is channels-last
    net.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        net.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
        times.append(time.perf_counter() - t)
    return {"images_per_second": batch * steps / median(times)}


# ---- ONNX Runtime on our own model ---------------------------------------------------------------

# The ONNX model comes from the product's exporter (fclf-export); onnx_check.py checks it agrees with us.


def test_images():
    import gzip
    x = np.frombuffer(gzip.open(os.path.join(DATA, "t10k-images-idx3-ubyte.gz")).read()[16:], np.uint8)
    y = np.frombuffer(gzip.open(os.path.join(DATA, "t10k-labels-idx1-ubyte.gz")).read()[8:], np.uint8)
    return (x.reshape(-1, 1, 28, 28).astype(np.float32) / 255), y


def ort_predict(onnx_path, singles=10000):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = THREADS
    so.inter_op_num_threads = 1
    s = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
    x, y = test_images()
    for i in range(1000 if singles else 0):
        s.run(None, {"x": x[i % len(x):i % len(x) + 1]})
    lat = []
    for i in range(singles):
        t = time.perf_counter()
        s.run(None, {"x": x[i % len(x):i % len(x) + 1]})
        lat.append(time.perf_counter() - t)
    lat.sort()
    probs = s.run(None, {"x": x})[0]
    times = []
    for _ in range(5):
        t = time.perf_counter()
        s.run(None, {"x": x})
        times.append(time.perf_counter() - t)
    out = {"images_per_second": len(x) / median(times), "accuracy": float((probs.argmax(1) == y).mean())}
    if lat:
        out.update(p50_us=lat[len(lat) // 2] * 1e6, p99_us=lat[len(lat) * 99 // 100] * 1e6)
    return out
