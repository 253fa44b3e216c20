"""The distribution installs one import package, ``sparsecore``, with every folder of it
and none of its tests (a built wheel was checked by hand with ``pip wheel --no-deps .``)."""

import runpy
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_one_top_level_package_maps_every_folder():
    setuptools = pyproject()["tool"]["setuptools"]
    packages = set(setuptools["packages"])
    assert {p.split(".")[0] for p in packages} == {"sparsecore"}
    found = set()
    for package, folder in setuptools["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            name = ".".join([package, *rel.parts])
            if not any(name.startswith(f"{other}.") for other in setuptools["package-dir"]
                       if other != package and other.startswith(f"{package}.")):
                found.add(name)
    assert found == packages, f"folders and the package list differ: {found ^ packages}"


def test_the_wheel_leaves_out_test_modules(monkeypatch):
    import setuptools

    monkeypatch.setattr(setuptools, "setup", lambda **kwargs: None)
    is_test_module = runpy.run_path(str(ROOT / "setup.py"))["is_test_module"]
    assert is_test_module("test_core") and is_test_module("conftest")
    assert not is_test_module("tests") and not is_test_module("tb")


def test_console_script_is_the_one_command():
    assert pyproject()["project"]["scripts"] == {"sparsecore": "sparsecore.cli:main"}
