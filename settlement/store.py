"""The store: an embedded DuckDB file holding runs, settled waybills and the auditors' views.

Schema changes are numbered migrations applied in order and recorded in `schema_migrations`.
The settlement itself runs in memory; the store is opened read-only to learn what earlier runs
settled, and written once, at the end, in one transaction that publishes the run.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from .catalog import apply_comments
from .db import bound
from .errors import RefusedError, SettlementError
from .period import Month

MIGRATIONS: tuple[tuple[str, str], ...] = (
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

VIEW_KINDS = ("ledger", "rejects", "units")

#: settled_waybills before any run's ledger is published: the columns, no rows
EMPTY_PAID = (
    "SELECT NULL::VARCHAR AS waybill_no, NULL::VARCHAR AS league_code, NULL::VARCHAR AS month, "
    "NULL::VARCHAR AS run_id, NULL::VARCHAR AS company, NULL::INTEGER AS subsidy_fen WHERE false"
)


def _migrate(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, description VARCHAR, applied_at TIMESTAMP)"
    )
    done = {r[0] for r in con.execute("SELECT version FROM schema_migrations").fetchall()}
    pending = [(v, m) for v, m in enumerate(MIGRATIONS, 1) if v not in done]
    for version, (description, ddl) in pending:
        con.execute("BEGIN")
        con.execute(ddl)
        if version == len(MIGRATIONS):  # the views as the schema now stands
            refresh_views(con)
        con.execute(
            "INSERT INTO schema_migrations VALUES (?, ?, ?)",
            [version, description, dt.datetime.now(dt.UTC).replace(tzinfo=None)],
        )
        con.execute("COMMIT")


def open_store(path: Path) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the store for writing, with every migration applied."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path))
        bound(con)
    except duckdb.IOException as exc:
        raise SettlementError(f"无法打开结算库 {path}：{str(exc).splitlines()[0]}") from None
    _migrate(con)
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
    return True


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
                SELECT s.waybill_no, s.league_code, s.month, s.run_id
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
        con.execute("DETACH store")
        earlier = Earlier(int(paid[0]), int(paid[1]), int(paid[2]) if supplementary else 0)
    else:
        nothing_settled_elsewhere(con)
        earlier = Earlier()
    load_prior(con, [str(p) for p in (month_ledgers or [])] if supplementary else None)
    return earlier


def nothing_settled_elsewhere(con: duckdb.DuckDBPyConnection) -> None:
    """Create an empty `settled_elsewhere`: no waybill of this run was paid before."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE settled_elsewhere (waybill_no VARCHAR, "
        "league_code VARCHAR, month VARCHAR, run_id VARCHAR)"
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
        for path in Path(out_dir, "ledger").glob("league=*/month=*/*.parquet")
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
                f"{Path(out_dir, 'ledger', f'league={code}', f'month={when}')} 中有 {have:,} 件："
                "已结算运单无法核对，请先恢复该目录的明细账文件（settle verify 可列出问题）"
            )


def _glob(out_dir: Path, kind: str) -> str:
    return str((out_dir / kind).resolve() / "*" / "*" / "*.parquet").replace("'", "''")


