"""快递进村补贴结算引擎 — courier-to-village subsidy settlement engine."""

from pathlib import Path

__version__ = "0.1.0"

#: The project checkout; `sql/` and the default `config/` live beside the package.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = PROJECT_ROOT / "sql"
DEFAULT_CONFIG_DIR = PROJECT_ROOT / "config"
SAMPLE_DATA_DIR = PROJECT_ROOT / "sample_data"
