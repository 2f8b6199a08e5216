"""Run the settlement rules of SPEC §4: load the inputs into DuckDB and execute `sql/` in order.

Python only builds the input tables (configuration, run parameters, earlier settlements) as
exact Arrow tables; every rule, every 分 of arithmetic, lives in the numbered SQL files.
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa

from . import SQL_DIR, shipped
from .config import Config, Policy
from .ingest import LogStream, NotUtf8Error
from .period import Month
from .reasons import REASONS
from .store import Earlier, load_earlier, load_prior, nothing_settled_elsewhere

DEC = pa.decimal128(18, 6)
FAR_FUTURE = dt.date(9999, 12, 31)
#: Run while the input is read, before the store is looked at (needs configuration only).
READ = ("05_types.sql", "10_parse.sql", "20_validate.sql")
#: Run once the store has said what earlier runs settled.
SETTLE = (
    "22_repeats.sql",
    "25_rejects.sql",
    "30_rate.sql",
    "40_units.sql",
    "50_budget.sql",
    "60_allocate.sql",
    "70_ledger.sql",
)
PIPELINE = READ + SETTLE
VALIDATION = READ + SETTLE[:2]


def _plain(d: Decimal) -> str:
    """A decimal as people write it: 800 not 800.000000, 0.5 not 5E-1."""
    text = format(d.normalize(), "f")
    return text


def _policy_tables(policy: Policy) -> dict[str, pa.Table]:
    versions, area_v, area_c, bands, tiers = [], [], [], [], []
    for v in policy.versions:
        versions.append(
            (
                v.id,
                v.reference,
                v.effective_from,
                v.effective_to or FAR_FUTURE,
                v.cap_yuan,
                v.max_cost_share,
            )
        )
        for a in v.areas:
            area_c += [(v.id, c, a.name) for c in a.counties]
            area_v += [(v.id, c, a.name) for c in a.villages]
        bands += [
            (v.id, b.area_class, b.distance_from_km, b.distance_to_km, b.rate_yuan) for b in v.rates
        ]
        tiers += [(v.id, t.up_to, t.multiplier) for t in v.volume_tiers]

    def table(rows: list[tuple], schema: list[tuple[str, pa.DataType]]) -> pa.Table:
        cols = list(zip(*rows, strict=True)) if rows else [[] for _ in schema]
        return pa.table({n: pa.array(list(c), t) for (n, t), c in zip(schema, cols, strict=True)})

    s = pa.string()
    return {
        "policy_versions": table(
            versions,
            [
                ("version_id", s),
                ("reference", s),
                ("effective_from", pa.date32()),
                ("effective_to", pa.date32()),
                ("cap_yuan", DEC),
                ("max_cost_share", DEC),
            ],
        ),
        "area_villages": table(area_v, [("version_id", s), ("village_code", s), ("area_class", s)]),
        "area_counties": table(area_c, [("version_id", s), ("county_code", s), ("area_class", s)]),
        "rate_bands": table(
            bands,
            [
                ("version_id", s),
                ("area_class", s),
                ("distance_from_km", DEC),
                ("distance_to_km", DEC),
                ("rate_yuan", DEC),
            ],
        ),
        "volume_tiers": table(
            tiers, [("version_id", s), ("up_to", pa.int64()), ("multiplier", DEC)]
        ),
    }


def load_config(
    con: duckdb.DuckDBPyConnection,
    cfg: Config,
    league: str,
    month: Month,
    run_id: str,
    source_files: list[str],
    header_lines: list[int] | None = None,
) -> None:
    """Create the tables the SQL reads from configuration: companies, villages, policy,
    reason codes, input_files (with the line of each file's header: 1 unless said) and
    run_params."""
    policy = cfg.policy(league)
    year_start = month.budget_year_start(policy.year_start_month)
    tables = _policy_tables(policy)
    tables["companies"] = pa.table(
        {
            "code": pa.array(list(cfg.companies), pa.string()),
            "name": pa.array([c.name for c in cfg.companies.values()], pa.string()),
            "default_revenue_yuan": pa.array(
                [c.default_revenue_yuan for c in cfg.companies.values()], DEC
            ),
        }
    )
    tables["villages"] = cfg.villages.select(
        "code", "county_code", "league_code", "urban_rural_code"
    ).to_arrow()
    tables["eligible_urban_rural"] = pa.table(
        {"urban_rural_code": pa.array(list(policy.urban_rural_codes), pa.string())}
    )
    tables["reason_codes"] = pa.table(
        {
            "reason_code": pa.array(list(REASONS), pa.string()),
            "reason": pa.array(list(REASONS.values()), pa.string()),
        }
    )
    tables["run_params"] = pa.table(
        {
            "run_id": [run_id],
            "league_code": [league],
            "month_start": pa.array(
                [dt.datetime.combine(month.start, dt.time())], pa.timestamp("us")
            ),
            "month_end": pa.array([dt.datetime.combine(month.end, dt.time())], pa.timestamp("us")),
            "max_distance_km": pa.array([policy.max_distance_km], DEC),
            "max_cost_yuan": pa.array([policy.max_cost_yuan], DEC),
            "max_distance_text": [_plain(policy.max_distance_km)],
            "max_cost_text": [_plain(policy.max_cost_yuan)],
            "eligible_codes": ["、".join(policy.urban_rural_codes)],
            "require_proof": [policy.require_proof],
            "scope": [policy.scope],
            "default_revenue_yuan": pa.array([policy.default_revenue_yuan], DEC),
            "budget_rule": [policy.budget_rule],
            "annual_budget_fen": pa.array([int(policy.annual_budget_yuan * 100)], pa.int64()),
            "budget_year_start": [str(year_start)],
            "budget_month_index": pa.array(
                [month.budget_month_index(policy.year_start_month)], pa.int32()
            ),
        }
    )
    tables["input_files"] = pa.table(
        {
            "file_no": pa.array(range(len(source_files)), pa.int32()),
            "source_file": pa.array(source_files, pa.string()),
            "header_line": pa.array(header_lines or [1] * len(source_files), pa.int32()),
        }
    )
    for name, table in tables.items():
        con.register(f"_arrow_{name}", table)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM _arrow_{name}")
        con.unregister(f"_arrow_{name}")


def read_rows(
    con: duckdb.DuckDBPyConnection, stream: LogStream, progress=None, files: tuple[str, ...] = READ
) -> None:
    """Stream every input row through sql/05–20 into the `rows` table (one pass over the input).

    Polars reads the next chunk of batches in a thread while DuckDB validates the previous one
    (both release the GIL), so reading and validating overlap on two cores. A CSV that looked
    like UTF-8 but is not, past its first megabyte, is read again whole as GB18030 (or refused
    with the reason)."""
    while True:
        try:
            _append_rows(con, stream, progress, files)
            return
        except NotUtf8Error as exc:
            stream.read_whole(exc.file_no)
            files = tuple(f for f in files if f != "05_types.sql")


def _append_rows(con, stream: LogStream, progress, files: tuple[str, ...]) -> None:
    con.register("raw_logs", stream.empty())
    run_sql(con, files, progress=progress)
    con.execute("CREATE OR REPLACE TEMP TABLE rows AS SELECT * FROM validated LIMIT 0")
    chunks: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def offer(item) -> bool:
        """Hand an item to DuckDB's side; False once it has stopped taking them."""
        while not stop.is_set():
            try:
                chunks.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in stream.chunks():
                if not offer(chunk):
                    return
            offer(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            offer(exc)

    worker = threading.Thread(target=produce, name="settle-read", daemon=True)
    worker.start()
    try:
        done = 0
        while (chunk := chunks.get()) is not None:
            if isinstance(chunk, BaseException):
                raise chunk
            con.register("raw_logs", chunk)
            con.execute("INSERT INTO rows SELECT * FROM validated")
            done += chunk.num_rows
            if progress:
                progress(f"已读取并校验 {done:,} 行")
    finally:
        stop.set()
        worker.join()
        con.unregister("raw_logs")


def load_store(
    con: duckdb.DuckDBPyConnection,
    cfg: Config,
    league: str,
    month: Month,
    store: Path | None,
    supplementary: bool = False,
    month_ledgers: list[Path] | None = None,
) -> None:
    """What earlier runs settled: settled_elsewhere, earlier_paid, prior_units, prior_villages."""
    policy = cfg.policy(league)
    year_start = month.budget_year_start(policy.year_start_month)
    earlier = load_earlier(con, store, league, month, year_start, supplementary, month_ledgers)
    load_earlier_paid(con, earlier)


def load_given(
    con: duckdb.DuckDBPyConnection, earlier: Earlier, prior_ledger: pa.Table | None = None
) -> None:
    """What load_store reads from the store, given instead (the policy simulator): nothing
    settled elsewhere, the budget year's payments, and the ledger rows of the month's earlier
    runs (a supplementary run's prior_units and prior_villages)."""
    nothing_settled_elsewhere(con)
    load_prior(con, prior_ledger)
    load_earlier_paid(con, earlier)


def load_earlier_paid(con: duckdb.DuckDBPyConnection, earlier: Earlier) -> None:
    """Create `earlier_paid`: what the budget year paid around this run (sql/50_budget.sql)."""
    con.register(
        "_arrow_earlier_paid",
        pa.table(
            {
                "paid_before_fen": pa.array([earlier.paid_before_fen], pa.int64()),
                "paid_other_fen": pa.array([earlier.paid_other_fen], pa.int64()),
                "paid_in_month_fen": pa.array([earlier.paid_in_month_fen], pa.int64()),
            }
        ),
    )
    con.execute("CREATE OR REPLACE TEMP TABLE earlier_paid AS SELECT * FROM _arrow_earlier_paid")
    con.unregister("_arrow_earlier_paid")


def run_sql(
    con: duckdb.DuckDBPyConnection, files: tuple[str, ...] = PIPELINE, progress=None
) -> None:
    """Execute the numbered SQL files in order."""
    for name in files:
        if progress:
            progress(f"执行 sql/{name}")
        con.execute(shipped(SQL_DIR / name).read_text(encoding="utf-8"))
