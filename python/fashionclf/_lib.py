"""Finding, loading and declaring libfashionclf (the C API of Sources/CFashionCLF/include/fashionclf.h)."""
import ctypes
import ctypes.util
import os
import threading

# The C API major version this binding was written for (FCLF_VERSION_MAJOR); 1.x libraries only add.
API_MAJOR = 1

_SONAME = "libfashionclf.so.1"
_DEVNAME = "libfashionclf.so"
_FIX = ("set FASHIONCLF_LIB to the library (or its folder), install it with scripts/install.sh, "
        "or run `swift build` in the repository")


class LibraryError(OSError):
    """libfashionclf could not be found or loaded, or is a version this binding does not support."""


_lock = threading.Lock()
_loaded = None  # (ctypes.CDLL, path)


def _repo_build_dirs():
    # python/fashionclf/_lib.py -> the repository root is two folders above the package.
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return [os.path.join(root, ".build", "release"), os.path.join(root, ".build", "debug")]


def _in_folder(folder):
    for name in (_SONAME, _DEVNAME):
        p = os.path.join(folder, name)
        if os.path.isfile(p):
            return p
    return None


def _candidates():
    """(path or loader name, what it is) in search order, after FASHIONCLF_LIB."""
    out = []
    found = ctypes.util.find_library("fashionclf")
    if found:
        out.append(found)
    for folder in ("/usr/local/lib", "/usr/lib"):
        p = _in_folder(folder)
        if p:
            out.append(p)
    for folder in _repo_build_dirs():
        p = _in_folder(folder)
        if p:
            out.append(p)
    return out


def _one_line(text):
    return " ".join(str(text).split())


def _open(path):
    try:
        return ctypes.CDLL(path)
    except OSError as e:
        raise LibraryError(f"fashionclf: cannot load {path}: {_one_line(e)}; {_FIX}") from None


def _check_version(number, path):
    if number // 10000 != API_MAJOR:
        v = f"{number // 10000}.{number // 100 % 100}.{number % 100}"
        raise LibraryError(f"fashionclf: {path} is libfashionclf {v}, but this Python package needs C API "
                           f"{API_MAJOR}.x; point FASHIONCLF_LIB at a {API_MAJOR}.x library or use the "
                           f"fashionclf package that matches {v}")


def _declare(lib, path):
    c = ctypes
    vp, st, f32p, intp = c.c_void_p, c.c_int, c.POINTER(c.c_float), c.POINTER(c.c_int)
    sigs = {
        "fclf_version_number": (c.c_int, []),
        "fclf_version": (c.c_char_p, []),
        "fclf_model_load": (st, [c.c_char_p, c.POINTER(vp)]),
        "fclf_model_load_default": (st, [c.POINTER(vp)]),
        "fclf_model_load_memory": (st, [vp, c.c_size_t, c.POINTER(vp)]),
        "fclf_model_free": (None, [vp]),
        "fclf_model_metadata": (c.c_char_p, [vp]),
        "fclf_predict": (st, [vp, vp, f32p, intp]),
        "fclf_predict_batch": (st, [vp, vp, c.c_size_t, f32p, intp]),
        "fclf_predict_image_file": (st, [vp, c.c_char_p, f32p, intp]),
        "fclf_predict_image_memory": (st, [vp, vp, c.c_size_t, f32p, intp]),
        "fclf_predict_pixels": (st, [vp, vp, c.c_int, c.c_int, c.c_size_t, c.c_int, f32p, intp]),
        "fclf_class_name": (c.c_char_p, [c.c_int]),
        "fclf_status_string": (c.c_char_p, [c.c_int]),
        "fclf_last_error": (c.c_char_p, []),
        "fclf_set_threads": (None, [c.c_int]),
    }
    u = c.c_uint
    since_1_1 = {  # optional: a 1.0 library lacks them, and only flip_average needs them
        "fclf_classify": (st, [vp, vp, u, f32p, intp, intp]),
        "fclf_classify_image_file": (st, [vp, c.c_char_p, u, f32p, intp, intp]),
        "fclf_classify_image_memory": (st, [vp, vp, c.c_size_t, u, f32p, intp, intp]),
        "fclf_classify_pixels": (st, [vp, vp, c.c_int, c.c_int, c.c_size_t, c.c_int, u, f32p, intp, intp]),
    }
    try:
        number = lib.fclf_version_number()
    except AttributeError:
        raise LibraryError(f"fashionclf: {path} has no fclf_version_number: it predates C API "
                           f"{API_MAJOR}.0; rebuild it (swift build) or install a newer one") from None
    _check_version(number, path)
    for name, (restype, argtypes) in sigs.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            raise LibraryError(f"fashionclf: {path} lacks {name}; {_FIX}") from None
        fn.restype = restype
        fn.argtypes = argtypes
    for name, (restype, argtypes) in since_1_1.items():
        fn = getattr(lib, name, None)
        if fn is not None:
            fn.restype = restype
            fn.argtypes = argtypes
    return lib


