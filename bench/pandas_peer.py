"""The pandas peer for bench/run.py: the same core arithmetic as bench/baseline.py, written as
a pandas user would (the honest equivalent of the engine's core, without its validation detail,
provenance, manifest, statements or store).

Reads the CSV (pyarrow engine), merges the village registry, keeps rural villages of the league,
drops duplicate waybills (earliest delivery kept), applies a distance × area-class rate table
capped at 0.30, caps each company × county at break-even (groupby), writes the ledger Parquet.
Money is worked in integer 分 and distances in metres, so no float decides a band or a cap.

    python bench/pandas_peer.py LOGS.csv CONFIG_DIR LEAGUE OUT.parquet
"""

import sys
import tomllib
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

logs, config, league, out = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4]
policy = tomllib.loads((config / "policies" / f"{league}.toml").read_text(), parse_float=Decimal)
version = policy["version"][-1]
classes = {c: a["class"] for a in version.get("area", []) for c in a.get("counties", [])}


def scaled(text: pd.Series, factor: int) -> pd.Series:
    """Decimal text as an integer count of 1/factor (NaN where it is not a number)."""
    return (pd.to_numeric(text, errors="coerce") * factor).round()


df = pd.read_csv(logs, dtype=str, engine="pyarrow")
villages = pd.read_csv(config / "divisions" / "villages.csv", dtype=str, engine="pyarrow")
villages = villages[villages["code"].str[:4] == league[:4]]
villages = villages.assign(county_code=villages["township_code"].str[:6])[
    ["code", "county_code", "urban_rural_code"]
]
df = df.merge(villages, left_on="village_code", right_on="code", how="inner")
df = df[df["urban_rural_code"].isin(["210", "220"])]
df["delivered_at"] = pd.to_datetime(df["delivered_at"], errors="coerce", format="%Y-%m-%d %H:%M:%S")
df["distance_m"] = scaled(df["distance_km"], 1000)
df["cost_fen"] = scaled(df["cost_yuan"], 100)
df["revenue_fen"] = scaled(df["revenue_yuan"], 100).fillna(80)
df = df.sort_values("delivered_at", kind="stable").drop_duplicates("waybill_no", keep="first")
df["area_class"] = df["county_code"].map(classes).fillna("default")

df["rate_fen"] = np.nan
for band in version["rate"]:
    lo = int(band["distance_from_km"] * 1000)
    hi = band.get("distance_to_km")
    rate = int(min(band["rate_yuan"], Decimal("0.30")) * 100)
    hit = (df["area_class"] == band["class"]) & (df["distance_m"] >= lo)
    if hi is not None:
        hit &= df["distance_m"] < int(hi * 1000)
    df.loc[hit & df["rate_fen"].isna(), "rate_fen"] = rate
df = df.dropna(subset=["rate_fen"])
df["rate_fen"] = df["rate_fen"].astype("int64")

units = df.groupby(["company", "county_code"], as_index=False).agg(
    gross_fen=("rate_fen", "sum"), cost_fen=("cost_fen", "sum"), revenue_fen=("revenue_fen", "sum")
)
units["cap_fen"] = (units["cost_fen"] - units["revenue_fen"]).clip(lower=0).astype("int64")
df = df.merge(
    units[["company", "county_code", "gross_fen", "cap_fen"]], on=["company", "county_code"]
)
paid = np.minimum(df["gross_fen"], df["cap_fen"])
df["subsidy_fen"] = (df["rate_fen"] * paid // df["gross_fen"].where(df["gross_fen"] > 0)).fillna(0)
df.drop(columns=["code", "gross_fen", "cap_fen"]).to_parquet(out, index=False)
