"""Strict loading of the configuration directory (SPEC §3): companies, policies, divisions.

Policy is data: every amount is an exact Decimal (TOML floats are parsed as Decimal, never as
binary floats), every key is checked, and any breach is a ConfigError naming the file and key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

from .errors import ConfigError, UsageError
from .money import has_at_most_scale
from .payout.payee import PAYEE_FIELDS, account_problem, credit_code_problem

CAP_CEILING_YUAN = Decimal("0.30")
COMPANY_CODE_RE = re.compile(r"[A-Z0-9_]{1,16}")
LEAGUE_CODE_RE = re.compile(r"\d{6}")
SCOPES = ("company_county", "county", "company_league", "league", "none")
BUDGET_RULES = ("ytd", "monthly", "none")
DEFAULT_URBAN_RURAL = ("210", "220")
DIVISION_FILES = {
    "leagues.csv": ("code", "name"),
    "counties.csv": ("code", "name", "league_code"),
    "townships.csv": ("code", "name", "county_code"),
    "villages.csv": ("code", "name", "township_code", "urban_rural_code"),
}


@dataclass(frozen=True)
class Company:
    code: str
    name: str
    default_revenue_yuan: Decimal | None
    # payee data (SPEC §10): optional, but a payment needs all four
    payee_name: str | None = None
    credit_code: str | None = None  # 统一社会信用代码, check character verified
    bank: str | None = None
    account: str | None = None

    def missing_payee(self) -> list[str]:
        """The payee fields (SPEC §10) this company lacks, in order; empty when it can be paid."""
        return [k for k in PAYEE_FIELDS if not getattr(self, k)]


@dataclass(frozen=True)
class AreaClass:
    name: str
    counties: tuple[str, ...]
    villages: tuple[str, ...]


@dataclass(frozen=True)
class RateBand:
    area_class: str
    distance_from_km: Decimal
    distance_to_km: Decimal | None  # None: open-ended last band
    rate_yuan: Decimal


@dataclass(frozen=True)
class VolumeTier:
    up_to: int
    multiplier: Decimal


@dataclass(frozen=True)
class PolicyVersion:
    id: str
    reference: str
    effective_from: dt.date
    effective_to: dt.date | None  # inclusive; None: in force until replaced
    cap_yuan: Decimal
    max_cost_share: Decimal | None
    areas: tuple[AreaClass, ...]
    rates: tuple[RateBand, ...]
    volume_tiers: tuple[VolumeTier, ...]

    def in_force(self, day: dt.date) -> bool:
        """True when this version is in force on `day`."""
        return self.effective_from <= day and (
            self.effective_to is None or day <= self.effective_to
        )


@dataclass(frozen=True)
class Policy:
    path: Path
    league_code: str
    league_name: str
    urban_rural_codes: tuple[str, ...]
    max_distance_km: Decimal
    max_cost_yuan: Decimal
    require_proof: bool
    scope: str
    default_revenue_yuan: Decimal
    annual_budget_yuan: Decimal
    budget_rule: str
    year_start_month: int
    versions: tuple[PolicyVersion, ...]
    annual_true_up: bool = False  # [breakeven]: cap each unit's year at its year's loss (SPEC §10)

    def versions_overlapping(self, start: dt.date, end: dt.date) -> list[PolicyVersion]:
        """Versions in force on at least one day of [start, end] (inclusive)."""
        return [
            v
            for v in self.versions
            if v.effective_from <= end and (v.effective_to is None or v.effective_to >= start)
        ]


@dataclass
class Config:
    root: Path
    companies: dict[str, Company]
    policies: dict[str, Policy]
    villages: pl.DataFrame  # code, name, township_code, county_code, league_code, urban_rural_code
    counties: pl.DataFrame  # code, name, league_code
    townships: pl.DataFrame  # code, name, county_code
    leagues: pl.DataFrame  # code, name
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256

    def policy(self, league_code: str) -> Policy:
        """The policy of one 盟市, or a ConfigError naming the missing file."""
        if league_code not in self.policies:
            raise ConfigError(
                self.root / "policies" / f"{league_code}.toml", "", "该盟市没有补贴政策配置文件"
            )
        return self.policies[league_code]

    def league_name(self, league_code: str) -> str:
        """Chinese name of a 盟市 from the registry ('' when unknown)."""
        hit = self.leagues.filter(pl.col("code") == league_code)
        return hit["name"][0] if hit.height else ""

    def check_company(self, code: str) -> str:
        """A company code given on the command line, or a UsageError (with a hint when only
        the case differs: `zto` → ZTO)."""
        if code in self.companies:
            return code
        hint = f"（是否为 {code.upper()}？）" if code.upper() in self.companies else ""
        raise UsageError(f"企业编码 {code} 未在 companies.toml 中登记{hint}")

    def county_names(self) -> dict[str, str]:
        """County code -> Chinese name."""
        return dict(zip(self.counties["code"], self.counties["name"], strict=True))


# --------------------------------------------------------------------------- strict tables


class _Table:
    """Reads one TOML table strictly: every key must be known, required keys present, typed."""

    def __init__(self, data: Any, path: Path, where: str) -> None:
        if not isinstance(data, dict):
            raise ConfigError(path, where, "应为表（table）")
        self.data, self.path, self.where = data, path, where
        self.known: set[str] = set()

    def _key(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def get(self, key: str, kind: str, *, required: bool = True, default: Any = None) -> Any:
        self.known.add(key)
        if key not in self.data:
            if required:
                raise ConfigError(self.path, self._key(key), "缺少必填项")
            return default
        return _check_type(self.data[key], kind, self.path, self._key(key))

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.known)
        if unknown:
            raise ConfigError(self.path, self._key(unknown[0]), "未知的配置项")


def _check_type(value: Any, kind: str, path: Path, key: str) -> Any:
    if kind == "str":
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(path, key, "应为非空字符串")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(path, key, "应为 true 或 false")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(path, key, "应为整数")
        return value
    if kind == "amount":  # non-negative exact decimal with at most 6 decimals
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise ConfigError(path, key, "应为数值")
        amount = Decimal(value)
        if not amount.is_finite():
            raise ConfigError(path, key, "应为有限数值")
        if amount < 0:
            raise ConfigError(path, key, f"不能为负数（{amount}）")
        if not has_at_most_scale(amount):
            raise ConfigError(path, key, f"最多6位小数（{amount}）")
        return amount
    if kind == "date":
        if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
            raise ConfigError(path, key, "应为日期，如 2025-06-06")
        return value
    if kind == "str_list":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(path, key, "应为字符串列表")
        return value
    if kind == "tables":
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise ConfigError(path, key, "应为表数组（[[...]]）")
        return value
    if kind == "table":
        if not isinstance(value, dict):
            raise ConfigError(path, key, "应为表（[...]）")
        return value
    raise AssertionError(kind)


def _read_toml(path: Path, text: str | None = None) -> dict[str, Any]:
    """The TOML document in `path` (or `text`, named by `path` in messages)."""
    try:
        text = path.read_text(encoding="utf-8") if text is None else text
    except FileNotFoundError:
        raise ConfigError(path, "", "文件不存在") from None
    except IsADirectoryError:
        raise ConfigError(path, "", "是目录，不是政策文件") from None
    except UnicodeDecodeError:
        raise ConfigError(path, "", "不是 UTF-8 编码的文本") from None
    try:
        return tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "", f"TOML 语法错误：{exc}") from None


# --------------------------------------------------------------------------- companies


def load_companies(path: Path) -> dict[str, Company]:
    """Load companies.toml strictly."""
    doc = _Table(_read_toml(path), path, "")
    entries = doc.get("company", "tables")
    doc.done()
    companies: dict[str, Company] = {}
    for i, raw in enumerate(entries):
        t = _Table(raw, path, f"company[{i}]")
        code = t.get("code", "str")
        name = t.get("name", "str")
        revenue = t.get("default_revenue_yuan", "amount", required=False)
        payee = {k: t.get(k, "str", required=False) for k in PAYEE_FIELDS}
        t.done()
        if not COMPANY_CODE_RE.fullmatch(code):
            raise ConfigError(
                path, f"company[{i}].code", f"企业编码 {code!r} 应为1–16位大写字母、数字或下划线"
            )
        if code in companies:
            raise ConfigError(path, f"company[{i}].code", f"企业编码 {code} 重复")
        payee = {k: v.strip() if v else None for k, v in payee.items()}
        for key, check in (("credit_code", credit_code_problem), ("account", account_problem)):
            problem = payee[key] and check(payee[key])
            if problem:
                raise ConfigError(path, f"company[{i}].{key}", problem)
        companies[code] = Company(code, name, revenue, **payee)
    if not companies:
        raise ConfigError(path, "company", "至少需要一个快递企业")
    return companies


# --------------------------------------------------------------------------- divisions


def load_divisions(
    directory: Path,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Read the registry (all codes as text) and check its columns: villages, counties,
    townships, leagues."""
    frames = {}
    for name, columns in DIVISION_FILES.items():
        path = directory / name
        if not path.is_file():
            raise ConfigError(path, "", "区划文件不存在")
        try:
            df = pl.read_csv(path, infer_schema=False)
        except Exception as exc:  # noqa: BLE001 - polars raises several kinds
            raise ConfigError(path, "", f"无法读取区划文件：{exc}") from None
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise ConfigError(path, missing[0], "区划文件缺少该列")
        frames[name] = df.select(columns)
    villages = frames["villages.csv"].with_columns(
        county_code=pl.col("township_code").str.slice(0, 6),
    )
    counties = frames["counties.csv"]
    villages = villages.join(
        counties.select(pl.col("code").alias("county_code"), "league_code"),
        on="county_code",
        how="left",
    )
    return villages, counties, frames["townships.csv"], frames["leagues.csv"]


