"""scripts/setup.sh installs only when the packaging files changed or new extras are asked for.

Run against a copy of the packaging files with a stand-in `.venv/bin/python` that records its
calls and runs no pip, so nothing is installed anywhere.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STAND_IN = """#!/bin/sh
echo "$*" >> "$(dirname "$0")/calls.log"
case "$1" in -c|-) exec "{python}" "$@" ;; esac
exit 0
"""

pytestmark = pytest.mark.skipif(shutil.which("bash") is None or sys.platform == "win32", reason="needs bash")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name in ("setup.cfg", "pyproject.toml", "animerec/__init__.py", "scripts/setup.sh"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text(STAND_IN.format(python=sys.executable))
    (bin_dir / "animerec").write_text("#!/bin/sh\necho animerec 0.1.0\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    return tmp_path


def setup(project: Path, extras: str = "") -> tuple[list[str], str]:
    """The pip commands one `setup.sh EXTRAS` ran, and what it said on stderr."""
    log = project / ".venv" / "bin" / "calls.log"
    log.unlink(missing_ok=True)
    result = subprocess.run(["bash", "scripts/setup.sh", *([extras] if extras else [])], cwd=project,
                            capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin",
                                                                              "PYTHON": sys.executable})
    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines() if log.exists() else []
    return [call for call in calls if call.startswith("-m pip install") and "--upgrade pip" not in call], result.stderr


def test_setup_installs_once_until_packaging_or_extras_change(project: Path) -> None:
    assert setup(project)[0] == ["-m pip install --quiet -e ."]
    installs, said = setup(project)
    assert installs == [] and "up to date" in said  # demo.sh's second run
    assert setup(project, "train,dev")[0] == ["-m pip install --quiet -e .[train,dev]"]
    assert setup(project, "dev")[0] == [] and setup(project)[0] == []  # covered by the last install
    with (project / "setup.cfg").open("a") as handle:
        handle.write("\n# a new dependency, say\n")
    assert setup(project)[0] == ["-m pip install --quiet -e ."]
    assert setup(project, "dev")[0] == ["-m pip install --quiet -e .[dev]"]  # the old install was other files'


def test_every_data_folder_is_a_declared_package_with_its_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """setuptools warns, at length, about a folder with files that is not in `packages`; a file
    left out of `package_data` is missing from an installed wheel. Only the model card's figures
    (*.png) stay in the repository."""
    from fnmatch import fnmatch

    from setuptools.config.setupcfg import read_configuration

    monkeypatch.chdir(ROOT)
    options = read_configuration("setup.cfg")["options"]
    packages, data = set(options["packages"]), options["package_data"]
    for path in sorted((ROOT / "animerec").rglob("*")):
        folder = path.parent.relative_to(ROOT)
        if not path.is_file() or "__pycache__" in folder.parts or path.suffix in (".py", ".png"):
            continue
        package = ".".join(folder.parts)
        assert package in packages, f"{folder} holds {path.name} but is not a package"
        assert any(fnmatch(path.name, pattern) for pattern in data.get(package, [])), f"{path} is not package data"
