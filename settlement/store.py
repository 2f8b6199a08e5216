"""The store: an embedded DuckDB file holding runs, seals, the journal, events and the auditors'
views over the Parquet outputs.

Schema changes are numbered migrations applied in order and recorded in `schema_migrations`.
The settlement itself runs in memory; the store is opened read-only to learn what earlier runs
settled, and written once, at the end, in one transaction that publishes the run.

The store is relocatable (SPEC §8.2): `runs.out_dir` is the output directory *relative to the
store's own directory*, and the views read the Parquet files by paths relative to it too
(DuckDB resolves them against `file_search_path`, which every connection of the engine sets
to the store's directory). `out/` copied or moved anywhere, with its store, answers from the
new place and never reads the old one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from . import SQL_DIR, journal, shipped
from .catalog import apply_comments
from .clock import now_naive_utc
from .db import bound
from .errors import RefusedError, SettlementError, UsageError
from .events import Actor, record_event
from .period import Month

MIGRATIONS: tuple[tuple[str, str | Callable], ...] = (
    (
        "runs and settled waybills",
        """
        CREATE TABLE runs (
            run_id               VARCHAR PRIMARY KEY,
            league_code          VARCHAR NOT NULL,
            month                VARCHAR NOT NULL,
            kind                 VARCHAR NOT NULL,   -- regular | supplementary (补充结算)
            status               VARCHAR NOT NULL,   -- current | superseded
            payable_in_month     VARCHAR,            -- supplementary: the statement month it is paid in
            supersedes           VARCHAR,
            superseded_by        VARCHAR,
            started_at           TIMESTAMP NOT NULL,
            finished_at          TIMESTAMP NOT NULL,
            input_sha256         VARCHAR NOT NULL,
            config_sha256        VARCHAR NOT NULL,
            manifest_sha256      VARCHAR NOT NULL,
            out_dir              VARCHAR NOT NULL,
            rows_in              BIGINT NOT NULL,
            parcels              BIGINT NOT NULL,
            rejects              BIGINT NOT NULL,
            gross_fen            BIGINT NOT NULL,
            after_breakeven_fen  BIGINT NOT NULL,
            subsidy_fen          BIGINT NOT NULL,
            budget_available_fen BIGINT              -- NULL: budget rule 'none'
        );
        CREATE TABLE settled_waybills (
            waybill_no   VARCHAR NOT NULL,
            league_code  VARCHAR NOT NULL,
            month        VARCHAR NOT NULL,
            run_id       VARCHAR NOT NULL,
            company      VARCHAR NOT NULL,
            subsidy_fen  INTEGER NOT NULL
        );
        CREATE TABLE seals (
            league_code  VARCHAR NOT NULL,
            month        VARCHAR NOT NULL,
            run_id       VARCHAR NOT NULL,   -- the regular run that was reviewed and approved
            reviewed_by  VARCHAR NOT NULL,   -- 审核人
            notice_start DATE NOT NULL,      -- 公示 from
            notice_end   DATE NOT NULL,      -- 公示 to (inclusive)
            approved_by  VARCHAR NOT NULL,   -- 审批人
            approval_ref VARCHAR NOT NULL,   -- 审批文号
            sealed_at    TIMESTAMP NOT NULL,
            PRIMARY KEY (league_code, month)
        );
        """,
    ),
    (
        "paid waybills read from the published ledgers, not copied",
        # the ledger Parquet of every current run already holds its waybills: copying ten
        # million of them into the store took a quarter of a run's time. refresh_views()
        # creates the view over them after every migration and every run.
        "DROP TABLE settled_waybills",
    ),
)


def _relocatable(con: duckdb.DuckDBPyConnection, root: Path) -> None:
    """Migration 3: paths relative to the store; the journal, events, dependencies and voids."""
    con.execute(
        """
        ALTER TABLE runs ADD COLUMN run_by VARCHAR;          -- who ran it (events has where from)
        ALTER TABLE runs ADD COLUMN ended_at TIMESTAMP;      -- when superseded or voided
        ALTER TABLE runs ADD COLUMN annual_budget_fen BIGINT; -- the budget it was settled under
        ALTER TABLE runs ADD COLUMN budget_rule VARCHAR;
        ALTER TABLE seals ADD COLUMN sealed_by VARCHAR;
        ALTER TABLE seals ADD COLUMN entry_id VARCHAR;
        CREATE TABLE journal (
            seq          INTEGER PRIMARY KEY,
            entry_id     VARCHAR NOT NULL UNIQUE,   -- journal/<entry_id>.json
            kind         VARCHAR NOT NULL,          -- run | void | seal
            league_code  VARCHAR,
            month        VARCHAR,
            recorded_at  TIMESTAMP NOT NULL,
            sha256       VARCHAR NOT NULL
        );
        INSERT INTO journal
        SELECT row_number() OVER (ORDER BY finished_at, run_id), run_id, 'run', league_code,
               month, finished_at, manifest_sha256
        FROM runs;
        CREATE TABLE run_dependencies (
            run_id      VARCHAR NOT NULL,  -- a run that rejected waybills as ALREADY_SETTLED
            depends_on  VARCHAR NOT NULL,  -- the run that had settled them
            waybills    BIGINT NOT NULL,
            PRIMARY KEY (run_id, depends_on)
        );
        CREATE TABLE voids (
            run_id       VARCHAR PRIMARY KEY,
            league_code  VARCHAR NOT NULL,
            month        VARCHAR NOT NULL,
            voided_at    TIMESTAMP NOT NULL,
            voided_by    VARCHAR NOT NULL,
            reason       VARCHAR NOT NULL,
            entry_id     VARCHAR NOT NULL
        );
        CREATE TABLE events (
            seq          BIGINT PRIMARY KEY,
            occurred_at  TIMESTAMP NOT NULL,
            actor        VARCHAR NOT NULL,
            origin       VARCHAR NOT NULL,
            action       VARCHAR NOT NULL,
            league_code  VARCHAR,
            month        VARCHAR,
            run_id       VARCHAR,
            detail       VARCHAR
        );
        """
    )
    for (recorded,) in con.execute("SELECT DISTINCT out_dir FROM runs").fetchall():
        con.execute(
            "UPDATE runs SET out_dir = ? WHERE out_dir = ?",
            [_migrated_out_dir(recorded, root), recorded],
        )


def _migrated_out_dir(recorded: str, root: Path) -> str:
    """An absolute out_dir of an older store, relative to the store. A store already moved
    before this migration still has its outputs beside it."""
    path = Path(recorded)
    if not path.is_absolute():
        return recorded
    if not (path / "ledger").exists() and (root / "ledger").exists():
        return "."
    return Path(os.path.relpath(path, root)).as_posix()


MIGRATIONS += (
    (
        "relocatable store: out_dir relative to the store; journal, events, dependencies, voids",
        _relocatable,
    ),
)

MIGRATIONS += (
    (
        "paying out (SPEC §10): payment batches, their lines and months, clawbacks, year closes",
        """
        CREATE TABLE payment_batches (
            batch_id       VARCHAR PRIMARY KEY,   -- also its journal entry (journal/<batch_id>.json)
            league_code    VARCHAR NOT NULL,
            state          VARCHAR NOT NULL CHECK (state IN ('created', 'paid')),
            months         VARCHAR NOT NULL,      -- '2025-01,2025-02'
            amount_fen     BIGINT NOT NULL CHECK (amount_fen >= 0),
            created_by     VARCHAR NOT NULL,
            created_at     TIMESTAMP NOT NULL,
            confirmed_by   VARCHAR,
            confirmed_at   TIMESTAMP,
            paid_on        DATE,
            voucher        VARCHAR,
            files          VARCHAR NOT NULL,      -- JSON: file name -> SHA-256
            confirm_entry_id VARCHAR,
            CHECK (state = 'created' OR (confirmed_by IS NOT NULL AND paid_on IS NOT NULL
                                          AND voucher IS NOT NULL))
        );
        CREATE TABLE payment_lines (
            batch_id            VARCHAR NOT NULL,
            company             VARCHAR NOT NULL,
            payee_name          VARCHAR,
            credit_code         VARCHAR,
            bank                VARCHAR,
            account             VARCHAR,
            months              VARCHAR NOT NULL,
            due_fen             BIGINT NOT NULL,   -- Σ the months' payable (sealed statements)
            carried_in_fen      BIGINT NOT NULL CHECK (carried_in_fen <= 0),
            amount_fen          BIGINT NOT NULL CHECK (amount_fen >= 0),
            carried_forward_fen BIGINT NOT NULL CHECK (carried_forward_fen <= 0),
            PRIMARY KEY (batch_id, company)
        );
        CREATE TABLE payment_months (
            league_code  VARCHAR NOT NULL,
            month        VARCHAR NOT NULL,
            batch_id     VARCHAR NOT NULL,
            due_fen      BIGINT NOT NULL,
            PRIMARY KEY (league_code, month)        -- a month is paid at most once
        );
        CREATE TABLE clawbacks (
            clawback_id     VARCHAR NOT NULL,       -- its journal entry
            kind            VARCHAR NOT NULL CHECK (kind IN ('manual', 'true_up')),
            league_code     VARCHAR NOT NULL,
            booked_in_month VARCHAR NOT NULL,
            company         VARCHAR NOT NULL,
            waybill_no      VARCHAR NOT NULL,
            amount_fen      BIGINT NOT NULL CHECK (amount_fen < 0),
            source_month    VARCHAR NOT NULL,
            source_run_id   VARCHAR NOT NULL,
            reason          VARCHAR NOT NULL,
            recorded_by     VARCHAR NOT NULL,
            recorded_at     TIMESTAMP NOT NULL,
            PRIMARY KEY (clawback_id, waybill_no)
        );
        CREATE TABLE year_closes (
            league_code     VARCHAR NOT NULL,
            year            INTEGER NOT NULL,
            start_month     VARCHAR NOT NULL,
            end_month       VARCHAR NOT NULL,
            annual_true_up  BOOLEAN NOT NULL,
            true_up_fen     BIGINT NOT NULL,
            booked_in_month VARCHAR,
            closed_by       VARCHAR NOT NULL,
            closed_at       TIMESTAMP NOT NULL,
            files           VARCHAR NOT NULL,       -- JSON: file name -> SHA-256
            entry_id        VARCHAR NOT NULL,
            PRIMARY KEY (league_code, year)
        );
        """,
    ),
)

VIEW_KINDS = ("ledger", "rejects", "units")

#: The views' columns when no current run has files of that kind (an empty store, or its only
#: month voided): the same names and types as the Parquet outputs, and no rows, so queries
#: and audits run instead of failing on a glob that matches nothing (a test compares them
#: with a real run's).
_D = "DECIMAL(18,6)"
_SUM = "DECIMAL(38,6)"
VIEW_COLUMNS = {
    "ledger": [
        ("waybill_no", "VARCHAR"),
        ("company", "VARCHAR"),
        ("village_code", "VARCHAR"),
        ("county_code", "VARCHAR"),
        ("delivered_at", "TIMESTAMP"),
        ("distance_km", _D),
        ("cost_yuan", _D),
        ("revenue_yuan", _D),
        ("revenue_source", "VARCHAR"),
        ("proof", "VARCHAR"),
        ("area_class", "VARCHAR"),
        ("policy_version", "VARCHAR"),
        ("band_from_km", _D),
        ("band_to_km", _D),
        ("base_rate_yuan", _D),
        ("village_volume", "BIGINT"),
        ("volume_multiplier", _D),
        ("rate_fen", "INTEGER"),
        ("unit_key", "VARCHAR"),
        ("subsidy_fen", "INTEGER"),
        ("source_file", "VARCHAR"),
        ("source_row", "INTEGER"),
        ("run_id", "VARCHAR"),
    ],
    "rejects": [
        ("source_file", "VARCHAR"),
        ("source_row", "INTEGER"),
        ("source_line", "INTEGER"),
        ("waybill_no", "VARCHAR"),
        ("company", "VARCHAR"),
        ("delivered_at", "VARCHAR"),
        ("village_code", "VARCHAR"),
        ("distance_km", "VARCHAR"),
        ("cost_yuan", "VARCHAR"),
        ("revenue_yuan", "VARCHAR"),
        ("proof", "VARCHAR"),
        ("reason_code", "VARCHAR"),
        ("reason", "VARCHAR"),
        ("detail", "VARCHAR"),
        ("run_id", "VARCHAR"),
    ],
    "units": [
        ("run_id", "VARCHAR"),
        ("unit_key", "VARCHAR"),
        ("company", "VARCHAR"),
        ("county_code", "VARCHAR"),
        ("parcels", "BIGINT"),
        ("gross_fen", "BIGINT"),
        ("cost_yuan", _SUM),
        ("revenue_yuan", _SUM),
        ("prior_cost_yuan", _SUM),
        ("prior_revenue_yuan", _SUM),
        ("cap_fen", "BIGINT"),
        ("prior_paid_fen", "BIGINT"),
        ("after_breakeven_fen", "BIGINT"),
        ("breakeven_excess_fen", "BIGINT"),
        ("subsidy_fen", "BIGINT"),
    ],
}


def _empty_view(kind: str) -> str:
    columns = [*VIEW_COLUMNS[kind], ("league", "VARCHAR"), ("month", "VARCHAR")]
    return "SELECT " + ", ".join(f"NULL::{t} AS {c}" for c, t in columns) + " WHERE false"


#: settled_waybills before any run's ledger is published: the columns, no rows
EMPTY_PAID = (
    "SELECT NULL::VARCHAR AS waybill_no, NULL::VARCHAR AS league_code, NULL::VARCHAR AS month, "
    "NULL::VARCHAR AS run_id, NULL::VARCHAR AS company, NULL::INTEGER AS subsidy_fen WHERE false"
)


# --------------------------------------------------------------------------- paths


def store_root(store: Path) -> Path:
    """The directory holding the store: what every path the store records is relative to."""
    return Path(os.path.abspath(store)).parent


def relative_out(store: Path, out_dir: Path) -> str:
    """out_dir as the store records it: relative to the store's directory ('.' beside it)."""
    return Path(os.path.relpath(os.path.abspath(out_dir), store_root(store))).as_posix()


