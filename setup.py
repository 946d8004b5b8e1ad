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
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        import torch

        build_dir = Path(os.environ.get("SOFTSIGN_BUILD_DIR", ROOT / "build" / "python"))
        build_dir.mkdir(parents=True, exist_ok=True)
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
        for name in ("libsoftsign.so", Path(self.get_ext_filename("_C")).name):
            self.copy_file(str(build_dir / name), str(out / name))


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
    install_requires=["torch>=2.11"],
    zip_safe=False,
)
