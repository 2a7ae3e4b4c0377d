"""Everything else is in pyproject.toml. The icons and sounds live in the top-level resources/
folder and are installed as the package `dictate.resources` (found through importlib.resources);
pyproject.toml alone cannot add a mapped package to the discovered ones."""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["dictate", "dictate.*"]) + ["dictate.resources"],
    package_dir={"dictate.resources": "resources"},
)