def resolve_out(store: Path, recorded: str) -> Path:
    """A recorded out_dir as an absolute path, wherever the store now is."""
    return Path(os.path.normpath(store_root(store) / recorded))


def require_store(store: Path) -> None:
    """Read commands on a store that does not exist stop here (exit 2), creating nothing."""
    if not Path(store).is_file():
        where = "" if Path(store).parent.exists() else f"（目录 {Path(store).parent} 也不存在）"
        raise UsageError(
            f"结算库 {store} 不存在{where}；请用 --store 指定已有的结算库，或先运行 settle run"
        )


def search_path(con: duckdb.DuckDBPyConnection, store: Path) -> None:
    """Let the connection resolve the store's relative paths against the store's directory
    only. DuckDB looks a relative glob up in every directory of file_search_path and reads all
    it finds: with the working directory listed too, a store's views read the `ledger/` of any
    other store that happened to be there (or, listed twice, their own files twice)."""
    con.execute("SET file_search_path = ?", [str(store_root(store))])


def _migrate(con: duckdb.DuckDBPyConnection, store: Path) -> None:
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, description VARCHAR, applied_at TIMESTAMP)"
    )
    done = {r[0] for r in con.execute("SELECT version FROM schema_migrations").fetchall()}
    pending = [(v, m) for v, m in enumerate(MIGRATIONS, 1) if v not in done]
    for version, (description, change) in pending:
        con.execute("BEGIN")
        if callable(change):
            change(con, store_root(store))
        else:
            con.execute(change)
        if version == pending[-1][0]:  # the views as the schema now stands
            refresh_views(con, store)
        con.execute(
            "INSERT INTO schema_migrations VALUES (?, ?, ?)",
            [version, description, now_naive_utc()],
        )
        con.execute("COMMIT")


