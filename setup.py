"""Builds softsign's native library with CMake (the one place that lists sources) and
packages it with the Python sources in python/softsign.

Environment:
  SOFTSIGN_WITH_CUDA     AUTO (default), 1 or 0: build the CUDA kernels.
  TORCH_CUDA_ARCH_LIST   CUDA architectures, e.g. "9.0" (default "8.0;9.0").
  SOFTSIGN_BUILD_DIR     CMake build folder (default build/python): kept between
                         installs, so a second `pip install` only rebuilds what changed.
  SOFTSIGN_BUILD_TESTS   1 to build the GoogleTest tests and the C++ example there too
                         (the test command runs ctest in that folder).
  MAX_JOBS               parallel compile jobs.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name):
        super().__init__(name, sources=[])


# What a build folder was configured for: reused only by the same sources, interpreter and
# torch, so
# that a folder left by another environment (or by a deleted pip build environment) is
# discarded instead of pointing into it.
BUILD_KEY = "softsign-build-key.txt"


def _torch_or_exit():
    """The torch of this environment. softsign's binary works with the torch it is compiled
    against only, so it is built against the user's: without build isolation."""
    try:
        import torch
    except ImportError:
        raise SystemExit(
            "softsign compiles against the torch of the environment it is installed into, and "
            "found none. Install torch first, then build without isolation:\n"
            "    pip install torch\n    pip install --no-build-isolation .\n"
            "(a plain `pip install .` builds in an isolated environment without torch)"
        ) from None
    return torch


def _prepare_build_dir(build_dir, torch):
    key = f"{ROOT}\n{sys.executable}\n{Path(torch.__file__).parent}\n{torch.__version__}\n"
    stamp = build_dir / BUILD_KEY
    if build_dir.exists() and (not stamp.exists() or stamp.read_text() != key):
        shutil.rmtree(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(key)


def _torch_requirement():
    """The wheel works with exactly the torch it was compiled against: its release is pinned
    here (as torchvision pins its), its build variant (+cu130, +cpu) is checked at import
    (softsign/_build_info.py). An sdist only needs a supported torch."""
    try:
        import torch
    except ImportError:
        return "torch>=2.11"
    return f"torch=={torch.__version__.split('+')[0]}"


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        torch = _torch_or_exit()

        build_dir = Path(os.environ.get("SOFTSIGN_BUILD_DIR", ROOT / "build" / "python"))
        _prepare_build_dir(build_dir, torch)
        tests = os.environ.get("SOFTSIGN_BUILD_TESTS", "0") not in ("0", "", "OFF")
        args = [
            f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}",
            f"-DPython_EXECUTABLE={sys.executable}",
            "-DCMAKE_BUILD_TYPE=Release",
            "-DSOFTSIGN_BUILD_PYTHON=ON",
            f"-DSOFTSIGN_BUILD_TESTS={'ON' if tests else 'OFF'}",
            f"-DSOFTSIGN_BUILD_EXAMPLES={'ON' if tests else 'OFF'}",
        ]
        if os.environ.get("SOFTSIGN_WITH_CUDA"):
            args.append(f"-DSOFTSIGN_WITH_CUDA={os.environ['SOFTSIGN_WITH_CUDA']}")
        generator = (
            ["-G", "Ninja"] if _has_ninja() and not (build_dir / "Makefile").exists() else []
        )
        subprocess.run(
            ["cmake", "-S", str(ROOT), "-B", str(build_dir), *generator, *args], check=True
        )
        jobs = os.environ.get("MAX_JOBS", str(os.cpu_count() or 1))
        subprocess.run(["cmake", "--build", str(build_dir), "-j", jobs], check=True)

        out = Path(self.get_ext_fullpath(ext.name)).parent
        out.mkdir(parents=True, exist_ok=True)
        (out / "_build_info.py").write_text(
            '"""Written by setup.py: the torch this build of softsign was compiled against."""\n'
            f"TORCH_VERSION = {torch.__version__!r}\n"
        )
        # What `cmake --install` lays out for the package, then, in it: libsoftsign.so
        # beside _C, torch's libraries in the torch package next to ours; nothing of this
        # machine's paths.
        subprocess.run(
            [
                "cmake",
                "--install",
                str(build_dir),
                "--component",
                "python",
                "--prefix",
                str(out.parent),
            ],
            check=True,
        )
        for name in ("libsoftsign.so", Path(self.get_ext_filename("_C")).name):
            subprocess.run(
                [
                    "cmake",
                    f"-DFILE={out / name}",
                    "-DRPATH=$ORIGIN:$ORIGIN/../torch/lib",
                    "-P",
                    str(ROOT / "cmake" / "set_rpath.cmake"),
                ],
                check=True,
            )


def _has_ninja():
    from shutil import which

    return which("ninja") is not None


setup(
    name="softsign",
    version="0.1.0",
    description="SoftSignum and SoftMuon optimizers for PyTorch with fused CPU/CUDA kernels",
    license="MIT",
    python_requires=">=3.10",
    package_dir={"": "python"},
    packages=find_packages("python"),
    ext_modules=[CMakeExtension("softsign._C")],
    cmdclass={"build_ext": CMakeBuild},
    install_requires=[_torch_requirement()],
    # softsign.integrations.hf (the Trainer callback, param groups for transformers models)
    # and softsign.integrations.lightning: `pip install --no-build-isolation ".[hf]"`.
    extras_require={"hf": ["transformers", "accelerate"], "lightning": ["lightning"]},
    zip_safe=False,
)
