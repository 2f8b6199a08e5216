"""快递进村补贴结算引擎 — courier-to-village subsidy settlement engine."""

from pathlib import Path

__version__ = "0.1.0"

_PACKAGE = Path(__file__).resolve().parent


def _shipped(name: str) -> Path:
    """A folder shipped with the engine: package data under settlement/bundled/ in an installed
    wheel, else the checkout's top-level folder (editable install, tests) — the one source."""
    installed = _PACKAGE / "bundled" / name
    return installed if installed.is_dir() else _PACKAGE.parent / name


SQL_DIR = _shipped("sql")
DEFAULT_CONFIG_DIR = _shipped("config")
SAMPLE_DATA_DIR = _shipped("sample_data")


def shipped(path: Path) -> Path:
    """`path`, a file or folder that ships with the engine (rules, queries, audits); if it is
    missing the installation is incomplete, which is said in one line rather than a traceback."""
    if not path.exists():
        from .errors import SettlementError

        raise SettlementError(
            f"找不到 {path}：安装不完整（结算规则 sql/、默认配置和样例应随程序一起安装），"
            "请重新安装 village-courier-settlement"
        )
    return path
