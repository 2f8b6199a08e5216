"""The bare DuckDB baseline for bench/run.py: only the core arithmetic, no validation detail,
no provenance, no manifest, no statements, no store.

Reads the CSV, joins the village registry, keeps rural villages of the league, drops duplicate
waybills (earliest delivery kept), applies a distance × area-class rate table capped at 0.30,
caps each company × county at break-even, and writes the ledger Parquet.

    python bench/baseline.py LOGS.csv CONFIG_DIR LEAGUE OUT.parquet
"""

import sys
import tomllib
from decimal import Decimal
from pathlib import Path

import duckdb

logs, config, league, out = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4]
policy = tomllib.loads((config / "policies" / f"{league}.toml").read_text(), parse_float=Decimal)
version = policy["version"][-1]
classes = {c: a["class"] for a in version.get("area", []) for c in a.get("counties", [])}
bands = [
    (
        r["class"],
        r["distance_from_km"],
        r.get("distance_to_km"),
        min(r["rate_yuan"], Decimal("0.30")),
    )
    for r in version["rate"]
]

con = duckdb.connect()
con.execute(
    "CREATE TABLE area AS SELECT * FROM (VALUES "
    + ", ".join(f"('{c}', '{k}')" for c, k in classes.items())
    + ") t(county_code, area_class)"
    if classes
    else "CREATE TABLE area (county_code VARCHAR, area_class VARCHAR)"
)
con.execute(
    "CREATE TABLE bands AS SELECT * FROM (VALUES "
    + ", ".join(
        f"('{c}', {f}::DECIMAL(18,6), {t if t is not None else 'NULL'}::DECIMAL(18,6), {r}::DECIMAL(18,6))"
        for c, f, t, r in bands
    )
    + ") t(area_class, lo, hi, rate_yuan)"
)
con.execute(f"""
COPY (
WITH logs AS (
    SELECT waybill_no, company, TRY_CAST(delivered_at AS TIMESTAMP) AS delivered_at,
           CAST(village_code AS VARCHAR) AS village_code,
           TRY_CAST(distance_km AS DECIMAL(18,6)) AS distance_km,
           TRY_CAST(cost_yuan AS DECIMAL(18,6)) AS cost_yuan,
           COALESCE(TRY_CAST(revenue_yuan AS DECIMAL(18,6)), 0.80) AS revenue_yuan
    FROM read_csv('{logs}', all_varchar = true)
),
v AS (
    SELECT code, left(township_code, 6) AS county_code, urban_rural_code
    FROM read_csv('{config}/divisions/villages.csv', all_varchar = true)
    WHERE left(code, 4) = left('{league}', 4)
),
rural AS (
    SELECT l.*, v.county_code, COALESCE(a.area_class, 'default') AS area_class
    FROM logs l JOIN v ON v.code = l.village_code
    LEFT JOIN area a ON a.county_code = v.county_code
    WHERE v.urban_rural_code IN ('210', '220')
),
first AS (
    SELECT * FROM rural QUALIFY ROW_NUMBER() OVER (PARTITION BY waybill_no ORDER BY delivered_at) = 1
),
rated AS (
    SELECT f.*, CAST(FLOOR(100 * b.rate_yuan) AS INTEGER) AS rate_fen
    FROM first f JOIN bands b ON b.area_class = f.area_class AND f.distance_km >= b.lo
     AND (b.hi IS NULL OR f.distance_km < b.hi)
),
units AS (
    SELECT company, county_code, SUM(rate_fen) AS gross_fen,
           CAST(FLOOR(100 * GREATEST(0, SUM(cost_yuan) - SUM(revenue_yuan))) AS BIGINT) AS cap_fen
    FROM rated GROUP BY ALL
)
SELECT r.*, CAST(r.rate_fen * LEAST(u.gross_fen, u.cap_fen) // NULLIF(u.gross_fen, 0) AS INTEGER) AS subsidy_fen
FROM rated r JOIN units u USING (company, county_code)
) TO '{out}' (FORMAT parquet)
""")
