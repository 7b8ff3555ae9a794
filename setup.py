"""Build hook (the project is configured in pyproject.toml).

The wheel carries ``prefect.yaml`` as package data of ``flows``, so ``caseward serve`` finds
its deployments in an installed wheel too; a checkout keeps the one file at its top, where
``prefect deploy`` and workers read it (``flows.deployments.PREFECT_YAML`` looks there first).
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPy(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads the checkout's file
            return
        target = Path(self.build_lib) / "flows"
        self.mkpath(str(target))
        self.copy_file("prefect.yaml", str(target / "prefect.yaml"))


setup(cmdclass={"build_py": BuildPy})
