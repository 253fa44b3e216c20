"""Build hook: the wheel carries the package, not its tests.

pyproject.toml holds everything else. The pytest entry files that sit beside each
testbench (``verif/<design>/test_<design>.py``, ``conftest.py``) are left out of
the wheel here, because setuptools can exclude packages but not single modules.
"""

from setuptools import setup
from setuptools.command.build_py import build_py


def is_test_module(module):
    return module.startswith("test_") or module == "conftest"


class BuildPyWithoutTests(build_py):
    def find_package_modules(self, package, package_dir):
        return [entry for entry in super().find_package_modules(package, package_dir)
                if not is_test_module(entry[1])]


setup(cmdclass={"build_py": BuildPyWithoutTests})
