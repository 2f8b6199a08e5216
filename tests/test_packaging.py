"""Packaging (SPEC §8.1): the wheel carries the rules, the default configuration and the sample,
and an installed wheel (not editable) works from any directory.

The wheel is built from a copy of the checkout without build isolation and installed with
--no-index into a fresh venv that borrows this environment's dependencies, so the test needs
no network. `.ci/run` does the same from the package registry, in a venv of its own, and runs
`settle demo` there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ("sql", "config", "sample_data")


def _checkout_data() -> set[str]:
    """Where each data file of the checkout belongs in the wheel (make.sh is for developers)."""
    return {
        f"settlement/bundled/{p.relative_to(ROOT).as_posix()}"
        for name in DATA
        for p in (ROOT / name).rglob("*")
        if p.is_file() and p.name != "make.sh"
    }


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(wheel, venv, site-packages) with the wheel built from this checkout and installed."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("settlement", *DATA):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", tmp, src],
        check=True,
    )
    (wheel,) = tmp.glob("*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # the dependencies (polars, duckdb …) from this environment; the engine only from the wheel
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [*pip, "--python", python, "install", "--no-deps", "--no-index", wheel], check=True
    )
    return wheel, venv, site


def test_wheel_ships_rules_config_and_sample(installed):
    wheel, _, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {n for n in names if n.startswith("settlement/bundled/")}
    assert shipped == _checkout_data()
    assert "settlement/bundled/sql/05_types.sql" in shipped
    assert "settlement/bundled/config/policies/150700.toml" in shipped
    assert "settlement/bundled/sample_data/150700/2025-06/jd_sf.xlsx" in shipped


def test_installed_wheel_works_from_another_directory(installed, tmp_path):
    _, venv, site = installed
    bundled = site / "settlement" / "bundled"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    def installed_run(program, *args):
        """Run one of the venv's programs from tmp_path, as a user elsewhere would."""
        return subprocess.run(
            [venv / "bin" / program, *map(str, args)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
        )

    def settle(*args):
        return installed_run("settle", *args)

    where = installed_run(
        "python",
        "-c",
        "import settlement as s; "
        "print(s.SQL_DIR, s.DEFAULT_CONFIG_DIR, s.SAMPLE_DATA_DIR, sep='\\n')",
    )
    assert where.returncode == 0, where.stderr
    assert where.stdout.split() == [str(bundled / d) for d in DATA]

    listing = settle("query", "--list")
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.count("\n    问题：") == 6
    assert "payouts_by_company_county\n    问题：" in listing.stdout

    made = settle(
        "sample",
        "--league",
        "150700",
        "--month",
        "2025-03",
        "--rows",
        300,
        "--faults",
        "0.01",
        "-o",
        "logs.csv",
    )
    assert (made.returncode, made.stdout) == (0, "已生成 logs.csv（csv，300 行）\n")
    checked = settle("validate", "logs.csv", "--league", "150700", "--month", "2025-03")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("预检 150700 2025-03：共 300 行，")

    ran = settle(
        "run",
        "--league",
        "150700",
        "--month",
        "2025-03",
        "--logs",
        "logs.csv",
        "--config",
        bundled / "config",
        "--out",
        "out",
        "-q",
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("结算完成  呼伦贝尔市（150700） 2025-03")
    county = settle(
        "sql",
        "SELECT name FROM counties WHERE code = '150702'",
        "--store",
        "out/settlement.duckdb",
        "--format",
        "csv",
    )
    assert (county.returncode, county.stdout) == (0, "name\n海拉尔区\n")