def busy_wait() -> float:
    """Seconds a connection waits while another process holds the store (a run recording
    itself, a long query): $SETTLE_BUSY_WAIT, default 30."""
    return float(os.environ.get("SETTLE_BUSY_WAIT", "30"))


def connect_file(
    path: Path, read_only: bool, what: str, config: dict | None = None
) -> duckdb.DuckDBPyConnection:
    """Connect to the store file. DuckDB lets one process write or several read: while another
    process holds the store the other way, wait (up to busy_wait()), then say so plainly."""
    deadline = time.monotonic() + busy_wait()
    delay = 0.02
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only, config=config or {})
        except duckdb.Error as exc:
            first = str(exc).splitlines()[0]
            if "lock" in first.lower() and time.monotonic() < deadline:
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
                continue
            raise SettlementError(f"{what} {path}：{first}") from None


def open_store(path: Path) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the store for writing, with every migration applied."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = connect_file(path, False, "无法打开结算库")
    bound(con)
    search_path(con, path)
    _migrate(con, path)
    return con


def upgrade(store: Path) -> None:
    """Before reading a store: it exists (else exit 2), and a store written by an older version
    gets its pending migrations (under the writer's lock), so every reader sees one schema."""
    require_store(store)
    con = connect_file(store, True, "无法以只读方式打开结算库")
    try:
        done = con.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchall()
    except duckdb.CatalogException:
        done = [(0,)]
    finally:
        con.close()
    if done[0][0] < len(MIGRATIONS):
        from .lock import store_lock

        with store_lock(store):
            open_store(store).close()


