"""Realistic delivery logs for any 盟市 and month, from the real village registry.

Company mix, skewed village volumes (a few villages get most parcels), distances and costs by
area class, and a chosen share of each fault kind. Vectorised with NumPy and Polars: ten
million rows take seconds, not minutes. Seeded: the same arguments give the same file.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

from .config import Config
from .errors import UsageError
from .ingest import CHINESE_NAME, FIELDS
from .period import Month

#: Share of village parcels by company (illustrative, EMS carries the most to villages).
COMPANY_MIX = {
    "EMS": 0.30,
    "ZTO": 0.18,
    "YTO": 0.12,
    "YUNDA": 0.10,
    "STO": 0.08,
    "JT": 0.08,
    "SF": 0.06,
    "JD": 0.06,
    "DBL": 0.02,
}
WAYBILL_PREFIX = {
    "EMS": "1",
    "ZTO": "7",
    "YTO": "YT",
    "YUNDA": "4",
    "STO": "77",
    "JT": "JT",
    "SF": "SF",
    "JD": "JDV",
    "DBL": "DPK",
}
PROOFS = ("签名", "取件码", "驿站", "拍照")
FAULTS = (
    "malformed",
    "unknown_company",
    "unknown_village",
    "wrong_league",
    "not_rural",
    "outside_period",
    "no_policy",
    "bad_distance",
    "bad_cost",
    "no_proof",
    "duplicate",
)
FORMATS = ("csv", "gbk", "parquet", "xlsx")
#: file extension -> the formats written under it (the first when --format is not given)
EXTENSIONS = {".csv": ("csv", "gbk"), ".parquet": ("parquet",), ".xlsx": ("xlsx",)}


def output_format(path: Path, fmt: str | None) -> str:
    """The format to write `path` in: `fmt` if given and it suits the extension, else the
    extension's; an extension no format writes, or one that disagrees with `fmt`, is refused."""
    suffix = path.suffix.lower()
    if suffix not in EXTENSIONS:
        raise UsageError(f"不能写出 {path.name}：输出文件的扩展名应为 {'、'.join(EXTENSIONS)} 之一")
    if fmt is None:
        return EXTENSIONS[suffix][0]
    if fmt not in EXTENSIONS[suffix]:
        wanted = next(ext for ext, fmts in EXTENSIONS.items() if fmt in fmts)
        raise UsageError(
            f"--format {fmt} 写出的是 {wanted} 文件，与输出文件 {path.name} 的扩展名不符；"
            f"请把文件名改为 {path.stem}{wanted}，或去掉 --format 按扩展名写出"
        )
    return fmt


#: Median route length (km) by area class, scaled up in the vast leagues.
CLASS_DISTANCE = {
    "default": 18.0,
    "mountain": 24.0,
    "forest": 32.0,
    "pastoral": 38.0,
    "border": 55.0,
}
VAST_LEAGUES = {"150600": 2.2, "150700": 2.5, "152500": 2.8, "152900": 4.0}


def _village_classes(cfg: Config, league: str, month: Month, villages: pl.DataFrame) -> list[str]:
    policy = cfg.policy(league)
    versions = policy.versions_overlapping(month.start, month.last_day) or list(policy.versions)
    v = versions[-1]
    by_county = {c: a.name for a in v.areas for c in a.counties}
    by_village = {c: a.name for a in v.areas for c in a.villages}
    return [
        by_village.get(code, by_county.get(county, "default"))
        for code, county in zip(villages["code"], villages["county_code"], strict=True)
    ]


