"""The store: an embedded DuckDB file holding runs, settled waybills and the auditors' views.

Schema changes are numbered migrations applied in order and recorded in `schema_migrations`.
The settlement itself runs in memory; the store is opened read-only to learn what earlier runs
settled, and written once, at the end, in one transaction that publishes the run.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from .errors import SettlementError
from .period import Month

MIGRATIONS: tuple[tuple[str, str], ...] = (
    (
        "runs and settled waybills",
        """
        CREATE TABLE runs (
            run_id               VARCHAR PRIMARY KEY,
            league_code          VARCHAR NOT NULL,
            month                VARCHAR NOT NULL,
            status               VARCHAR NOT NULL,   -- current | superseded
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
        """,
    ),
)

VIEW_KINDS = ("ledger", "rejects", "units")


def _migrate(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, description VARCHAR, applied_at TIMESTAMP)"
    )
    done = {r[0] for r in con.execute("SELECT version FROM schema_migrations").fetchall()}
    for version, (description, ddl) in enumerate(MIGRATIONS, 1):
        if version in done:
            continue
        con.execute("BEGIN")
        con.execute(ddl)
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
    tables = {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'store'"
        ).fetchall()
    }
    if "settled_waybills" not in tables:
        con.execute("DETACH store")
        return False
    return True


def load_earlier(
    con: duckdb.DuckDBPyConnection, store: Path | None, league: str, month: Month, year_start: Month
) -> int:
    """Create `settled_elsewhere` from the store and return what earlier months paid (分).

    settled_elsewhere: this run's waybills already settled by the current run of any other
    盟市-month. The return value: what the current runs of this 盟市's earlier months of the
    budget year paid. Both are empty/0 when there is no store yet.
    """
    if attach_readonly(con, store):
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE settled_elsewhere AS
            SELECT s.waybill_no, s.league_code, s.month, s.run_id
            FROM store.settled_waybills s
            WHERE NOT (s.league_code = ? AND s.month = ?)
              AND s.waybill_no IN (SELECT waybill_no FROM raw_logs)
            """,
            [league, str(month)],
        )
        paid = con.execute(
            """
            SELECT COALESCE(SUM(subsidy_fen), 0) FROM store.runs
            WHERE status = 'current' AND league_code = ? AND month >= ? AND month < ?
            """,
            [league, str(year_start), str(month)],
        ).fetchall()[0][0]
        con.execute("DETACH store")
    else:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE settled_elsewhere (waybill_no VARCHAR, "
            "league_code VARCHAR, month VARCHAR, run_id VARCHAR)"
        )
        paid = 0
    return int(paid)


def _glob(out_dir: Path, kind: str) -> str:
    return str((out_dir / kind).resolve() / "*" / "*" / "*.parquet").replace("'", "''")


def refresh_views(con: duckdb.DuckDBPyConnection, out_dir: Path) -> None:
    """(Re)create the auditors' views over the Parquet outputs under out_dir."""
    for kind in VIEW_KINDS:
        con.execute(
            f"CREATE OR REPLACE VIEW {kind} AS SELECT * FROM read_parquet('{_glob(out_dir, kind)}', "
            "hive_partitioning = true, hive_types = {'league': VARCHAR, 'month': VARCHAR}, "
            "union_by_name = true)"
        )


def record_run(store: Path, run: dict, ledger_file: Path, out_dir: Path) -> str | None:
    """Publish a finished run: supersede the month's previous run, record its waybills.

    Returns the run_id it superseded, if any. One transaction: all of it or none of it.
    """
    con = open_store(store)
    try:
        con.execute("BEGIN")
        previous = con.execute(
            "SELECT run_id FROM runs WHERE league_code = ? AND month = ? AND status = 'current'",
            [run["league_code"], run["month"]],
        ).fetchall()
        previous_id = previous[0][0] if previous else None
        if previous_id:
            con.execute(
                "UPDATE runs SET status = 'superseded', superseded_by = ? WHERE run_id = ?",
                [run["run_id"], previous_id],
            )
            con.execute("DELETE FROM settled_waybills WHERE run_id = ?", [previous_id])
        columns = list(run) + ["status", "supersedes"]
        con.execute(
            f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
            [*run.values(), "current", previous_id],
        )
        con.execute(
            "INSERT INTO settled_waybills SELECT waybill_no, ?, ?, run_id, company, subsidy_fen "
            "FROM read_parquet(?)",
            [run["league_code"], run["month"], str(ledger_file)],
        )
        refresh_views(con, out_dir)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.close()
    return previous_id