def connect_readonly(store: Path) -> duckdb.DuckDBPyConnection:
    """An existing store opened read-only, its views reading from wherever the store now is."""
    upgrade(store)
    con = connect_file(store, True, "无法以只读方式打开结算库")
    bound(con)
    search_path(con, store)
    return con


def attach_readonly(con: duckdb.DuckDBPyConnection, path: Path | None) -> bool:
    """Attach an existing store as `store` (read-only); False when there is none yet."""
    if path is None or not path.exists():
        return False
    try:
        con.execute("ATTACH ? AS store (READ_ONLY)", [str(path)])
    except duckdb.Error as exc:
        raise SettlementError(f"无法读取结算库 {path}：{str(exc).splitlines()[0]}") from None
    relations = {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'store' "
            "UNION SELECT view_name FROM duckdb_views() WHERE database_name = 'store'"
        ).fetchall()
    }
    if "settled_waybills" not in relations:
        con.execute("DETACH store")
        return False
    search_path(con, path)
    return True


def detach(con: duckdb.DuckDBPyConnection) -> None:
    """Undo attach_readonly: paths resolve against the current directory again."""
    con.execute("DETACH store")
    con.execute("RESET file_search_path")


def recorded_out(store: Path) -> Path | None:
    """The output directory the store's runs were published to (absolute), if any run."""
    rows = _query(store, "SELECT DISTINCT out_dir FROM runs ORDER BY out_dir")
    return resolve_out(store, rows[0]["out_dir"]) if rows else None


def check_out_dir(store: Path, out_dir: Path) -> None:
    """One store, one output directory: a run whose --out is elsewhere would mix two folders."""
    recorded = recorded_out(store)
    if recorded is not None and recorded != Path(os.path.abspath(out_dir)):
        raise RefusedError(
            f"结算库 {store} 的结算输出在 {recorded}，本次 --out 为 {out_dir}：一个结算库只对应"
            "一个输出目录。请把 --out 指向该目录，或为新的输出目录另用一个结算库（--store）"
        )


@dataclass(frozen=True)
class Earlier:
    """What the store says about the budget year around the month being settled (分)."""

    paid_before_fen: int = 0  # current runs of earlier months of the budget year
    paid_other_fen: int = 0  # current runs of every other month of the budget year
    paid_in_month_fen: int = 0  # current runs of this month (only a supplementary run sees any)


def load_earlier(
    con: duckdb.DuckDBPyConnection,
    store: Path | None,
    league: str,
    month: Month,
    year_start: Month,
    supplementary: bool = False,
    month_ledgers: list[Path] | None = None,
) -> Earlier:
    """Create `settled_elsewhere`, `prior_units` and `prior_villages`; return the budget year.

    settled_elsewhere: this run's waybills already settled by a current run — of any other
    盟市-month, or (supplementary run) of this month too. prior_units / prior_villages: what the
    month's earlier runs settled per unit and village, so a supplementary run keeps break-even
    and volume tiers over the whole month; empty for a regular run.
    """
    year_end = year_start.shift(12)
    if attach_readonly(con, store):
        _check_ledgers(con, store, league, month, replaces=not supplementary)
        try:
            con.execute(
                """
                CREATE OR REPLACE TEMP TABLE settled_elsewhere AS
                SELECT s.waybill_no, s.league_code, s.month, s.run_id, s.company
                FROM store.settled_waybills s
                WHERE (? OR NOT (s.league_code = ? AND s.month = ?))
                  AND s.waybill_no IN (SELECT waybill_no FROM rows WHERE reason_code IS NULL)
                """,
                [supplementary, league, str(month)],
            )
        except duckdb.IOException as exc:
            raise SettlementError(
                f"无法读取结算库 {store} 中已结算批次的明细账（{str(exc).splitlines()[0]}）；"
                "已结算运单无法核对，请先恢复输出目录中的 ledger/ 文件"
            ) from None
        paid = con.execute(
            """
            SELECT
                COALESCE(SUM(subsidy_fen) FILTER (WHERE month < ?), 0),
                COALESCE(SUM(subsidy_fen) FILTER (WHERE month <> ?), 0),
                COALESCE(SUM(subsidy_fen) FILTER (WHERE month = ?), 0)
            FROM store.runs
            WHERE status = 'current' AND league_code = ? AND month >= ? AND month < ?
            """,
            [str(month), str(month), str(month), league, str(year_start), str(year_end)],
        ).fetchall()[0]
        detach(con)
        earlier = Earlier(int(paid[0]), int(paid[1]), int(paid[2]) if supplementary else 0)
    else:
        nothing_settled_elsewhere(con)
        earlier = Earlier()
    load_prior(con, [os.path.abspath(p) for p in (month_ledgers or [])] if supplementary else None)
    return earlier