# --------------------------------------------------------------------------- policies


def _load_version(
    raw: dict[str, Any], path: Path, where: str, league: str, villages: pl.DataFrame
) -> PolicyVersion:
    t = _Table(raw, path, where)
    version_id = t.get("id", "str")
    reference = t.get("reference", "str")
    effective_from = t.get("effective_from", "date")
    effective_to = t.get("effective_to", "date", required=False)
    cap = t.get("cap_yuan", "amount")
    share = t.get("max_cost_share", "amount", required=False)
    area_raw = t.get("area", "tables", required=False, default=[])
    rate_raw = t.get("rate", "tables")
    tier_raw = t.get("volume_tier", "tables", required=False, default=[])
    t.done()
    if cap > CAP_CEILING_YUAN:
        raise ConfigError(path, f"{where}.cap_yuan", f"{cap} 元超过每件 0.30 元的上限")
    if share is not None and share > 1:
        raise ConfigError(path, f"{where}.max_cost_share", f"成本占比 {share} 不能大于 1")
    if effective_to is not None and effective_to < effective_from:
        raise ConfigError(path, f"{where}.effective_to", "截止日期早于生效日期")

    league_villages = villages.filter(pl.col("league_code") == league)
    county_set = set(league_villages["county_code"].unique())
    village_set = set(league_villages["code"])
    areas: list[AreaClass] = []
    seen_county: dict[str, str] = {}
    seen_village: dict[str, str] = {}
    for i, a in enumerate(area_raw):
        at = _Table(a, path, f"{where}.area[{i}]")
        name = at.get("class", "str")
        counties = at.get("counties", "str_list", required=False, default=[])
        vills = at.get("villages", "str_list", required=False, default=[])
        at.done()
        if name == "default":
            raise ConfigError(path, f"{where}.area[{i}].class", "default 类别无需列出旗县或嘎查村")
        if any(x.name == name for x in areas):
            raise ConfigError(path, f"{where}.area[{i}].class", f"区域类别 {name} 重复定义")
        for code in counties:
            if code not in county_set:
                raise ConfigError(
                    path, f"{where}.area[{i}].counties", f"旗县 {code} 不属于盟市 {league}"
                )
            if code in seen_county:
                raise ConfigError(
                    path,
                    f"{where}.area[{i}].counties",
                    f"旗县 {code} 同时属于类别 {seen_county[code]} 和 {name}",
                )
            seen_county[code] = name
        for code in vills:
            if code not in village_set:
                raise ConfigError(
                    path, f"{where}.area[{i}].villages", f"嘎查村 {code} 不属于盟市 {league}"
                )
            if code in seen_village:
                raise ConfigError(
                    path,
                    f"{where}.area[{i}].villages",
                    f"嘎查村 {code} 同时属于类别 {seen_village[code]} 和 {name}",
                )
            seen_village[code] = name
        areas.append(AreaClass(name, tuple(counties), tuple(vills)))

    class_names = {"default"} | {a.name for a in areas}
    bands: list[RateBand] = []
    for i, r in enumerate(rate_raw):
        rt = _Table(r, path, f"{where}.rate[{i}]")
        band = RateBand(
            rt.get("class", "str"),
            rt.get("distance_from_km", "amount"),
            rt.get("distance_to_km", "amount", required=False),
            rt.get("rate_yuan", "amount"),
        )
        rt.done()
        if band.area_class not in class_names:
            raise ConfigError(
                path, f"{where}.rate[{i}].class", f"区域类别 {band.area_class} 未在 area 中定义"
            )
        bands.append(band)
    for name in sorted(class_names):
        _check_bands(name, [b for b in bands if b.area_class == name], path, where)

    tiers: list[VolumeTier] = []
    for i, v in enumerate(tier_raw):
        vt = _Table(v, path, f"{where}.volume_tier[{i}]")
        up_to = vt.get("up_to", "int")
        mult = vt.get("multiplier", "amount")
        vt.done()
        if up_to < 0:
            raise ConfigError(path, f"{where}.volume_tier[{i}].up_to", "不能为负数")
        if any(x.up_to == up_to for x in tiers):
            raise ConfigError(path, f"{where}.volume_tier[{i}].up_to", f"单量档 {up_to} 重复")
        tiers.append(VolumeTier(up_to, mult))

    return PolicyVersion(
        version_id,
        reference,
        effective_from,
        effective_to,
        cap,
        share,
        tuple(areas),
        tuple(bands),
        tuple(sorted(tiers, key=lambda x: x.up_to)),
    )


