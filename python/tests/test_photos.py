import csv
import os
import struct
import zlib

import numpy as np
import pytest

import fashionclf
from conftest import PHOTOS

FEW = ["0-tshirt-1.jpg", "1-trouser-1.jpg", "3-dress-1.jpg", "4-coat-1.jpg"]


def write_png(path, frame):
    """An 8-bit gray (H, W), RGB (H, W, 3) or RGBA (H, W, 4) PNG with zlib and struct only."""
    height, width = frame.shape[:2]
    channels = 1 if frame.ndim == 2 else frame.shape[2]
    color_type = {1: 0, 3: 2, 4: 6}[channels]
    rows = np.ascontiguousarray(frame).reshape(height, width * channels)
    raw = b"".join(b"\x00" + rows[y].tobytes() for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(png)


def trouser_frame(height=90, width=60):
    """A dark pair of trousers on a light, slightly noisy background (RGB)."""
    rng = np.random.default_rng(14)
    frame = (235 + rng.integers(0, 15, size=(height, width, 3))).astype(np.uint8)
    frame[10:80, 15:28] = (30, 40, 90)
    frame[10:80, 32:45] = (30, 40, 90)
    frame[10:25, 15:45] = (30, 40, 90)
    return frame


def check(p):
    assert isinstance(p, fashionclf.Prediction)
    assert 0 <= p.label <= 9 and p.class_name == fashionclf.CLASS_NAMES[p.label]
    assert p.probabilities.shape == (10,) and p.probabilities.dtype == np.float32
    assert abs(float(p.probabilities.sum()) - 1) < 1e-4
    assert p.confidence == float(p.probabilities.max()) == float(p.probabilities[p.label])
    assert p.unsure == (p.confidence < fashionclf.UNSURE_BELOW)


def test_labels_file_lists_the_photos():
    with open(os.path.join(PHOTOS, "labels.csv"), newline="") as f:
        names = {row["file"] for row in csv.DictReader(f)}
    assert set(FEW) <= names


@pytest.mark.parametrize("name", FEW)
def test_classify_photo_file_and_bytes_agree(model, name):
    path = os.path.join(PHOTOS, name)
    from_file = model.classify_photo(path)
    check(from_file)
    with open(path, "rb") as f:
        data = f.read()
    from_bytes = model.classify_photo_bytes(data)
    assert from_bytes.label == from_file.label
    np.testing.assert_array_equal(from_bytes.probabilities, from_file.probabilities)
    import pathlib
    np.testing.assert_array_equal(model.classify_photo(pathlib.Path(path)).probabilities, from_file.probabilities)


def test_example_photos_top1_at_least_40_percent(model):
    """A regression guard on all 40 labelled example photos: the built-in model names 52.5% of them."""
    with open(os.path.join(PHOTOS, "labels.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    right = sum(model.classify_photo(os.path.join(PHOTOS, r["file"])).label == int(r["label_index"]) for r in rows)
    assert len(rows) == 40 and right >= 16, right


def test_classify_frame_equals_the_same_frame_as_png(model, tmp_path):
    frame = trouser_frame()
    rgba = np.dstack([frame, np.full(frame.shape[:2], 255, np.uint8)])
    gray = frame.mean(axis=2).astype(np.uint8)
    for name, f in (("rgb", frame), ("rgba", rgba), ("gray", gray)):
        path = tmp_path / f"{name}.png"
        write_png(path, f)
        from_png = model.classify_photo(path)
        from_frame = model.classify_frame(f)
        check(from_frame)
        assert from_frame.label == from_png.label, name
        np.testing.assert_array_equal(from_frame.probabilities, from_png.probabilities, err_msg=name)


def test_classify_frame_strides_and_bgr(model):
    big = trouser_frame(100, 80)
    crop = big[5:95, 10:70]                     # rows strided: 80 * 3 bytes apart, 60 pixels used
    assert not crop.flags.c_contiguous
    packed = np.ascontiguousarray(crop)
    expected = model.classify_frame(packed)
    np.testing.assert_array_equal(model.classify_frame(crop).probabilities, expected.probabilities)
    bgr = np.ascontiguousarray(packed[:, :, ::-1])
    np.testing.assert_array_equal(model.classify_frame(bgr, bgr=True).probabilities, expected.probabilities)
    gray_big = big.mean(axis=2).astype(np.uint8)
    np.testing.assert_array_equal(model.classify_frame(gray_big[5:95, 10:70]).probabilities,
                                  model.classify_frame(np.ascontiguousarray(gray_big[5:95, 10:70])).probabilities)


def test_bad_photos_and_frames(model, tmp_path):
    with pytest.raises(fashionclf.FashionCLFError) as e:
        model.classify_photo(tmp_path / "no-such-photo.jpg")
    assert e.value.status == fashionclf.Status.IO and e.value.status_name == "IO"
    assert "no-such-photo.jpg" in e.value.detail
    with pytest.raises(fashionclf.FashionCLFError) as e:
        model.classify_photo_bytes(b"not an image")
    assert e.value.status == fashionclf.Status.FORMAT and "not a JPEG or PNG" in str(e.value)
    not_image = tmp_path / "b.jpg"
    not_image.write_bytes(b"not an image")
    with pytest.raises(fashionclf.FashionCLFError) as e:
        model.classify_photo(not_image)
    assert e.value.status == fashionclf.Status.FORMAT
    with pytest.raises(fashionclf.FashionCLFError) as e:
        model.classify_frame(np.zeros((0, 0, 3), np.uint8))
    assert e.value.status == fashionclf.Status.INVALID_ARGUMENT
    frame = trouser_frame()
    with pytest.raises(ValueError, match="dtype uint8"):
        model.classify_frame(frame.astype(np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 3\) RGB"):
        model.classify_frame(np.zeros((10, 10, 2), np.uint8))
    with pytest.raises(ValueError, match="packed"):
        model.classify_frame(frame[:, ::2])
    with pytest.raises(ValueError, match="packed"):
        model.classify_frame(frame[::-1])
    with pytest.raises(ValueError, match="packed"):
        model.classify_frame(frame[:, :, ::-1])
    with pytest.raises(TypeError):
        model.classify_photo_bytes(12)
    with pytest.raises(ValueError, match="NUL"):
        model.classify_photo("a\0b.jpg")


def test_flip_average_is_the_mean_with_the_mirror_image(model):
    """classify(flip_average=True): the mean of the image's and its mirror's probabilities, their first
    arg-max, and unsure also when the two name different classes (fclf_classify, FCLF_FLIP_AVERAGE)."""
    rng = np.random.default_rng(5)
    disagreements = 0
    for i in range(40):
        image = np.zeros((28, 28), dtype=np.uint8)
        image[4:24, 3 + i % 6:15 + i % 9] = rng.integers(60, 256, size=(20, 12 + i % 9 - i % 6), dtype=np.uint8)
        plain, mirror = model.classify(image), model.classify(np.ascontiguousarray(image[:, ::-1]))
        flipped = model.classify(image, flip_average=True)
        want = (plain.probabilities + mirror.probabilities) / np.float32(2)
        np.testing.assert_array_equal(flipped.probabilities, want)
        assert flipped.label == int(np.argmax(want))
        assert flipped.unsure == (plain.label != mirror.label or float(want.max()) < fashionclf.UNSURE_BELOW)
        disagreements += plain.label != mirror.label
    assert disagreements > 0  # the lopsided images exercise the mirror rule


@pytest.mark.parametrize("name", FEW)
def test_flip_average_photo_file_and_bytes_agree(model, name):
    path = os.path.join(PHOTOS, name)
    from_file = model.classify_photo(path, flip_average=True)
    assert 0 <= from_file.label <= 9 and abs(float(from_file.probabilities.sum()) - 1) < 1e-4
    assert from_file.label == int(np.argmax(from_file.probabilities))
    if from_file.confidence < fashionclf.UNSURE_BELOW:
        assert from_file.unsure
    with open(path, "rb") as f:
        from_bytes = model.classify_photo_bytes(f.read(), flip_average=True)
    assert (from_bytes.label, from_bytes.unsure) == (from_file.label, from_file.unsure)
    np.testing.assert_array_equal(from_bytes.probabilities, from_file.probabilities)


def test_flip_average_frame_equals_the_same_frame_as_png(model, tmp_path):
    frame = trouser_frame()
    path = tmp_path / "trouser.png"
    write_png(path, frame)
    from_png = model.classify_photo(path, flip_average=True)
    from_frame = model.classify_frame(frame, flip_average=True)
    assert (from_frame.label, from_frame.unsure) == (from_png.label, from_png.unsure)
    np.testing.assert_array_equal(from_frame.probabilities, from_png.probabilities)


def test_flip_average_needs_a_1_1_library():
    """A 1.0 library has no fclf_classify*: flip_average=True says which version it needs; the plain call works."""
    class Fn:
        argtypes = None

        def __init__(self, result=0):
            self.result = result

        def __call__(self, *args):
            return self.result

    class Lib10:
        fclf_predict = Fn()

        def fclf_version(self):
            return b"1.0.0"

    from fashionclf import _model
    with pytest.raises(fashionclf.LibraryError, match=r"flip_average=True needs libfashionclf 1\.1 or newer \(fclf_classify\); this one is 1\.0\.0"):
        _model._call(Lib10(), "fclf_predict", "fclf_classify", True, None, None)
    assert _model._call(Lib10(), "fclf_predict", "fclf_classify", False, None, None).label == 0
