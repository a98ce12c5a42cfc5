"""Finding the library: run in subprocesses so that this process's loaded library does not leak in."""
import ctypes.util
import os
import shutil
import subprocess
import sys

import pytest

from conftest import PYTHON_DIR

PROBE = """
import fashionclf                         # importing never needs the library
try:
    fashionclf.Model.default()
except fashionclf.LibraryError as e:
    assert e.__cause__ is None and (e.__context__ is None or e.__suppress_context__)  # no ctypes chain
    print("ERROR", e)
else:
    print("LOADED", fashionclf.load_library())
"""


def probe(package_parent, **env):
    full = {k: v for k, v in os.environ.items() if k != "FASHIONCLF_LIB"}
    full.update(env)
    full["PYTHONPATH"] = package_parent
    run = subprocess.run([sys.executable, "-c", PROBE], env=full, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 1, run.stdout
    return lines[0]


def test_fashionclf_lib_pointing_nowhere_is_one_clear_line(tmp_path):
    line = probe(PYTHON_DIR, FASHIONCLF_LIB=str(tmp_path / "nowhere"))
    assert line.startswith("ERROR fashionclf: FASHIONCLF_LIB=") and str(tmp_path / "nowhere") in line
    assert "scripts/install.sh" in line and "swift build" in line


def test_fashionclf_lib_not_a_library(tmp_path):
    bogus = tmp_path / "libfashionclf.so"
    bogus.write_text("not a library\n")
    line = probe(PYTHON_DIR, FASHIONCLF_LIB=str(tmp_path))
    assert line.startswith(f"ERROR fashionclf: cannot load {bogus}:")
    assert "FASHIONCLF_LIB" in line


def test_fashionclf_lib_file_and_folder_load():
    path = probe(PYTHON_DIR).split(" ", 1)[1]        # whatever the search finds here
    if not os.path.isabs(path):                      # found by name through the loader cache (an installed copy)
        pytest.skip(f"the library was found as {path}, not as a file path")
    assert probe(PYTHON_DIR, FASHIONCLF_LIB=path) == f"LOADED {path}"
    folder = os.path.dirname(path)
    assert probe(PYTHON_DIR, FASHIONCLF_LIB=folder).startswith(f"LOADED {folder}/libfashionclf.so")


def test_nothing_found_lists_what_was_tried(tmp_path):
    if ctypes.util.find_library("fashionclf") or any(
            os.path.exists(f"{d}/libfashionclf.so.1") or os.path.exists(f"{d}/libfashionclf.so")
            for d in ("/usr/local/lib", "/usr/lib")):
        pytest.skip("libfashionclf is installed on this machine")
    copy = tmp_path / "site"
    shutil.copytree(os.path.join(PYTHON_DIR, "fashionclf"), copy / "fashionclf",
                    ignore=shutil.ignore_patterns("__pycache__"))
    line = probe(str(copy))   # a package outside the repository: no build folders to fall back on
    assert line.startswith("ERROR fashionclf: libfashionclf not found (tried FASHIONCLF_LIB (not set)")
    assert "/usr/local/lib" in line and "scripts/install.sh" in line and "swift build" in line