def generate(
    cfg: Config,
    league: str,
    month: Month,
    rows: int,
    seed: int = 1,
    faults: dict[str, float] | None = None,
    companies: list[str] | None = None,
    reclaim: pl.DataFrame | None = None,
    reclaim_share: float = 0.0,
    urban: float = 0.0,
) -> pl.DataFrame:
    """A month of logs for one 盟市 as text columns (SPEC §2 names), with injected faults.

    `urban` is the share of rows delivered to the 盟市's urban villages (town and city
    residents' committees, NOT_RURAL), as a company's export of all its deliveries holds them;
    drawn from a generator of their own, so a seed gives the same rural rows with or without."""
    if rows < 1:
        raise UsageError("行数应至少为 1")
    policy = cfg.policy(league)
    faults = faults or {}
    for kind in faults:
        if kind not in FAULTS:
            raise UsageError(f"未知的错误类型 {kind}，可选：{', '.join(FAULTS)}")
    if sum(faults.values()) + reclaim_share > 0.9:
        raise UsageError("各类错误比例之和不能超过 0.9")
    if not 0.0 <= urban <= 0.9:
        raise UsageError("城镇投递比例应在 0 至 0.9 之间")
    rng = np.random.default_rng(seed)
    mix = {c: w for c, w in COMPANY_MIX.items() if c in cfg.companies}
    if companies:
        unknown = [c for c in companies if c not in cfg.companies]
        if unknown:
            raise UsageError(f"企业编码 {unknown[0]} 未在 companies.toml 中登记")
        mix = {c: mix.get(c, 0.05) for c in companies}
    names = list(mix)
    weights = np.array(list(mix.values()))
    company_idx = rng.choice(len(names), size=rows, p=weights / weights.sum())

    eligible = cfg.villages.filter(
        (pl.col("league_code") == league)
        & pl.col("urban_rural_code").is_in(policy.urban_rural_codes)
    ).sort("code")
    if eligible.height == 0:
        raise UsageError(f"盟市 {league} 没有符合条件的嘎查村")
    classes = _village_classes(cfg, league, month, eligible)
    scale = VAST_LEAGUES.get(league, 1.0)
    median = np.array([CLASS_DISTANCE.get(c, 18.0) for c in classes]) * scale
    village_base_km = np.minimum(
        median * rng.lognormal(0.0, 0.6, eligible.height), float(policy.max_distance_km) * 0.9
    )
    popularity = rng.pareto(1.1, eligible.height) + 0.05  # a few villages get most parcels
    village_idx = rng.choice(eligible.height, size=rows, p=popularity / popularity.sum())

    distance = np.round(
        np.minimum(
            village_base_km[village_idx] * rng.uniform(0.85, 1.15, rows),
            float(policy.max_distance_km),
        ),
        1,
    )
    max_cost = float(policy.max_cost_yuan)
    cost = np.round(
        np.clip(0.45 + 0.021 * distance + rng.normal(0, 0.12, rows), 0.3, max_cost * 0.9), 2
    )
    default_rev = np.array(
        [float(cfg.companies[c].default_revenue_yuan or policy.default_revenue_yuan) for c in names]
    )
    revenue = np.round(np.clip(default_rev[company_idx] + rng.normal(0, 0.1, rows), 0.2, None), 2)
    has_revenue = rng.random(rows) < 0.7
    seconds = rng.integers(0, (month.end - month.start).days * 86400, rows)
    has_proof = rng.random(rows) < (1.0 if policy.require_proof else 0.95)

    serial = rng.integers(10**11, 9 * 10**11) + np.arange(rows, dtype=np.int64) * 7
    prefix = np.array([WAYBILL_PREFIX.get(c, c[:2]) for c in names])[company_idx]
    start = dt.datetime.combine(month.start, dt.time())
    df = pl.DataFrame(
        {
            "waybill_no": prefix,
            "serial": serial,
            "company": np.array(names)[company_idx],
            "seconds": seconds,
            "village_code": eligible["code"].to_numpy()[village_idx],
            "distance_km": distance,
            "cost_yuan": cost,
            "revenue_yuan": np.where(has_revenue, revenue, np.nan),
            "proof": np.where(has_proof, np.array(PROOFS)[rng.integers(0, len(PROOFS), rows)], ""),
        }
    )
    df = df.select(
        (pl.col("waybill_no") + pl.col("serial").cast(pl.String)).alias("waybill_no"),
        "company",
        (pl.lit(start) + pl.duration(seconds=pl.col("seconds")))
        .dt.strftime("%Y-%m-%d %H:%M:%S")
        .alias("delivered_at"),
        "village_code",
        pl.col("distance_km").cast(pl.String),
        pl.col("cost_yuan").round(2).cast(pl.String),
        pl.when(pl.col("revenue_yuan").is_nan())
        .then(None)
        .otherwise(pl.col("revenue_yuan").round(2).cast(pl.String))
        .alias("revenue_yuan"),
        pl.col("proof").replace("", None),
    )
    if urban:
        df = _urban(cfg, league, df, urban, seed)
    return _inject(cfg, league, month, df, rng, faults, reclaim, reclaim_share)


