"""The installed package as pip laid it out: its native libraries find torch through
$ORIGIN-relative RUNPATHs only, hold no path of the machine that built them, and its
metadata pins the torch they were compiled against."""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import softsign

PACKAGE = Path(softsign.__file__).parent
LIBRARIES = sorted(PACKAGE.glob("*.so"))
REPO = Path(__file__).resolve().parents[2]


def test_the_package_holds_its_two_libraries():
    names = {p.name.split(".")[0] for p in LIBRARIES}
    assert names == {"libsoftsign", "_C"}, LIBRARIES


@pytest.mark.skipif(shutil.which("readelf") is None, reason="readelf (binutils) is missing")
@pytest.mark.parametrize("lib", LIBRARIES, ids=lambda p: p.name)
def test_runpath_is_origin_relative(lib):
    out = subprocess.run(["readelf", "-d", str(lib)], capture_output=True, text=True, check=True)
    paths = [line for line in out.stdout.splitlines() if "RUNPATH" in line or "RPATH" in line]
    assert len(paths) == 1, paths
    assert paths[0].split("[", 1)[1].rstrip("]") == "$ORIGIN:$ORIGIN/../torch/lib"


@pytest.mark.parametrize("lib", LIBRARIES, ids=lambda p: p.name)
def test_no_path_of_the_building_machine(lib):
    data = lib.read_bytes()
    for path in {str(REPO), sys.prefix, str(Path(torch.__file__).parent)}:
        assert path.encode() not in data, f"{lib.name} holds {path}"


def test_metadata_pins_the_torch_it_was_built_against():
    requires = importlib.metadata.requires("softsign") or []
    assert f"torch=={torch.__version__.split('+')[0]}" in requires, requires
    # The build variant (+cu130, +cpu) is checked at import against the recorded one.
    from softsign._build_info import TORCH_VERSION

    assert TORCH_VERSION == torch.__version__
