"""Shared fixtures: the shipped configuration, a small hand-computable policy, and a helper
that settles a list of rows the way the policy reads."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from settlement import DEFAULT_CONFIG_DIR
from settlement.config import Config, load_config
from settlement.engine import compute
from settlement.ingest import FIELDS, normalise
from settlement.period import Month

# Real villages of 呼伦贝尔市 (150700) used by the hand-computed cases.
V1 = "150702100201"  # 团结村村委会, 海拉尔区 150702, 220 村庄: class default
V1B = "150702100001"  # 谢尔塔拉居委会, 海拉尔区 150702, 220
V_OVERRIDE = "150702100202"  # 扎罗木得村, 海拉尔区, listed as a border village in the test policy
V2 = "150783005200"  # 鲜光村村委会, 扎兰屯市 150783, 220: class default
V_BORDER = "150727100200"  # 新巴尔虎右旗 150727 (border county)
V_URBAN = "150702001001"  # 111 主城区, 海拉尔区
V_OTHER_LEAGUE = "150102101200"  # 呼和浩特市 新城区, 220

COMPANIES = """
[[company]]
code = "ZTO"
name = "中通快递"
default_revenue_yuan = 0.85

[[company]]
code = "YTO"
name = "圆通速递"
"""

POLICY = """
league_code = "150700"
league_name = "呼伦贝尔市"

[eligibility]
max_distance_km = 500
max_cost_yuan = 20
require_proof = {require_proof}

[breakeven]
scope = "{scope}"
default_revenue_yuan = 0.50

[budget]
annual_yuan = {annual}
rule = "{rule}"
year_start_month = {start_month}

[[version]]
id = "T-1"
reference = "测试政策 第1版"
effective_from = 2025-01-01
effective_to = 2025-03-15
cap_yuan = 0.30
max_cost_share = {share}

  [[version.area]]
  class = "border"
  counties = ["150727"]
  villages = ["150702100202"]

  [[version.rate]]
  class = "default"
  distance_from_km = 0
  distance_to_km = 10
  rate_yuan = 0.10

  [[version.rate]]
  class = "default"
  distance_from_km = 10
  rate_yuan = 0.15

  [[version.rate]]
  class = "border"
  distance_from_km = 0
  rate_yuan = 0.25
{tiers}
[[version]]
id = "T-2"
reference = "测试政策 第2版"
effective_from = 2025-03-16
cap_yuan = 0.20

  [[version.area]]
  class = "border"
  counties = ["150727"]

  [[version.rate]]
  class = "default"
  distance_from_km = 0
  rate_yuan = 0.12

  [[version.rate]]
  class = "border"
  distance_from_km = 0
  rate_yuan = 0.22
"""

TIERS = """
  [[version.volume_tier]]
  up_to = 2
  multiplier = 1.5

  [[version.volume_tier]]
  up_to = 3
  multiplier = 1.2
"""


def policy_text(
    scope: str = "company_county",
    rule: str = "none",
    annual: str = "1000.00",
    start_month: int = 1,
    require_proof: bool = False,
    share: str = "0.5",
    tiers: bool = False,
) -> str:
    """The test policy with the given knobs."""
    return POLICY.format(
        scope=scope,
        rule=rule,
        annual=annual,
        start_month=start_month,
        require_proof=str(require_proof).lower(),
        share=share,
        tiers=TIERS if tiers else "",
    )


def make_config(root: Path, policy: str | None = None, companies: str = COMPANIES) -> Path:
    """A config directory: the real registry, two companies and one 150700 policy."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(DEFAULT_CONFIG_DIR / "divisions", root / "divisions", dirs_exist_ok=True)
    (root / "companies.toml").write_text(companies, encoding="utf-8")
    (root / "policies").mkdir(exist_ok=True)
    (root / "policies" / "150700.toml").write_text(policy or policy_text(), encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def shipped() -> Config:
    """The configuration shipped with the project."""
    return load_config(DEFAULT_CONFIG_DIR)


@pytest.fixture
def tiny(tmp_path) -> Config:
    """The small test policy: no budget limit, company_county scope, no volume tiers."""
    return load_config(make_config(tmp_path / "config"))


def tiny_config(tmp_path: Path, **knobs) -> Config:
    """The small test policy with knobs (see policy_text)."""
    return load_config(make_config(tmp_path / "config", policy_text(**knobs)))


def row(
    waybill: str,
    company: str = "ZTO",
    at: str = "2025-03-05 10:00",
    village: str = V1,
    km: str = "5",
    cost: str = "2.00",
    revenue: str | None = "0.00",
    proof: str | None = "签名",
) -> dict:
    """One log row as text, in SPEC column names."""
    return {
        "waybill_no": waybill,
        "company": company,
        "delivered_at": at,
        "village_code": village,
        "distance_km": km,
        "cost_yuan": cost,
        "revenue_yuan": revenue,
        "proof": proof,
    }


def frame(rows: list[dict], source: str = "t.csv") -> pl.DataFrame:
    """Rows -> the ingested all-text frame (through the real normalisation)."""
    df = pl.DataFrame(rows, schema={f: pl.String for f in FIELDS})
    return normalise(df, Path(source), source)


@dataclass
class Settled:
    ledger: pl.DataFrame
    rejects: pl.DataFrame
    units: pl.DataFrame
    budget: dict

    def subsidy(self) -> dict[str, int]:
        return dict(zip(self.ledger["waybill_no"], self.ledger["subsidy_fen"], strict=True))

    def rate(self) -> dict[str, int]:
        return dict(zip(self.ledger["waybill_no"], self.ledger["rate_fen"], strict=True))

    def reasons(self) -> dict[str, str]:
        return dict(zip(self.rejects["waybill_no"], self.rejects["reason_code"], strict=True))

    def unit(self, key: str) -> dict:
        return self.units.filter(pl.col("unit_key") == key).to_dicts()[0]


def settle_rows(
    cfg: Config,
    rows: list[dict] | pl.DataFrame,
    month: str = "2025-03",
    league: str = "150700",
    store: Path | None = None,
) -> Settled:
    """Settle rows in memory (no files written) and return the result tables."""
    df = rows if isinstance(rows, pl.DataFrame) else frame(rows)
    with compute(cfg, league, Month.parse(month), df, store, "TEST") as con:
        # the ledger's ENUM columns as text, as they read back from Parquet
        enums = [
            name
            for name, kind, *_ in con.execute("DESCRIBE ledger_out").fetchall()
            if kind.startswith("ENUM")
        ]
        text = (
            "SELECT * REPLACE ("
            + ", ".join(f"CAST({c} AS VARCHAR) AS {c}" for c in enums)
            + ") FROM ledger_out"
        )
        cursor = con.execute("SELECT * FROM budget")
        names = [d[0] for d in cursor.description]
        budget = cursor.fetchall()[0]
        return Settled(
            con.sql(text).pl(),
            con.sql("SELECT * FROM rejects_out").pl(),
            con.sql("SELECT * FROM units ORDER BY unit_key").pl(),
            dict(zip(names, budget, strict=True)),
        )
