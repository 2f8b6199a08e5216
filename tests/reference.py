"""An independent reference of SPEC §4, written from the SPEC alone in plain Python Decimal.

It shares no code with the engine: it reads the files itself (csv module, openpyxl, pyarrow),
parses the policy TOML itself and applies the rules row by row. Tests compare it with
`settle run` parcel by parcel.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import tomllib
from collections import defaultdict
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path

ORDER = [
    "MALFORMED",
    "UNKNOWN_COMPANY",
    "UNKNOWN_VILLAGE",
    "WRONG_LEAGUE",
    "NOT_RURAL",
    "OUTSIDE_PERIOD",
    "NO_POLICY",
    "BAD_DISTANCE",
    "BAD_COST",
    "NO_PROOF",
    "DUPLICATE",
    "ALREADY_SETTLED",
]
ALIASES = {
    "waybill_no": ["运单号"],
    "company": ["快递企业", "企业编码"],
    "delivered_at": ["签收时间"],
    "village_code": ["嘎查村代码", "村代码"],
    "distance_km": ["派送距离", "派送距离(公里)"],
    "cost_yuan": ["派送成本", "单件成本(元)"],
    "revenue_yuan": ["派费收入", "派费收入(元)"],
    "proof": ["签收方式", "妥投凭证"],
}
HEADER = {a: f for f, names in ALIASES.items() for a in [f, *names]}
TIME = re.compile(
    r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})[ T](\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d+))?)?"
)


def floor_int(x: Decimal) -> int:
    return int(x.to_integral_value(rounding=ROUND_FLOOR))


# ------------------------------------------------------------------------------- reading


def _cell(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def read_rows(path: Path) -> list[dict]:
    """Rows of one file as {field: text or None}, in file order."""
    if path.suffix == ".xlsx":
        import openpyxl

        sheet = openpyxl.load_workbook(path, read_only=True, data_only=True).worksheets[0]
        values = [[_cell(v) for v in r] for r in sheet.iter_rows(values_only=True)]
    elif path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path).to_pylist()
        values = [list(table[0].keys())] + [[_cell(v) for v in r.values()] for r in table]
    else:
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("gb18030")
        values = list(csv.reader(io.StringIO(text)))
    header = [HEADER.get(str(h).strip()) for h in values[0]]
    rows = []
    for r in values[1:]:
        rec = dict.fromkeys(ALIASES)
        for name, v in zip(header, r, strict=False):
            if name:
                v = None if v is None else str(v).strip()
                rec[name] = v or None
        rows.append(rec)
    return rows


def number(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        d = Decimal(text)
    except InvalidOperation:
        return None
    if not d.is_finite():
        return None
    return d.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)


def when(text: str | None) -> dt.datetime | None:
    m = TIME.fullmatch(text or "")
    if not m:
        return None
    y, mo, d, h, mi, s, frac = m.groups()
    try:
        return dt.datetime(
            int(y),
            int(mo),
            int(d),
            int(h),
            int(mi),
            int(s or 0),
            int((frac or "0")[:6].ljust(6, "0")),
        )
    except ValueError:
        return None


# ------------------------------------------------------------------------------- the rules


def settle(
    config: Path,
    league: str,
    month: str,
    files: list[Path],
    settled_elsewhere: set[str],
    paid_before_fen: int,
) -> dict:
    """SPEC §4 for one 盟市-month. Returns ledger {waybill: {...}} and rejects {(file, row): code}."""
    policy = tomllib.loads(
        (config / "policies" / f"{league}.toml").read_text(), parse_float=Decimal
    )
    companies = {
        c["code"]: c.get("default_revenue_yuan")
        for c in tomllib.loads((config / "companies.toml").read_text(), parse_float=Decimal)[
            "company"
        ]
    }
    villages = {}
    with open(config / "divisions" / "villages.csv", encoding="utf-8") as fh:
        for v in csv.DictReader(fh):
            villages[v["code"]] = (v["code"][:6], v["code"][:4] + "00", v["urban_rural_code"])
    elig = policy.get("eligibility", {})
    eligible = set(elig.get("urban_rural_codes", ["210", "220"]))
    max_km = Decimal(elig.get("max_distance_km", 800))
    max_cost = Decimal(elig.get("max_cost_yuan", 30))
    require_proof = elig.get("require_proof", False)
    y, m = map(int, month.split("-"))
    start = dt.datetime(y, m, 1)
    end = dt.datetime(y + (m == 12), m % 12 + 1, 1)

    def version_on(day: dt.date):
        for v in policy["version"]:
            if v["effective_from"] <= day and ("effective_to" not in v or day <= v["effective_to"]):
                return v
        return None

    rows, rejects, passing = [], {}, []
    for f in files:
        for i, r in enumerate(read_rows(f), 1):
            rows.append((str(f), i, r))
    for f, i, r in rows:
        t = when(r["delivered_at"])
        km, cost = number(r["distance_km"]), number(r["cost_yuan"])
        rev = number(r["revenue_yuan"])
        code = r["village_code"]
        if (
            not r["waybill_no"]
            or len(r["waybill_no"]) > 64
            or not r["company"]
            or t is None
            or not code
            or not re.fullmatch(r"[0-9]{12}", code)
            or km is None
            or cost is None
            or (r["revenue_yuan"] is not None and rev is None)
        ):
            reason = "MALFORMED"
        elif r["company"] not in companies:
            reason = "UNKNOWN_COMPANY"
        elif code not in villages:
            reason = "UNKNOWN_VILLAGE"
        elif villages[code][1] != league:
            reason = "WRONG_LEAGUE"
        elif villages[code][2] not in eligible:
            reason = "NOT_RURAL"
        elif not start <= t < end:
            reason = "OUTSIDE_PERIOD"
        elif version_on(t.date()) is None:
            reason = "NO_POLICY"
        elif km < 0 or km > max_km:
            reason = "BAD_DISTANCE"
        elif cost < 0 or cost > max_cost or (rev is not None and rev < 0):
            reason = "BAD_COST"
        elif require_proof and not r["proof"]:
            reason = "NO_PROOF"
        else:
            passing.append((t, r["company"], code, km, cost, f, i, r, rev))
            continue
        rejects[(f, i)] = reason

    # The earliest row of a waybill stays (SPEC order); rows equal on those five fields are
    # ordered by revenue and proof (blank first), then file and row, as the engine documents.
    def order(p):
        rev, proof = p[8], p[7]["proof"]
        return (*p[:5], rev is not None, rev or 0, proof is not None, proof or "", p[5], p[6])

    best: dict[str, tuple] = {}
    for p in passing:
        w = p[7]["waybill_no"]
        if w not in best or order(p) < order(best[w]):
            best[w] = p
    parcels = []
    for p in passing:
        w = p[7]["waybill_no"]
        if best[w] is not p:
            rejects[(p[5], p[6])] = "DUPLICATE"
        elif w in settled_elsewhere:
            rejects[(p[5], p[6])] = "ALREADY_SETTLED"
        else:
            parcels.append(p)

    volume = defaultdict(int)
    for p in parcels:
        volume[p[2]] += 1
    scope = policy["breakeven"]["scope"]
    ledger, units = (
        {},
        defaultdict(lambda: {"rate": 0, "cost": Decimal(0), "rev": Decimal(0), "w": []}),
    )
    for t, company, code, km, cost, f, i, r, rev in parcels:
        v = version_on(t.date())
        county = villages[code][0]
        cls = "default"
        for area in v.get("area", []):
            if county in area.get("counties", []):
                cls = area["class"]
        for area in v.get("area", []):
            if code in area.get("villages", []):
                cls = area["class"]
        base = next(
            b["rate_yuan"]
            for b in v["rate"]
            if b["class"] == cls
            and b["distance_from_km"] <= km
            and ("distance_to_km" not in b or km < b["distance_to_km"])
        )
        tiers = sorted(
            (t_["up_to"], t_["multiplier"])
            for t_ in v.get("volume_tier", [])
            if volume[code] <= t_["up_to"]
        )
        mult = tiers[0][1] if tiers else Decimal(1)
        rate = min(Decimal(base) * mult, Decimal(v["cap_yuan"]))
        if "max_cost_share" in v:
            rate = min(rate, Decimal(v["max_cost_share"]) * cost)
        rate_fen = floor_int(rate * 100)
        revenue = (
            rev
            if rev is not None
            else (
                companies[company]
                if companies[company] is not None
                else policy["breakeven"]["default_revenue_yuan"]
            )
        )
        unit = {
            "company_county": f"{company}|{county}",
            "county": county,
            "company_league": company,
        }.get(scope, league)
        w = r["waybill_no"]
        ledger[w] = {
            "rate_fen": rate_fen,
            "unit_key": unit,
            "policy_version": v["id"],
            "area_class": cls,
            "source": (f, i),
        }
        u = units[unit]
        u["rate"] += rate_fen
        u["cost"] += cost
        u["rev"] += Decimal(revenue)
        u["w"].append(w)

    after = {}
    for key, u in units.items():
        cap = None if scope == "none" else floor_int(100 * max(Decimal(0), u["cost"] - u["rev"]))
        after[key] = u["rate"] if cap is None else min(u["rate"], cap)
    annual = int(Decimal(policy["budget"]["annual_yuan"]) * 100)
    rule = policy["budget"]["rule"]
    k = (m - policy["budget"].get("year_start_month", 1)) % 12 + 1
    available = {
        "ytd": max(0, annual - paid_before_fen),
        "monthly": max(0, annual * k // 12 - paid_before_fen),
    }.get(rule)
    total = sum(after.values())
    final = dict(after)
    if available is not None and total > available:
        final = {key: a * available // total for key, a in after.items()}
        spare = available - sum(final.values())
        for key in sorted(after, key=lambda x: (-(after[x] * available % total), x))[:spare]:
            final[key] += 1
    for key, u in units.items():
        share = {
            w: ledger[w]["rate_fen"] * final[key] // u["rate"] if u["rate"] else 0 for w in u["w"]
        }
        spare = final[key] - sum(share.values())
        order = sorted(
            u["w"],
            key=lambda w: (
                -(ledger[w]["rate_fen"] * final[key] % u["rate"] if u["rate"] else 0),
                w,
            ),
        )
        for w in order[:spare]:
            share[w] += 1
        for w in u["w"]:
            ledger[w]["subsidy_fen"] = share[w]
    return {
        "ledger": ledger,
        "rejects": rejects,
        "after_breakeven": after,
        "units": final,
        "gross": {key: u["rate"] for key, u in units.items()},
        "available": available,
    }