def require(lib, name, what):
    """The optional function `name`, or LibraryError saying which library version `what` needs."""
    fn = getattr(lib, name, None)
    if fn is None or fn.argtypes is None:
        raise LibraryError(f"fashionclf: {what} needs libfashionclf 1.1 or newer ({name}); this one is "
                           f"{lib.fclf_version().decode()}; {_FIX}")
    return fn


def load_library(path=None):
    """Loads libfashionclf once per process and returns its path.

    `path` (a .so file or a folder holding one) overrides the search; otherwise: FASHIONCLF_LIB, then
    the installed library (ctypes.util.find_library, /usr/local/lib, /usr/lib), then the repository's
    .build/release and .build/debug. Raises LibraryError with one line saying what was tried."""
    global _loaded
    with _lock:
        if path is not None:
            path = os.fspath(path)
            wanted = _in_folder(path) if os.path.isdir(path) else path
            if _loaded is not None:
                if wanted and os.path.realpath(wanted) == os.path.realpath(_loaded[1]):
                    return _loaded[1]
                raise LibraryError(f"fashionclf: {_loaded[1]} is already loaded; call load_library({path!r}) "
                                   f"before the first model, or use one library per process")
            if not wanted or not os.path.isfile(wanted):
                raise LibraryError(f"fashionclf: no libfashionclf at {path} (neither a library file nor a "
                                   f"folder holding {_SONAME} or {_DEVNAME}); {_FIX}")
            _loaded = (_declare(_open(wanted), wanted), wanted)
            return wanted
        if _loaded is not None:
            return _loaded[1]
        env = os.environ.get("FASHIONCLF_LIB")
        if env:
            wanted = _in_folder(env) if os.path.isdir(env) else env
            if not wanted or not os.path.isfile(wanted):
                raise LibraryError(f"fashionclf: FASHIONCLF_LIB={env} is neither a library file nor a folder "
                                   f"holding {_SONAME} or {_DEVNAME}; {_FIX}")
            _loaded = (_declare(_open(wanted), wanted), wanted)
            return wanted
        failures = []
        for cand in _candidates():
            try:
                lib = ctypes.CDLL(cand)
            except OSError as e:
                failures.append(f"{cand} ({_one_line(e)})")
                continue
            _loaded = (_declare(lib, cand), cand)
            return cand
        tried = ["FASHIONCLF_LIB (not set)", "ctypes.util.find_library('fashionclf')",
                 "/usr/local/lib", "/usr/lib"] + _repo_build_dirs()
        why = f"; failed to load: {', '.join(failures)}" if failures else ""
        raise LibraryError(f"fashionclf: libfashionclf not found (tried {', '.join(tried)}){why}; {_FIX}")


def lib():
    """The loaded library (loading it on first use)."""
    if _loaded is None:
        load_library()
    return _loaded[0]