def nothing_settled_elsewhere(con: duckdb.DuckDBPyConnection) -> None:
    """Create an empty `settled_elsewhere`: no waybill of this run was paid before."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE settled_elsewhere (waybill_no VARCHAR, "
        "league_code VARCHAR, month VARCHAR, run_id VARCHAR, company VARCHAR)"
    )


def load_prior(con: duckdb.DuckDBPyConnection, ledger: list[str] | pa.Table | None) -> None:
    """Create `prior_units` and `prior_villages` from the ledger rows of the month's earlier
    runs: their Parquet files, or an Arrow table with the ledger's unit_key, village_code,
    cost_yuan, revenue_yuan and subsidy_fen (the policy simulator's); empty when none."""
    if ledger is None or (isinstance(ledger, list) and not ledger):
        con.execute(
            "CREATE OR REPLACE TEMP TABLE prior_units (unit_key VARCHAR, cost_yuan DECIMAL(38, 6), "
            "revenue_yuan DECIMAL(38, 6), paid_fen BIGINT)"
        )
        con.execute(
            "CREATE OR REPLACE TEMP TABLE prior_villages (village_code VARCHAR, parcels BIGINT)"
        )
        return
    if isinstance(ledger, pa.Table):
        con.register("_prior_ledger", ledger)
        source, params = "_prior_ledger", []
    else:
        source, params = "read_parquet(?)", [ledger]
    try:
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE prior_units AS
            SELECT CAST(unit_key AS VARCHAR) AS unit_key, SUM(cost_yuan) AS cost_yuan,
                   SUM(revenue_yuan) AS revenue_yuan, CAST(SUM(subsidy_fen) AS BIGINT) AS paid_fen
            FROM {source} GROUP BY ALL
            """,
            params,
        )
        con.execute(
            "CREATE OR REPLACE TEMP TABLE prior_villages AS SELECT CAST(village_code AS VARCHAR) "
            f"AS village_code, COUNT(*) AS parcels FROM {source} GROUP BY ALL",
            params,
        )
    finally:
        if isinstance(ledger, pa.Table):
            con.unregister("_prior_ledger")


def _check_ledgers(
    con: duckdb.DuckDBPyConnection, store: Path, league: str, month: Month, replaces: bool
) -> None:
    """Refuse to settle when a current run's ledger is not all there: its paid waybills are
    read from it (settled_waybills), so a missing file would let them be paid again. Compares
    the parcels the store recorded per 盟市-month with the rows in the Parquet footers (no data
    is read), less the month a regular run is about to replace."""
    recorded = con.execute(
        "SELECT out_dir, league_code, month, SUM(parcels) FROM store.runs "
        "WHERE status = 'current' AND NOT (? AND league_code = ? AND month = ?) GROUP BY ALL "
        "ORDER BY league_code, month",
        [replaces, league, str(month)],
    ).fetchall()
    files = {
        str(path): (
            out_dir,
            path.parent.parent.name.split("=", 1)[1],
            path.parent.name.split("=", 1)[1],
        )
        for out_dir in sorted({r[0] for r in recorded})
        for path in resolve_out(store, out_dir)
        .joinpath("ledger")
        .glob("league=*/month=*/*.parquet")
    }
    found: dict[tuple[str, str, str], int] = {}
    if files:
        for name, rows in con.execute(
            "SELECT file_name, num_rows FROM parquet_file_metadata(?)", [list(files)]
        ).fetchall():
            found[files[name]] = found.get(files[name], 0) + rows
    for out_dir, code, when, parcels in recorded:
        have = found.get((out_dir, code, when), 0)
        if have != parcels:
            raise SettlementError(
                f"结算库 {store} 记录盟市 {code} {when} 已受理 {parcels:,} 件，但明细账 "
                f"{resolve_out(store, out_dir) / 'ledger' / f'league={code}' / f'month={when}'} 中有 {have:,} 件："
                "已结算运单无法核对，请先恢复该目录的明细账文件（settle verify 可列出问题）"
            )


def _glob(out_dir: str | Path, kind: str) -> str:
    """A view's glob: 'ledger/*/*/*.parquet' for outputs beside the store."""
    return Path(out_dir, kind, "*", "*", "*.parquet").as_posix().replace("'", "''")


def refresh_views(con: duckdb.DuckDBPyConnection, store: Path, temp: bool = False) -> None:
    """(Re)create the auditors' views over the Parquet outputs of the store's current runs.

    ledger, rejects, units: every Parquet file under the output directory, by a path relative
    to the store. settled_waybills: the waybills of the current runs, read from their ledgers
    (a waybill there is ALREADY_SETTLED for any other 盟市-month). A current run whose ledger
    file has gone missing is found by the audits (01: its rows do not reconcile), which stops
    the next run from publishing and `settle verify` from passing.

    `temp`: the same views as TEMP views with absolute paths, shadowing the stored ones, on a
    read-only connection whose file access is sandboxed to the output directory (DuckDB checks
    the allowed directories on the path as written, before resolving a relative one).
    """
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    dirs: list[str] = []
    if "runs" in tables:
        dirs = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT out_dir FROM runs WHERE status = 'current' ORDER BY out_dir"
            ).fetchall()
        ]
    if not temp:
        search_path(con, store)
    create = "CREATE OR REPLACE TEMP VIEW" if temp else "CREATE OR REPLACE VIEW"
    have_ledger = False
    for kind in VIEW_KINDS:
        if not dirs:  # no current run: the columns, no rows
            con.execute(f"{create} {kind} AS {_empty_view(kind)}")
            continue
        globs = [_glob(resolve_out(store, d) if temp else d, kind) for d in dirs]
        files = "[" + ", ".join(f"'{g}'" for g in globs) + "]"
        try:
            con.execute(
                f"{create} {kind} AS SELECT * FROM read_parquet({files}, "
                "hive_partitioning = true, hive_types = {'league': VARCHAR, 'month': VARCHAR}, "
                "union_by_name = true)"
            )
        except duckdb.IOException:
            if not temp:
                raise
            # a current run's files are missing: the stored view stays, and fails loudly
            # when read (verify names the missing file)
            continue
        have_ledger |= kind == "ledger"
    con.execute(
        f"{create} settled_waybills AS "
        + (
            "SELECT CAST(l.waybill_no AS VARCHAR) AS waybill_no, r.league_code, r.month, "
            "r.run_id, CAST(l.company AS VARCHAR) AS company, l.subsidy_fen "
            "FROM ledger l JOIN runs r ON r.run_id = l.run_id AND r.league_code = l.league "
            "AND r.month = l.month WHERE r.status = 'current'"
            if have_ledger
            else EMPTY_PAID
        )
    )
    if not temp and "clawbacks" in tables:  # what each statement pays (SPEC §10)
        con.execute(shipped(SQL_DIR / "92_payable.sql").read_text(encoding="utf-8"))
    if not temp:
        search_path(con, store)