def _urban(cfg: Config, league: str, df: pl.DataFrame, share: float, seed: int) -> pl.DataFrame:
    """Move `share` of the rows to the 盟市's urban villages (skewed: a few towns get most)."""
    policy = cfg.policy(league)
    urban = cfg.villages.filter(
        (pl.col("league_code") == league)
        & ~pl.col("urban_rural_code").is_in(policy.urban_rural_codes)
    ).sort("code")["code"]
    if not len(urban):
        raise UsageError(f"盟市 {league} 没有城镇（非补贴范围）的村级单位")
    rng = np.random.default_rng([seed, 0x75726261])  # apart from the rural rows' generator
    rows = df.height
    idx = rng.permutation(rows)[: int(round(share * rows))]
    popularity = rng.pareto(1.1, len(urban)) + 0.05
    codes = urban.gather(rng.choice(len(urban), size=len(idx), p=popularity / popularity.sum()))
    return df.with_columns(df["village_code"].scatter(idx, codes))


def _inject(cfg, league, month, df, rng, faults, reclaim, reclaim_share) -> pl.DataFrame:
    """Overwrite disjoint random sets of rows with each fault kind (scatter, no per-row frame)."""
    rows = df.height
    order = rng.permutation(rows)
    policy = cfg.policy(league)
    villages = cfg.villages
    elsewhere = villages.filter(
        (pl.col("league_code") != league) & pl.col("urban_rural_code").str.starts_with("2")
    )["code"]
    urban = villages.filter(
        (pl.col("league_code") == league)
        & ~pl.col("urban_rural_code").is_in(policy.urban_rural_codes)
    )["code"]
    days = [month.start + dt.timedelta(days=d) for d in range((month.end - month.start).days)]
    gap_days = [d for d in days if not any(v.in_force(d) for v in policy.versions)]
    before = month.start - dt.timedelta(days=1)
    plan = [*faults.items(), ("reclaim", reclaim_share)]
    counts = [int(round(share * rows)) for _, share in plan]
    clean = order[sum(counts) :]
    columns = {c: df.get_column(c) for c in df.columns}
    taken = 0
    for (kind, _), n in zip(plan, counts, strict=True):
        idx = order[taken : taken + n]
        taken += n
        if n == 0:
            continue
        k = np.arange(n)
        updates: dict[str, list] = {}
        if kind == "malformed":
            for col, variant, value in (
                ("waybill_no", 0, None),
                ("delivered_at", 1, f"{month.year}-13-45 10:00"),
                ("distance_km", 3, "约5公里"),
                ("cost_yuan", 4, None),
            ):
                sel = idx[k % 5 == variant]
                columns[col] = columns[col].scatter(sel, [value] * len(sel))
            sel = idx[k % 5 == 2]
            sci = [f"{float(v):.5E}" for v in columns["village_code"].gather(sel).to_list()]
            columns["village_code"] = columns["village_code"].scatter(sel, sci)
            continue
        if kind == "unknown_company":
            updates["company"] = [("中通", "UNKNOWN", "zto")[j % 3] for j in range(n)]
        elif kind == "unknown_village":
            updates["village_code"] = [f"{league[:4]}99{j % 1000:03d}999" for j in range(n)]
        elif kind == "wrong_league" and len(elsewhere):
            updates["village_code"] = elsewhere.gather(rng.integers(0, len(elsewhere), n)).to_list()
        elif kind == "not_rural" and len(urban):
            updates["village_code"] = urban.gather(rng.integers(0, len(urban), n)).to_list()
        elif kind == "outside_period":
            updates["delivered_at"] = [
                f"{before:%Y-%m-%d} {8 + j % 12:02d}:30:00" for j in range(n)
            ]
        elif kind == "no_policy" and gap_days:
            updates["delivered_at"] = [
                f"{gap_days[j % len(gap_days)]:%Y-%m-%d} {9 + j % 10:02d}:15:00" for j in range(n)
            ]
        elif kind == "bad_distance":
            too_far = str(policy.max_distance_km + 150)
            updates["distance_km"] = ["-3.5" if j % 2 else too_far for j in range(n)]
        elif kind == "bad_cost":
            costly = str(policy.max_cost_yuan + 20)
            cost = columns["cost_yuan"].gather(idx).to_list()
            revenue = columns["revenue_yuan"].gather(idx).to_list()
            updates["cost_yuan"] = [cost[j] if j % 2 else costly for j in range(n)]
            updates["revenue_yuan"] = ["-0.50" if j % 2 else revenue[j] for j in range(n)]
        elif kind == "no_proof":
            updates["proof"] = [None] * n
        elif kind == "duplicate" and len(clean):
            updates["waybill_no"] = (
                columns["waybill_no"].gather(clean[rng.integers(0, len(clean), n)]).to_list()
            )
        elif kind == "reclaim" and reclaim is not None and reclaim.height:
            updates["waybill_no"] = (
                reclaim["waybill_no"].gather(rng.integers(0, reclaim.height, n)).to_list()
            )
        for col, values in updates.items():
            columns[col] = columns[col].scatter(idx, pl.Series(values, dtype=pl.String))
    return pl.DataFrame(list(columns.values())).select(FIELDS)