def _check_bands(name: str, bands: list[RateBand], path: Path, where: str) -> None:
    """Half-open bands [from, to) of one class must tile [0, ∞) with no gap or overlap."""
    key = f"{where}.rate (class {name})"
    if not bands:
        raise ConfigError(path, key, f"区域类别 {name} 没有费率")
    bands = sorted(bands, key=lambda b: b.distance_from_km)
    if bands[0].distance_from_km != 0:
        raise ConfigError(
            path, key, f"距离段应从 0 公里开始，实际从 {bands[0].distance_from_km} 开始"
        )
    for prev, nxt in zip(bands, bands[1:], strict=False):
        if prev.distance_to_km is None:
            raise ConfigError(
                path, key, f"开放式距离段 [{prev.distance_from_km}, ∞) 之后还有距离段（重叠）"
            )
        if prev.distance_to_km <= prev.distance_from_km:
            raise ConfigError(
                path, key, f"距离段 [{prev.distance_from_km}, {prev.distance_to_km}) 为空"
            )
        if nxt.distance_from_km < prev.distance_to_km:
            raise ConfigError(path, key, f"距离段在 {nxt.distance_from_km} 公里处重叠")
        if nxt.distance_from_km > prev.distance_to_km:
            raise ConfigError(
                path, key, f"距离段在 {prev.distance_to_km}–{nxt.distance_from_km} 公里之间有缺口"
            )
    last = bands[-1]
    if last.distance_to_km is not None:
        if last.distance_to_km <= last.distance_from_km:
            raise ConfigError(
                path, key, f"距离段 [{last.distance_from_km}, {last.distance_to_km}) 为空"
            )
        raise ConfigError(
            path,
            key,
            f"最后一个距离段应省略 distance_to_km（覆盖到无穷远），实际止于 {last.distance_to_km}",
        )


