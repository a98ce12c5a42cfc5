import gc
import json
import threading

import numpy as np
import pytest

import fashionclf
from conftest import MODEL_FILE


def test_constants_match_library(model):
    lib = fashionclf._library()
    assert fashionclf.CLASS_NAMES == tuple(lib.fclf_class_name(i).decode() for i in range(10))
    assert lib.fclf_class_name(10) is None


def test_version():
    v = fashionclf.version()
    major, minor, patch = (int(x) for x in v.split("."))
    assert major == 1
    assert fashionclf._library().fclf_version_number() == major * 10000 + minor * 100 + patch


def test_version_check_refuses_other_majors():
    fashionclf._lib._check_version(10000, "lib.so")
    fashionclf._lib._check_version(10203, "lib.so")
    with pytest.raises(fashionclf.LibraryError, match=r"lib\.so is libfashionclf 2\.1\.0.*needs C API 1\.x"):
        fashionclf._lib._check_version(20100, "lib.so")


def test_predict_shapes_and_dtypes(model, test_set):
    images, _ = test_set
    labels, probs = model.predict(images[:5])
    assert labels.shape == (5,) and labels.dtype in (np.int32, np.int64)
    assert probs.shape == (5, 10) and probs.dtype == np.float32
    assert np.all((labels >= 0) & (labels <= 9))
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    assert np.array_equal(labels, probs.argmax(axis=1))
    flat_labels, flat_probs = model.predict(images[:5].reshape(5, 784))
    assert np.array_equal(flat_labels, labels) and np.array_equal(flat_probs, probs)
    one_labels, one_probs = model.predict(images[3])
    assert one_labels.shape == (1,) and one_probs.shape == (1, 10)
    assert np.array_equal(one_probs[0], probs[3])
    empty_labels, empty_probs = model.predict(images[:0])
    assert empty_labels.shape == (0,) and empty_probs.shape == (0, 10)


def test_batch_agrees_with_single_images(model, test_set):
    images, _ = test_set
    labels, probs = model.predict(images[:64])
    for i in range(64):
        p = model.classify(images[i])
        assert p.label == labels[i]
        np.testing.assert_allclose(p.probabilities, probs[i], rtol=1e-5, atol=1e-6)
        assert p.class_name == fashionclf.CLASS_NAMES[p.label]
        assert p.confidence == pytest.approx(float(probs[i].max()))
        assert p.unsure == (p.confidence < 0.5)


def test_accuracy_first_1000(model, test_set):
    images, truth = test_set
    labels, _ = model.predict(images)
    accuracy = float(np.mean(labels == truth))
    assert accuracy > 0.85, accuracy


def test_threads_do_not_change_results(model, test_set):
    images, _ = test_set
    _, reference = model.predict(images[:200])
    fashionclf.set_threads(1)
    try:
        _, one = model.predict(images[:200])
    finally:
        fashionclf.set_threads(0)
    np.testing.assert_array_equal(one, reference)


def test_concurrent_predictions_share_one_model(model, test_set):
    images, _ = test_set
    _, reference = model.predict(images[:100])
    results, errors = [None] * 4, []

    def work(k):
        try:
            results[k] = model.predict(images[:100])[1]
        except Exception as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for r in results:
        np.testing.assert_allclose(r, reference, rtol=1e-5, atol=1e-6)


def test_metadata(model):
    meta = model.metadata
    for key in ("architecture", "parameters", "format_version", "test_accuracy", "created"):
        assert key in meta
    assert meta["architecture"] in ("cnn", "cnn-bn", "cnn3-bn", "cnn3w-bn", "wide-bn", "wide-bn-nodrop", "same-bn", "deep-bn") and meta["parameters"] > 100000
    json.dumps(meta)


def test_model_from_file_and_bytes_equal_default(model, test_set):
    images, _ = test_set
    _, reference = model.predict(images[:50])
    with open(MODEL_FILE, "rb") as f:
        data = f.read()
    for m in (fashionclf.Model(MODEL_FILE), fashionclf.Model.from_bytes(data),
              fashionclf.Model.from_bytes(bytearray(data)), fashionclf.Model.from_bytes(memoryview(data))):
        with m:
            assert np.array_equal(m.predict(images[:50])[1], reference)
            assert m.metadata == model.metadata


def test_bad_images_raise_value_error(model, test_set):
    images, _ = test_set
    with pytest.raises(ValueError, match="dtype uint8.*float32"):
        model.predict(images[:2].astype(np.float32))
    with pytest.raises(ValueError, match=r"shape \(n, 28, 28\).*\(2, 27, 28\)"):
        model.predict(images[:2, :27])
    with pytest.raises(ValueError, match=r"got \(2, 783\)"):
        model.predict(images[:2].reshape(2, 784)[:, :783].copy())
    with pytest.raises(ValueError, match="C-contiguous"):
        model.predict(images[:2].transpose(0, 2, 1))
    with pytest.raises(ValueError, match="C-contiguous"):
        model.predict(images[:4:2])
    with pytest.raises(TypeError, match="NumPy uint8 array"):
        model.predict(images[:2].tolist())
    with pytest.raises(ValueError, match="shape"):
        model.classify(images[:2])


def test_bad_model_inputs_raise_library_errors(tmp_path):
    with pytest.raises(fashionclf.FashionCLFError) as e:
        fashionclf.Model(tmp_path / "missing.fclf")
    assert e.value.status == fashionclf.Status.IO and e.value.status_name == "IO"
    assert "missing.fclf" in e.value.detail and str(e.value).startswith("IO: ")
    with pytest.raises(fashionclf.FashionCLFError) as e:
        fashionclf.Model.from_bytes(b"not a model")
    assert e.value.status == fashionclf.Status.FORMAT and "magic" in str(e.value)
    with pytest.raises(fashionclf.FashionCLFError) as e:
        fashionclf.Model.from_bytes(b"")
    assert e.value.status == fashionclf.Status.FORMAT


def test_close_frees_once(monkeypatch, test_set):
    freed = []
    real = fashionclf._model._free
    monkeypatch.setattr(fashionclf._model, "_free", lambda lib, h: (freed.append(h), real(lib, h)))
    m = fashionclf.Model.default()
    m.close()
    m.close()
    assert m.closed and len(freed) == 1
    with pytest.raises(ValueError, match="closed"):
        m.predict(test_set[0][:1])
    with pytest.raises(ValueError, match="closed"):
        m.metadata
    with fashionclf.Model.default() as m2:
        pass
    assert m2.closed and len(freed) == 2
    m2.close()
    m3 = fashionclf.Model.default()
    del m3
    gc.collect()
    assert len(freed) == 3
    m4 = fashionclf.Model.default()
    m4.close()
    del m4
    gc.collect()
    assert len(freed) == 4
