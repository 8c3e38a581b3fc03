"""Build glue for what pyproject.toml cannot say: ship the CUDA sources in the wheel.

The sources stay in one place in git, ``kernels/`` at the repository root (next to the
package, where ``facelab.kernel_sources.kernel_dir`` finds them in a checkout). In a wheel they
become the package data folder ``facelab/_kernels/`` (``kernel_dir`` looks there when
installed). pyproject's ``[tool.setuptools.packages.find]`` cannot add a package that lives
outside ``facelab/``, so the package list is given here: every ``facelab*`` package (the same
search pyproject's ``find`` did) plus ``facelab._kernels`` mapped onto ``kernels/``; the file
patterns are in pyproject's ``[tool.setuptools.package-data]``. tests/test_wheel.py builds the
wheel and runs every kernel from it.
"""

from setuptools import find_namespace_packages, setup

setup(
    packages=[*find_namespace_packages(include=["facelab*"]), "facelab._kernels"],
    package_dir={"facelab._kernels": "kernels"},
)