def _write_reference(con: duckdb.DuckDBPyConnection, reference: dict | None) -> None:
    for name, table in (reference or {}).items():
        con.register(f"_ref_{name}", table)
        con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM _ref_{name}")
        con.unregister(f"_ref_{name}")


@contextmanager
def transaction(store: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The store opened for writing, in one transaction: all of the block or none of it."""
    con = open_store(store)
    try:
        con.execute("BEGIN")
        yield con
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.close()


def record_run(
    store: Path,
    run: dict,
    reference: dict | None = None,
    actor: Actor | None = None,
    dependencies: dict[str, int] | None = None,
    statements_sha256: str | None = None,
) -> str | None:
    """Publish a finished run: supersede the month's previous run, record the new one (its
    waybills are read from its ledger through the settled_waybills view), its place in the
    journal, what it depends on (ALREADY_SETTLED against which runs), and the event.

    Returns the run_id it superseded, if any. One transaction: all of it or none of it.
    """
    actor = actor or Actor.cli()
    with transaction(store) as con:
        previous = con.execute(
            "SELECT run_id FROM runs WHERE league_code = ? AND month = ? AND status = 'current' "
            "AND kind = 'regular' AND ? = 'regular'",
            [run["league_code"], run["month"], run["kind"]],
        ).fetchall()
        previous_id = previous[0][0] if previous else None
        if previous_id:
            con.execute(
                "UPDATE runs SET status = 'superseded', superseded_by = ?, ended_at = ? "
                "WHERE run_id = ?",
                [run["run_id"], run["finished_at"], previous_id],
            )
        row = {**run, "run_by": actor.name, "status": "current", "supersedes": previous_id}
        con.execute(
            f"INSERT INTO runs ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
            list(row.values()),
        )
        for depends_on, waybills in (dependencies or {}).items():
            con.execute(
                "INSERT INTO run_dependencies VALUES (?, ?, ?)",
                [run["run_id"], depends_on, waybills],
            )
        journal.append(
            con,
            run["run_id"],
            "run",
            run["league_code"],
            run["month"],
            run["manifest_sha256"],
            run["finished_at"],
        )
        action = "supplementary_run" if run["kind"] == "supplementary" else "run"
        record_event(
            con,
            actor,
            "replace_run" if previous_id else action,
            run["league_code"],
            run["month"],
            run["run_id"],
            {
                "parcels": run["parcels"],
                "subsidy_fen": run["subsidy_fen"],
                "supersedes": previous_id,
                **({"statements_sha256": statements_sha256} if statements_sha256 else {}),
            },
        )
        refresh_views(con, store)
        _write_reference(con, reference)
        apply_comments(con)
    return previous_id


def record_statements(
    store: Path, league: str, month: str, run_id: str, sha256: str, actor: Actor, why: str
) -> None:
    """Record that a month's statements were rendered again: statements.json's SHA-256 (it
    holds every statement's), so that an edit made afterwards is found by `settle verify`."""
    with transaction(store) as con:
        record_event(
            con,
            actor,
            "statements",
            league,
            month,
            run_id,
            {"statements_sha256": sha256, "why": why},
        )


#: The last SHA-256 of a month's statements.json the store recorded (at its run, void or any
#: rendering since).
STATEMENTS_SHA_SQL = """
SELECT json_extract_string(detail, '$.statements_sha256') AS sha256, action, occurred_at
FROM events
WHERE league_code = ? AND month = ?
  AND json_extract_string(detail, '$.statements_sha256') IS NOT NULL
ORDER BY seq DESC LIMIT 1
"""


def record_void(store: Path, run_id: str, void: dict, actor: Actor, sha256: str) -> None:
    """Withdraw a month's current run: its waybills are released (the views no longer read its
    files, which were moved to voided/), the journal and the events record it."""
    with transaction(store) as con:
        con.execute(
            "UPDATE runs SET status = 'voided', ended_at = ? WHERE run_id = ?",
            [void["voided_at"], run_id],
        )
        con.execute(
            "INSERT INTO voids VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                run_id,
                void["league_code"],
                void["month"],
                void["voided_at"],
                actor.name,
                void["reason"],
                void["entry_id"],
            ],
        )
        journal.append(
            con,
            void["entry_id"],
            "void",
            void["league_code"],
            void["month"],
            sha256,
            void["voided_at"],
        )
        record_event(
            con,
            actor,
            "void",
            void["league_code"],
            void["month"],
            run_id,
            {
                "reason": void["reason"],
                "entry_id": void["entry_id"],
                "statements_sha256": void.get("statements_sha256"),
            },
        )
        refresh_views(con, store)