def load_policy(
    path: Path,
    villages: pl.DataFrame,
    leagues: pl.DataFrame,
    text: str | None = None,
    named_by_league: bool = True,
) -> Policy:
    """Load one policies/<league_code>.toml strictly (or `text`, named `path` in messages).
    A variant for the policy simulator may have any file name (`named_by_league=False`)."""
    doc = _Table(_read_toml(path, text), path, "")
    league = doc.get("league_code", "str")
    league_name = doc.get("league_name", "str")
    elig = _Table(doc.get("eligibility", "table", required=False, default={}), path, "eligibility")
    be = _Table(doc.get("breakeven", "table"), path, "breakeven")
    budget = _Table(doc.get("budget", "table"), path, "budget")
    versions_raw = doc.get("version", "tables")
    doc.done()

    if not LEAGUE_CODE_RE.fullmatch(league) or league not in set(leagues["code"]):
        raise ConfigError(path, "league_code", f"{league} 不是区划库中的盟市代码")
    if named_by_league and path.stem != league:
        raise ConfigError(path, "league_code", f"{league} 与文件名 {path.name} 不一致")

    codes = elig.get(
        "urban_rural_codes", "str_list", required=False, default=list(DEFAULT_URBAN_RURAL)
    )
    for c in codes:
        if not re.fullmatch(r"\d{3}", c):
            raise ConfigError(path, "eligibility.urban_rural_codes", f"{c!r} 不是3位城乡分类代码")
    max_distance = elig.get("max_distance_km", "amount", required=False, default=Decimal(800))
    max_cost = elig.get("max_cost_yuan", "amount", required=False, default=Decimal(30))
    require_proof = elig.get("require_proof", "bool", required=False, default=False)
    elig.done()

    scope = be.get("scope", "str")
    if scope not in SCOPES:
        raise ConfigError(path, "breakeven.scope", f"{scope!r} 应为 {' | '.join(SCOPES)} 之一")
    default_revenue = be.get("default_revenue_yuan", "amount")
    true_up = be.get("annual_true_up", "bool", required=False, default=False)
    be.done()

    annual = budget.get("annual_yuan", "amount")
    if annual != annual.quantize(Decimal("0.01")):
        raise ConfigError(path, "budget.annual_yuan", "年度预算应精确到分（最多2位小数）")
    rule = budget.get("rule", "str")
    if rule not in BUDGET_RULES:
        raise ConfigError(path, "budget.rule", f"{rule!r} 应为 {' | '.join(BUDGET_RULES)} 之一")
    start_month = budget.get("year_start_month", "int", required=False, default=1)
    if not 1 <= start_month <= 12:
        raise ConfigError(path, "budget.year_start_month", f"{start_month} 应在 1–12 之间")
    budget.done()

    versions = [
        _load_version(v, path, f"version[{i}]", league, villages)
        for i, v in enumerate(versions_raw)
    ]
    if not versions:
        raise ConfigError(path, "version", "至少需要一个政策版本")
    ids = [v.id for v in versions]
    for i, v in enumerate(versions):
        if ids.index(v.id) != i:
            raise ConfigError(path, f"version[{i}].id", f"版本号 {v.id} 重复")
    ordered = sorted(enumerate(versions), key=lambda iv: iv[1].effective_from)
    for (_, a), (j, b) in zip(ordered, ordered[1:], strict=False):
        if a.effective_to is None or b.effective_from <= a.effective_to:
            raise ConfigError(
                path,
                f"version[{j}].effective_from",
                f"版本 {b.id} 与版本 {a.id} 的有效期重叠",
            )
    return Policy(
        path,
        league,
        league_name,
        tuple(codes),
        max_distance,
        max_cost,
        require_proof,
        scope,
        default_revenue,
        annual,
        rule,
        start_month,
        tuple(versions),
        true_up,
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_config(root: Path | str) -> Config:
    """Load and check the whole configuration directory."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(root, "", "配置目录不存在")
    villages, counties, townships, leagues = load_divisions(root / "divisions")
    companies = load_companies(root / "companies.toml")
    policy_dir = root / "policies"
    if not policy_dir.is_dir():
        raise ConfigError(policy_dir, "", "政策目录不存在")
    policies: dict[str, Policy] = {}
    for path in sorted(policy_dir.glob("*.toml")):
        policy = load_policy(path, villages, leagues)
        policies[policy.league_code] = policy
    files = {
        str(p.relative_to(root)): _sha256(p)
        for p in sorted([root / "companies.toml", *policy_dir.glob("*.toml")])
        + sorted((root / "divisions").glob("*.csv"))
    }
    return Config(root, companies, policies, villages, counties, townships, leagues, files)