def refresh_views(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)create the auditors' views over the Parquet outputs of the store's current runs.

    ledger, rejects, units: every Parquet file under the output directories of the current
    runs. settled_waybills: the waybills of the current runs, read from their ledgers (a
    waybill there is ALREADY_SETTLED for any other 盟市-month). A current run whose ledger
    file has gone missing is found by the audits (01: its rows do not reconcile), which stops
    the next run from publishing and `settle verify` from passing.
    """
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    dirs = []
    if "runs" in tables:
        dirs = [
            Path(r[0])
            for r in con.execute(
                "SELECT DISTINCT out_dir FROM runs WHERE status = 'current' ORDER BY out_dir"
            ).fetchall()
        ]
    have_ledger = False
    for kind in VIEW_KINDS:
        globs = [_glob(d, kind) for d in dirs if any((d / kind).glob("*/*/*.parquet"))]
        if not globs:
            continue
        have_ledger |= kind == "ledger"
        files = "[" + ", ".join(f"'{g}'" for g in globs) + "]"
        con.execute(
            f"CREATE OR REPLACE VIEW {kind} AS SELECT * FROM read_parquet({files}, "
            "hive_partitioning = true, hive_types = {'league': VARCHAR, 'month': VARCHAR}, "
            "union_by_name = true)"
        )
    con.execute(
        "CREATE OR REPLACE VIEW settled_waybills AS "
        + (
            "SELECT CAST(l.waybill_no AS VARCHAR) AS waybill_no, r.league_code, r.month, "
            "r.run_id, CAST(l.company AS VARCHAR) AS company, l.subsidy_fen "
            "FROM ledger l JOIN runs r ON r.run_id = l.run_id AND r.league_code = l.league "
            "AND r.month = l.month WHERE r.status = 'current'"
            if have_ledger
            else EMPTY_PAID
        )
    )


def record_run(store: Path, run: dict, reference: dict | None = None) -> str | None:
    """Publish a finished run: supersede the month's previous run, record the new one (its
    waybills are read from its ledger through the settled_waybills view).

    Returns the run_id it superseded, if any. One transaction: all of it or none of it.
    """
    con = open_store(store)
    try:
        con.execute("BEGIN")
        previous = con.execute(
            "SELECT run_id FROM runs WHERE league_code = ? AND month = ? AND status = 'current' "
            "AND kind = 'regular' AND ? = 'regular'",
            [run["league_code"], run["month"], run["kind"]],
        ).fetchall()
        previous_id = previous[0][0] if previous else None
        if previous_id:
            con.execute(
                "UPDATE runs SET status = 'superseded', superseded_by = ? WHERE run_id = ?",
                [run["run_id"], previous_id],
            )
        columns = list(run) + ["status", "supersedes"]
        con.execute(
            f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
            [*run.values(), "current", previous_id],
        )
        refresh_views(con)
        for name, table in (reference or {}).items():
            con.register(f"_ref_{name}", table)
            con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM _ref_{name}")
            con.unregister(f"_ref_{name}")
        apply_comments(con)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.close()
    return previous_id


# --------------------------------------------------------------------------- month state


@dataclass(frozen=True)
class MonthState:
    run_id: str | None  # the current regular run
    seal: dict | None  # the seals row, when sealed
    supplements: int  # supplementary runs so far


def _readonly(store: Path) -> duckdb.DuckDBPyConnection | None:
    if not store.exists():
        return None
    try:
        return duckdb.connect(str(store), read_only=True)
    except duckdb.Error as exc:
        raise SettlementError(f"无法读取结算库 {store}：{str(exc).splitlines()[0]}") from None


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
    """The first month after `after` that is not sealed: where a supplement is paid."""
    sealed = {
        r["month"] for r in _query(store, "SELECT month FROM seals WHERE league_code = ?", [league])
    }
    month = after.shift(1)
    while str(month) in sealed:
        month = month.shift(1)
    return month


def seal_month(store: Path, league: str, month: Month, approval: dict) -> dict:
    """Seal a settled 盟市-month after review, public notice and approval (审核、公示、审批)."""
    state = month_state(store, league, month)
    if state.seal is not None:
        raise RefusedError(
            f"盟市 {league} {month} 已于 {state.seal['sealed_at']:%Y-%m-%d %H:%M} 封存"
            f"（审批文号 {state.seal['approval_ref']}），无需再次封存"
        )
    if state.run_id is None:
        raise RefusedError(f"盟市 {league} {month} 尚未结算，不能封存")
    if approval["notice_end"] < approval["notice_start"]:
        raise RefusedError("公示结束日期早于开始日期")
    if approval["notice_start"] < month.end:
        raise RefusedError(
            f"公示开始日期 {approval['notice_start']} 早于结算月份结束（{month.end}）"
        )
    con = open_store(store)
    try:
        row = {
            "league_code": league,
            "month": str(month),
            "run_id": state.run_id,
            **approval,
            "sealed_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
        }
        con.execute(
            f"INSERT INTO seals ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
            list(row.values()),
        )
    finally:
        con.close()
    return row


def committed_runs(store: Path) -> set[str]:
    """Every run id the store has recorded."""
    return {r["run_id"] for r in _query(store, "SELECT run_id FROM runs")}


def last_run(store: Path) -> tuple[str | None, str | None]:
    """(run_id, manifest_sha256) of the last run recorded: the head of the journal's hash chain."""
    rows = _query(
        store,
        "SELECT run_id, manifest_sha256 FROM runs ORDER BY finished_at DESC, run_id DESC LIMIT 1",
    )
    return (rows[0]["run_id"], rows[0]["manifest_sha256"]) if rows else (None, None)


def list_runs(store: Path, league: str | None = None, month: Month | None = None) -> list[dict]:
    """Every run in the store, oldest first, with its seal state."""
    return _query(
        store,
        """
        SELECT r.run_id, r.league_code, r.month, r.kind, r.status, r.supersedes,
               r.superseded_by, r.payable_in_month, r.started_at, r.finished_at,
               r.rows_in, r.parcels, r.rejects, r.subsidy_fen, r.out_dir,
               s.run_id IS NOT NULL AS sealed
        FROM runs r
        LEFT JOIN seals s ON s.league_code = r.league_code AND s.month = r.month
        WHERE (? IS NULL OR r.league_code = ?) AND (? IS NULL OR r.month = ?)
        ORDER BY r.started_at, r.run_id
        """,
        [league, league, month and str(month), month and str(month)],
    )


def year_payments(store: Path, league: str, year_start: Month) -> list[dict]:
    """Per month of the budget year: current runs' parcels and 分 paid, and the seal."""
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
               BOOL_OR(s.run_id IS NOT NULL)                            AS sealed
        FROM runs r
        LEFT JOIN seals s ON s.league_code = r.league_code AND s.month = r.month
        WHERE r.status = 'current' AND r.league_code = ? AND r.month >= ? AND r.month < ?
        GROUP BY r.month ORDER BY r.month
        """,
        [league, str(year_start), str(year_start.shift(12))],
    )