# --------------------------------------------------------------------------- month state


@dataclass(frozen=True)
class MonthState:
    run_id: str | None  # the current regular run
    seal: dict | None  # the seals row, when sealed
    supplements: int  # supplementary runs so far


def _readonly(store: Path) -> duckdb.DuckDBPyConnection | None:
    if not Path(store).exists():
        return None
    return connect_readonly(store)


def _dicts(cursor) -> list[dict]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _query(store: Path, sql: str, params: list | None = None) -> list[dict]:
    """The rows of one query on the store, opened read-only; none when there is no store yet."""
    con = _readonly(store)
    if con is None:
        return []
    try:
        return _dicts(con.execute(sql, params or []))
    finally:
        con.close()


def month_state(store: Path, league: str, month: Month) -> MonthState:
    """Whether a 盟市-month has a current run, is sealed, and how many supplements it has."""
    con = _readonly(store)
    if con is None:
        return MonthState(None, None, 0)
    try:
        runs = con.execute(
            "SELECT kind, run_id FROM runs WHERE league_code = ? AND month = ? AND status = 'current'",
            [league, str(month)],
        ).fetchall()
        seals = _dicts(
            con.execute(
                "SELECT * FROM seals WHERE league_code = ? AND month = ?", [league, str(month)]
            )
        )
    finally:
        con.close()
    regular = [r[1] for r in runs if r[0] == "regular"]
    return MonthState(
        regular[0] if regular else None,
        seals[0] if seals else None,
        sum(1 for r in runs if r[0] == "supplementary"),
    )


def next_open_month(store: Path, league: str, after: Month) -> Month:
    """The first month after `after` that is neither sealed nor in a closed budget year: where
    a supplement or a clawback is booked (SPEC §10: a closed year's changes go to the next)."""
    return first_open_month(store, league, after.shift(1))


def first_open_month(store: Path, league: str, start: Month) -> Month:
    """The first month from `start` on that is neither sealed nor in a closed budget year."""
    sealed = {
        r["month"] for r in _query(store, "SELECT month FROM seals WHERE league_code = ?", [league])
    }
    closed = [
        (Month.parse(c["start_month"]), Month.parse(c["end_month"]))
        for c in closed_years(store, league)
    ]
    month = start
    while str(month) in sealed or any(a <= month <= b for a, b in closed):
        month = month.shift(1)
    return month


def closed_years(store: Path, league: str | None = None) -> list[dict]:
    """The budget years closed by settle close-year (SPEC §10), oldest first."""
    return _query(
        store,
        "SELECT * FROM year_closes WHERE ? IS NULL OR league_code = ? ORDER BY league_code, year",
        [league, league],
    )


def closed_year_of(store: Path, league: str, month: Month) -> dict | None:
    """The closed budget year holding `month`, if any: its months cannot be settled again."""
    for c in closed_years(store, league):
        if c["start_month"] <= str(month) <= c["end_month"]:
            return c
    return None


#: Current runs that rejected waybills as ALREADY_SETTLED against a run that is no longer
#: current (superseded or voided): their months must be settled again (SPEC §8.5), unless
#: sealed (then the change was forced, and verify notes it).
STALE_SQL = """
SELECT r.league_code, r.month, r.run_id, d.depends_on, d.waybills,
       dep.league_code AS depends_league, dep.month AS depends_month, dep.status AS depends_status,
       s.run_id IS NOT NULL AS sealed
FROM runs r
JOIN run_dependencies d ON d.run_id = r.run_id
JOIN runs dep ON dep.run_id = d.depends_on
LEFT JOIN seals s ON s.league_code = r.league_code AND s.month = r.month
WHERE r.status = 'current' AND dep.status <> 'current'
ORDER BY r.league_code, r.month, d.depends_on
"""


def stale_months(store: Path) -> list[dict]:
    """Every stale run of an unsealed month, with the run it depended on (one row per
    dependency). A sealed month is never stale: it cannot be settled again, so changes that
    would break it are refused unless forced (`months.refuse_breaking_sealed`)."""
    return [s for s in _query(store, STALE_SQL) if not s["sealed"]]


def dependents(store: Path, run_ids: list[str]) -> list[dict]:
    """Current runs that rejected waybills as ALREADY_SETTLED against any of `run_ids`: the
    months a replacement or void of those runs would make stale."""
    if not run_ids:
        return []
    return _query(
        store,
        """
        SELECT r.league_code, r.month, r.run_id, d.depends_on, d.waybills,
               s.run_id IS NOT NULL AS sealed
        FROM runs r
        JOIN run_dependencies d ON d.run_id = r.run_id
        LEFT JOIN seals s ON s.league_code = r.league_code AND s.month = r.month
        WHERE r.status = 'current' AND list_contains(?, d.depends_on)
        ORDER BY r.league_code, r.month
        """,
        [run_ids],
    )


def current_runs(store: Path, league: str, month: Month) -> list[dict]:
    """The current runs of a 盟市-month (regular first, then supplements in order)."""
    return _query(
        store,
        "SELECT * FROM runs WHERE league_code = ? AND month = ? AND status = 'current' "
        "ORDER BY kind = 'supplementary', finished_at",
        [league, str(month)],
    )


def record_seal(store: Path, row: dict, actor: Actor, sha256: str) -> None:
    """Record a seal, its journal entry and the event, in one transaction."""
    with transaction(store) as con:
        con.execute(
            f"INSERT INTO seals ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
            list(row.values()),
        )
        journal.append(
            con, row["entry_id"], "seal", row["league_code"], row["month"], sha256, row["sealed_at"]
        )
        record_event(
            con,
            actor,
            "seal",
            row["league_code"],
            row["month"],
            row["run_id"],
            {
                k: row[k]
                for k in (
                    "reviewed_by",
                    "approved_by",
                    "approval_ref",
                    "notice_start",
                    "notice_end",
                )
            },
        )