def write(df: pl.DataFrame, path: Path, fmt: str) -> None:
    """Write logs as a courier company's system would: csv, gbk (Chinese headers), parquet, xlsx."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        df.write_csv(path)
    elif fmt == "gbk":
        text = df.rename(CHINESE_NAME).write_csv()
        path.write_bytes(text.encode("gbk"))
    elif fmt == "parquet":
        _typed(df).write_parquet(path, row_group_size=500_000)
    elif fmt == "xlsx":
        _write_xlsx(df, path)
    else:
        raise UsageError(f"未知的格式 {fmt}，可选：{', '.join(FORMATS)}")


def _typed(df: pl.DataFrame) -> pl.DataFrame:
    """Typed Parquet as exporters write it: float64 money, int64 codes, timestamps."""
    return df.with_columns(
        pl.col("village_code").cast(pl.Int64, strict=False),
        pl.col("distance_km").cast(pl.Float64, strict=False),
        pl.col("cost_yuan").cast(pl.Float64, strict=False),
        pl.col("revenue_yuan").cast(pl.Float64, strict=False),
        pl.col("delivered_at").str.strptime(pl.Datetime("ms"), "%Y-%m-%d %H:%M:%S", strict=False),
    )


def _write_xlsx(df: pl.DataFrame, path: Path) -> None:
    import xlsxwriter

    if df.height > 1_048_575:
        raise UsageError("XLSX 最多 1,048,575 行数据，请改用 csv 或 parquet")
    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = workbook.add_worksheet("投递明细")
    when = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    sheet.write_row(0, 0, [CHINESE_NAME[c] for c in FIELDS])
    numeric = {"village_code", "distance_km", "cost_yuan", "revenue_yuan"}
    for r, row in enumerate(df.iter_rows(), 1):
        for c, (name, value) in enumerate(zip(FIELDS, row, strict=True)):
            if value is None:
                continue
            if name in numeric:
                try:
                    sheet.write_number(r, c, float(value) if name != "village_code" else int(value))
                    continue
                except ValueError:
                    pass
            if name == "delivered_at":
                try:
                    sheet.write_datetime(
                        r, c, dt.datetime.strptime(value, "%Y-%m-%d %H:%M:%S"), when
                    )
                    continue
                except ValueError:
                    pass
            sheet.write_string(r, c, value)
    workbook.close()