def committed_runs(store: Path) -> set[str]:
    """Every journal entry id the store has recorded (runs, voids, seals)."""
    return {r["entry_id"] for r in _query(store, "SELECT entry_id FROM journal")}


def journal_head(store: Path) -> tuple[str | None, str | None]:
    """(entry_id, sha256) of the journal's last entry: what the next entry must name."""
    con = _readonly(store)
    if con is None:
        return (None, None)
    try:
        return journal.head(con)
    finally:
        con.close()


def list_runs(store: Path, league: str | None = None, month: Month | None = None) -> list[dict]:
    """Every run in the store, oldest first, with its seal state."""
    return _query(
        store,
        """
        SELECT r.run_id, r.league_code, r.month, r.kind, r.status, r.supersedes,
               r.superseded_by, r.payable_in_month, r.started_at, r.finished_at, r.ended_at,
               r.run_by, r.rows_in, r.parcels, r.rejects, r.subsidy_fen, r.out_dir,
               s.run_id IS NOT NULL AS sealed, v.reason AS void_reason
        FROM runs r
        LEFT JOIN seals s ON s.league_code = r.league_code AND s.month = r.month
                         AND r.status = 'current'
        LEFT JOIN voids v ON v.run_id = r.run_id
        WHERE (? IS NULL OR r.league_code = ?) AND (? IS NULL OR r.month = ?)
        ORDER BY r.started_at, r.run_id
        """,
        [league, league, month and str(month), month and str(month)],
    )


def year_payments(store: Path, league: str, year_start: Month) -> list[dict]:
    """Per month of the budget year: current runs' parcels and 分 paid, the budget they were
    settled under, and the seal."""
    return _query(
        store,
        """
        SELECT r.month,
               MAX(r.run_id) FILTER (WHERE r.kind = 'regular')          AS run_id,
               CAST(SUM(r.parcels) AS BIGINT)                           AS parcels,
               CAST(SUM(r.subsidy_fen) FILTER (WHERE r.kind = 'regular') AS BIGINT)
                                                                        AS regular_fen,
               CAST(COALESCE(SUM(r.subsidy_fen) FILTER (WHERE r.kind = 'supplementary'), 0)
                    AS BIGINT)                                          AS supplementary_fen,
               CAST(SUM(r.subsidy_fen) AS BIGINT)                       AS paid_fen,
               MAX(r.budget_available_fen) FILTER (WHERE r.kind = 'regular') AS available_fen,
               arg_max(r.annual_budget_fen, r.finished_at)              AS annual_budget_fen,
               arg_max(r.budget_rule, r.finished_at)                    AS budget_rule,
               BOOL_OR(s.run_id IS NOT NULL)                            AS sealed
        FROM runs r
        LEFT JOIN seals s ON s.league_code = r.league_code AND s.month = r.month
        WHERE r.status = 'current' AND r.league_code = ? AND r.month >= ? AND r.month < ?
        GROUP BY r.month ORDER BY r.month
        """,
        [league, str(year_start), str(year_start.shift(12))],
    )


def league_budget(store: Path, league: str) -> dict | None:
    """The 盟市's budget settings recorded in the store by its last run (annual_budget_fen,
    budget_rule, year_start_month, league_name), or None."""
    try:
        rows = _query(store, "SELECT * FROM budgets WHERE league_code = ?", [league])
    except duckdb.CatalogException:  # no run has written the reference tables yet
        return None
    return rows[0] if rows else None


def budget_year(store: Path, league: str, year: int) -> dict:
    """`settle status` and the portal: per month of a budget year its state (已结算, 已封存,
    需重算 or none), parcels, regular and supplementary 分, the year's use so far and the budget
    left — under the budget the runs were settled with, as the store recorded it."""
    recorded = league_budget(store, league)
    if recorded is None:
        raise UsageError(f"结算库 {store} 中没有盟市 {league} 的结算记录")
    start = Month(year, recorded["year_start_month"])
    paid = {r["month"]: r for r in year_payments(store, league, start)}
    latest = paid[max(paid)] if paid else None
    annual = (
        latest["annual_budget_fen"]
        if latest and latest["annual_budget_fen"] is not None
        else recorded["annual_budget_fen"]
    )
    rule = latest["budget_rule"] if latest and latest["budget_rule"] else recorded["budget_rule"]
    stale = {s["month"] for s in stale_months(store) if s["league_code"] == league}
    months, used = [], 0
    for k in range(12):
        month = str(start.shift(k))
        r = paid.get(month)
        if r is None:
            months.append({"month": month, "state": None})
            continue
        used += r["paid_fen"]
        months.append(
            {
                "month": month,
                "state": "需重算" if month in stale else ("已封存" if r["sealed"] else "已结算"),
                "parcels": r["parcels"],
                "regular_fen": r["regular_fen"] or 0,
                "supplementary_fen": r["supplementary_fen"],
                "used_fen": used,
                "left_fen": annual - used,
            }
        )
    return {
        "league_code": league,
        "league_name": recorded["league_name"],
        "start": str(start),
        "end": str(start.shift(11)),
        "annual_fen": annual,
        "rule": rule,
        "months": months,
        "used_fen": used,
        "left_fen": annual - used,
        "stale": sorted(stale & {m["month"] for m in months}),
    }


def list_events(store: Path, limit: int = 500) -> list[dict]:
    """The store's events (who changed what, when, from where), newest first."""
    return _query(store, "SELECT * FROM events ORDER BY seq DESC LIMIT ?", [limit])
