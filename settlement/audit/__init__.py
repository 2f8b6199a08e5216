"""Auditors' tools: sandboxed read-only SQL, canned queries, audits, verify and explain.

The auditor's connection is read-only, may read files only under the store's output
directories, cannot change its own configuration, and accepts exactly one SELECT or EXPLAIN.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

import duckdb
import polars as pl

from .. import SQL_DIR, journal, shipped
from ..db import bound, scratch_connection
from ..errors import RefusedError, SettlementError, UsageError
from ..outputs import PART_FILE, manifest_path, sha256_file
from ..period import Month
from ..screen import table
from ..store import (
    EMPTY_PAID,
    STALE_SQL,
    STATEMENTS_SHA_SQL,
    connect_file,
    refresh_views,
    resolve_out,
    search_path,
    store_root,
    upgrade,
)

QUERIES_DIR = SQL_DIR / "queries"
AUDITS_DIR = SQL_DIR / "audits"
ALLOWED = {"SELECT", "EXPLAIN"}
REFUSAL = {
    "INSERT": "写入数据（INSERT）",
    "UPDATE": "修改数据（UPDATE）",
    "DELETE": "删除数据（DELETE）",
    "CREATE": "创建对象（CREATE）",
    "DROP": "删除对象（DROP）",
    "ALTER": "修改结构（ALTER）",
    "COPY": "导出或导入文件（COPY）",
    "ATTACH": "挂载其他数据库（ATTACH）",
    "DETACH": "卸载数据库（DETACH）",
    "LOAD": "安装或加载扩展（INSTALL/LOAD）",
    "SET": "修改设置（SET/RESET/USE）",
    "PRAGMA": "执行 PRAGMA 指令",
    "EXPORT": "导出数据库（EXPORT）",
    "CALL": "调用过程（CALL/CHECKPOINT）",
    "TRANSACTION": "事务控制",
    "VACUUM": "VACUUM",
    "PREPARE": "预编译语句",
    "EXECUTE": "执行预编译语句",
    "MULTI": "多语句（如 PIVOT 语句）",
}


# --------------------------------------------------------------------------- read-only SQL


def check_query(sql: str) -> None:
    """Refuse anything but exactly one SELECT or EXPLAIN statement."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise RefusedError(f"SQL 语法错误：{str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise RefusedError(f"只能执行一条查询语句，收到 {len(statements)} 条")
    kind = statements[0].type.name
    if kind not in ALLOWED:
        what = REFUSAL.get(kind, kind)
        raise RefusedError(f"只读查询不允许{what}；审计查询只能是 SELECT 或 EXPLAIN")


#: The output folders an auditor's query may read files from (the views read the first three).
READABLE_FOLDERS = (
    "ledger",
    "rejects",
    "units",
    "manifests",
    "journal",
    "statements",
    "reconciliation",
    "payments",
    "annual",
    "voided",
)


def open_readonly(store: Path) -> duckdb.DuckDBPyConnection:
    """The auditor's sandbox: read-only store, files readable only in its output folders,
    relative paths resolved against the store's own directory (wherever it now is)."""
    upgrade(store)
    config = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    con = connect_file(store, True, "无法以只读方式打开结算库", config)
    bound(con)
    # the published outputs only: not the output folder itself, which also holds the portal's
    # accounts (<store>.portal.sqlite: password hashes, sessions) and every company's raw
    # uploads (submissions/)
    roots = {store_root(store)} | {
        resolve_out(store, r[0])
        for r in con.execute("SELECT DISTINCT out_dir FROM runs").fetchall()
    }
    dirs = {f"{root / folder}/" for root in roots for folder in READABLE_FOLDERS}
    refresh_views(con, store, temp=True)
    con.execute("SET allowed_directories = ?", [sorted(dirs)])
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


@dataclass
class QueryResult:
    frame: pl.DataFrame


def run_readonly(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    params: dict | None = None,
    max_rows: int = 100_000,
    timeout: float = 60.0,
) -> pl.DataFrame:
    """Run one checked query with a time and a row limit; the result as a DataFrame (through
    Arrow, so that every DuckDB type — maps, lists, decimals — arrives as itself)."""
    import pyarrow as pa

    check_query(sql)
    timer = threading.Timer(timeout, con.interrupt)
    timer.start()
    batches, count, reader = [], 0, None
    try:
        relation = con.sql(sql, params=params) if params else con.sql(sql)
        reader = relation.to_arrow_reader(10_000)
        for batch in reader:
            batches.append(batch)
            count += batch.num_rows
            if count > max_rows:
                break
        schema = reader.schema
    except duckdb.InterruptException:
        raise SettlementError(
            f"查询超过 {timeout:g} 秒的时间限制，已中止（可用 --timeout 放宽）"
        ) from None
    except duckdb.Error as exc:
        if not timer.is_alive():
            raise SettlementError(
                f"查询超过 {timeout:g} 秒的时间限制，已中止（可用 --timeout 放宽）"
            ) from None
        raise RefusedError(f"查询失败：{str(exc).splitlines()[0]}") from None
    finally:
        timer.cancel()
        if reader is not None:  # an undrained result would keep the store open
            reader.close()
    if count > max_rows:
        raise SettlementError(
            f"查询结果超过 {max_rows:,} 行的行数限制，未输出；请加 LIMIT、汇总，或用 --max-rows 放宽"
        )
    unique: list[str] = []
    for c in schema.names:
        name = c
        while name in unique:
            name += "_"
        unique.append(name)
    table = pa.Table.from_batches(batches, schema).rename_columns(unique)
    frame = pl.from_arrow(table)
    # SUM over BIGINT is a HUGEINT, which Arrow carries as decimal(38, 0): whole 分 stay
    # integers wherever they fit
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Decimal) and dtype.scale == 0:
            with contextlib.suppress(pl.exceptions.InvalidOperationError):
                frame = frame.with_columns(pl.col(name).cast(pl.Int64, strict=True))
    return frame


def write_result(frame: pl.DataFrame, fmt: str, output: Path | None) -> str | None:
    """Format a result: table/csv/json to a string (or file), parquet to a file."""
    if fmt == "parquet":
        if output is None:
            raise UsageError("--format parquet 需要 --output 文件")
        frame.write_parquet(output)
        return None
    if fmt == "csv":
        text = frame.write_csv()
    elif fmt == "json":
        text = json.dumps(frame.to_dicts(), ensure_ascii=False, default=str, indent=1) + "\n"
    else:
        text = _table(frame)
    if output is not None:
        output.write_text(text, encoding="utf-8")
        return None
    return text


def _table(frame: pl.DataFrame) -> str:
    """The result as people read it: headers, aligned columns (numbers to the right), NULL
    shown as NULL, and the row count."""
    rows = [["NULL" if v is None else str(v) for v in row] for row in frame.iter_rows()]
    numeric = [dtype.is_numeric() for dtype in frame.dtypes]
    return table(frame.columns, rows, numeric) + f"（共 {frame.height:,} 行）\n"


# --------------------------------------------------------------------------- canned queries


@dataclass
class Query:
    name: str
    question: str
    params: dict[str, str]  # name -> what it is, for people
    columns: str
    sql: str
    kinds: dict[str, str] = field(default_factory=dict)  # name -> a PARAM_KINDS key


def _league_code(value: str) -> str:
    if not (len(value) == 6 and value.isdigit()):
        raise ValueError
    return value


def _month_text(value: str) -> str:
    try:
        return str(Month.parse(value))
    except UsageError:
        raise ValueError from None


def _year(value: str) -> str:
    if not (len(value) == 4 and value.isdigit() and 2000 <= int(value) <= 2100):
        raise ValueError
    return value


def _positive_number(value: str) -> str:
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError from None
    if not number.is_finite() or number <= 0:
        raise ValueError
    return value


#: kind of a canned query's parameter (its `-- params:` header: `name (kind) description`)
#: -> (the form expected, shown to people; the check, giving the value to bind)
PARAM_KINDS = {
    "league": ("6位盟市代码，如 150700", _league_code),
    "month": ("月份 YYYY-MM，如 2025-03", _month_text),
    "year": ("4位年份，如 2025", _year),
    "number": ("正数，如 3 或 1.5", _positive_number),
}


def _header(text: str) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    key = None
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        body = line[2:].strip()
        m = re.match(r"(\w+):\s*(.*)", body)
        if m and m.group(1) in (
            "question",
            "params",
            "columns",
            "note",
            "inputs",
            "scope",
            "returns",
        ):
            key = m.group(1)
            fields.setdefault(key, []).append(m.group(2))
        elif key:
            fields[key].append(body)
    return fields


def load_queries() -> dict[str, Query]:
    """Every sql/queries/*.sql with its header."""
    out = {}
    for path in sorted(shipped(QUERIES_DIR).glob("*.sql")):
        text = path.read_text(encoding="utf-8")
        h = _header(text)
        params, kinds = {}, {}
        for line in h.get("params", []):
            m = re.fullmatch(r"(\w+)\s+\((\w+)\)\s+(.*)", line)
            if not m or m.group(2) not in PARAM_KINDS:
                raise SettlementError(
                    f"预置查询 {path} 的参数说明“{line}”应为“名称 (类型) 说明”，"
                    f"类型为 {', '.join(PARAM_KINDS)} 之一"
                )
            params[m.group(1)], kinds[m.group(1)] = m.group(3), m.group(2)
        out[path.stem] = Query(
            path.stem,
            " ".join(h.get("question", [])),
            params,
            " ".join(h.get("columns", [])),
            text,
            kinds,
        )
    if not out:
        raise SettlementError(f"{QUERIES_DIR} 中没有预置查询：安装不完整，请重新安装")
    return out


def bind_params(query: Query, given: dict[str, str]) -> dict[str, str]:
    """Check the --param values against the query's declared parameters and their kinds; the
    values to bind (a month as YYYY-MM)."""
    unknown = sorted(set(given) - set(query.params))
    if unknown:
        raise UsageError(
            f"查询 {query.name} 没有参数 {unknown[0]}；参数：{', '.join(query.params)}"
        )
    missing = [p for p in query.params if p not in given]
    if missing:
        raise UsageError(f"查询 {query.name} 缺少参数 {missing[0]}（{query.params[missing[0]]}）")
    bound = {}
    for name, value in given.items():
        form, check = PARAM_KINDS[query.kinds[name]]
        try:
            bound[name] = check(value.strip())
        except ValueError:
            raise UsageError(
                f"查询 {query.name} 的参数 {name} 的值“{value}”无效，应为{form}"
            ) from None
    return bound


# --------------------------------------------------------------------------- audits


@dataclass
class AuditFinding:
    name: str
    question: str
    rows: pl.DataFrame


def load_audits() -> list[tuple[str, str, str]]:
    """(name, question, sql) of every sql/audits/*.sql, in order."""
    out = []
    for path in sorted(shipped(AUDITS_DIR).glob("*.sql")):
        text = path.read_text(encoding="utf-8")
        question = " ".join(_header(text).get("question", [path.stem]))
        out.append((path.stem, question, text))
    return out


def audit_scope(sql: str) -> str:
    """An audit's `-- scope:` header: 'run' (it checks each run's own rows, so before publishing
    only the new run's need checking) or 'store' (it needs every current run)."""
    return " ".join(_header(sql).get("scope", ["store"])).split()[0]


def run_audits(con: duckdb.DuckDBPyConnection, scope: str | None = None) -> list[AuditFinding]:
    """Run every audit (or those of one scope); return those that found rows breaking their
    rule."""
    findings = []
    for name, question, sql in load_audits():
        if scope is not None and audit_scope(sql) != scope:
            continue
        frame = con.sql(sql).pl()
        if frame.height:
            findings.append(AuditFinding(name, question, frame))
    return findings


def _literal(text: str) -> str:
    """A SQL string literal (views cannot take parameters)."""
    return "'" + str(text).replace("'", "''") + "'"


def staged_audit_connection(
    store: Path,
    cfg_reference: dict,
    staging: Path,
    out_dir: Path,
    run: dict,
    replaces: bool,
    scope: str = "store",
) -> duckdb.DuckDBPyConnection:
    """A connection where the audits see the store as it will be once this run is published.

    scope 'store': the published Parquet (less the partition a regular run replaces) plus the
    staged files, and the store's current runs plus this one. scope 'run' (for the audits that
    check each run's own rows): only this run's staged files and this run, but its waybills
    among every current run's paid waybills, so that a run costs the same in December as in
    January (earlier runs were audited when they were published; `settle verify` audits all).
    """
    league, month = run["league_code"], run["month"]
    only_run = scope == "run"
    con = scratch_connection()
    for kind in ("ledger", "rejects", "units"):
        published = [] if only_run else sorted((out_dir / kind).glob("*/*/*.parquet"))
        files = [
            os.path.abspath(p)
            for p in published
            if not (
                replaces
                and p.parent.name == f"month={month}"
                and p.parent.parent.name == f"league={league}"
            )
        ]
        files += [os.path.abspath(p) for p in sorted((staging / kind).glob("*/*/*.parquet"))]
        con.execute(
            f"CREATE VIEW {kind} AS SELECT * FROM read_parquet(?, hive_partitioning = true, "
            "hive_types = {'league': VARCHAR, 'month': VARCHAR}, union_by_name = true)".replace(
                "?", "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
            )
        )
    con.execute(
        "CREATE TABLE runs (run_id VARCHAR, league_code VARCHAR, month VARCHAR, "
        "kind VARCHAR, status VARCHAR, rows_in BIGINT, parcels BIGINT, "
        "gross_fen BIGINT, subsidy_fen BIGINT, finished_at TIMESTAMP)"
    )
    earlier = EMPTY_PAID
    if store.exists():
        con.execute("ATTACH ? AS store (READ_ONLY)", [str(store)])
        search_path(con, store)
        # a regular run replaces the month's current regular run: the audits must not see both
        con.execute(
            "CREATE TEMP TABLE _earlier_runs AS SELECT run_id FROM store.runs "
            "WHERE status = 'current' AND NOT (? AND league_code = ? AND month = ? "
            "AND kind = 'regular')",
            [replaces, league, month],
        )
        if not only_run:
            con.execute(
                "INSERT INTO runs SELECT r.run_id, r.league_code, r.month, r.kind, r.status, "
                "r.rows_in, r.parcels, r.gross_fen, r.subsidy_fen, r.finished_at "
                "FROM store.runs r JOIN _earlier_runs USING (run_id)"
            )
        earlier = (
            "SELECT s.* FROM store.settled_waybills s "
            "WHERE s.run_id IN (SELECT run_id FROM _earlier_runs)"
        )
    con.execute(
        "INSERT INTO runs BY NAME SELECT ? AS run_id, ? AS league_code, ? AS month, ? AS kind, "
        "'current' AS status, ? AS rows_in, ? AS parcels, ? AS gross_fen, ? AS subsidy_fen",
        [
            run["run_id"],
            league,
            month,
            run["kind"],
            run["rows_in"],
            run["parcels"],
            run["gross_fen"],
            run["subsidy_fen"],
        ],
    )
    # the store's paid waybills as they will be: a view, not a copy (millions of rows)
    con.execute(
        f"CREATE VIEW settled_waybills AS {earlier} UNION ALL "
        f"SELECT waybill_no, {_literal(league)} AS league_code, {_literal(month)} AS month, "
        f"run_id, company, subsidy_fen FROM ledger WHERE run_id = {_literal(run['run_id'])}"
    )
    con.register("_budgets", cfg_reference["budgets"])
    con.execute("CREATE TABLE budgets AS SELECT * FROM _budgets")
    return con


# --------------------------------------------------------------------------- verify


@dataclass
class Problem:
    file: str
    rule: str
    detail: str


@dataclass
class VerifyReport:
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    runs: int = 0
    files: int = 0


def verify(
    out_dir: Path, store: Path | None = None, league: str | None = None, month: str | None = None
) -> VerifyReport:
    """Re-hash every file against its manifest, re-run the audits, check totals, the journal's
    hash chain, and that no month is stale."""
    store = store if store is not None else out_dir / "settlement.duckdb"
    report = VerifyReport()
    con = open_readonly(store)
    try:
        recorded = con.execute("SELECT DISTINCT out_dir FROM runs ORDER BY 1").fetchall()
        if recorded:  # the outputs are where the store says, relative to itself
            out_dir = resolve_out(store, recorded[0][0])
        entries = con.sql("SELECT * FROM journal ORDER BY seq").pl().to_dicts()
        _verify_journal(out_dir, entries, report)
        runs = con.sql("SELECT * FROM runs ORDER BY finished_at, run_id").pl().to_dicts()
        for run in runs:
            if run["status"] != "current":
                continue
            if (league and run["league_code"] != league) or (month and run["month"] != month):
                continue
            report.runs += 1
            recorded = con.execute(
                STATEMENTS_SHA_SQL, [run["league_code"], run["month"]]
            ).fetchall()
            _verify_run(out_dir, run, report, recorded[0][0] if recorded else None)
        for finding in run_audits(con):
            report.problems.append(
                Problem(
                    f"sql/audits/{finding.name}.sql",
                    finding.question,
                    f"{finding.rows.height} 行违反规则，例如：{finding.rows.head(3).to_dicts()}",
                )
            )
        from ..payout.checks import verify_payouts

        report.files += verify_payouts(
            con,
            out_dir,
            lambda file, rule, detail: report.problems.append(Problem(file, rule, detail)),
            league,
        )
        for s in con.sql(STALE_SQL).pl().to_dicts():
            if (league and s["league_code"] != league) or (month and s["month"] != month):
                continue
            if s["sealed"]:
                report.notes.append(
                    f"已封存的 {s['league_code']} {s['month']} 以批次 {s['depends_on']}"
                    f"（{STATUS_TEXT[s['depends_status']]}）已结算为由剔除了 {s['waybills']:,} 个"
                    "运单（该批次是用 --force 更改的）；这些运单如未在其他月份结算，请补充结算"
                )
                continue
            report.problems.append(
                Problem(
                    f"盟市 {s['league_code']} {s['month']}",
                    "需重算（SPEC §8.5）",
                    f"批次 {s['run_id']} 以批次 {s['depends_on']}（{s['depends_league']} "
                    f"{s['depends_month']}，{STATUS_TEXT[s['depends_status']]}）已结算为由剔除了 "
                    f"{s['waybills']:,} 个运单，这些运单现在可能无处结算；请重新结算该月",
                )
            )
    finally:
        con.close()
    return report


STATUS_TEXT = {"current": "有效", "superseded": "已被取代", "voided": "已作废"}


def _verify_journal(out_dir: Path, entries: list[dict], report: VerifyReport) -> None:
    """Walk the hash chain: every entry (run, void, seal) is intact and names its predecessor."""
    previous = None
    for item in entries:
        entry = out_dir / journal.entry_rel(item["entry_id"])
        if not entry.exists():
            report.problems.append(
                Problem(str(entry), "运行日志链", f"日志条目 {item['entry_id']} 的文件缺失")
            )
            previous = item
            continue
        report.files += 1
        if sha256_file(entry) != item["sha256"]:
            report.problems.append(
                Problem(
                    str(entry), "运行日志链", "日志文件的 SHA-256 与结算库记录不符（文件被修改）"
                )
            )
        payload = json.loads(entry.read_text(encoding="utf-8"))
        expected = (previous or {}).get("entry_id")
        if payload.get(journal.PREVIOUS_ID) != expected:
            report.problems.append(
                Problem(
                    str(entry),
                    "运行日志链",
                    f"上一条目应为 {expected}，日志记载为 {payload.get(journal.PREVIOUS_ID)}"
                    "（有条目被删除或篡改）",
                )
            )
        elif previous and payload.get(journal.PREVIOUS_SHA) != previous["sha256"]:
            report.problems.append(Problem(str(entry), "运行日志链", "上一条目的 SHA-256 不符"))
        previous = item


def _verify_run(
    out_dir: Path, run: dict, report: VerifyReport, statements_sha: str | None = None
) -> None:
    entry = out_dir / journal.entry_rel(run["run_id"])
    if not entry.exists():
        return
    manifest = json.loads(entry.read_text(encoding="utf-8"))
    league, month = run["league_code"], run["month"]
    current = manifest_path(out_dir, league, month, manifest.get("part", PART_FILE))
    if not current.exists():
        report.problems.append(Problem(str(current), "清单", "清单文件缺失"))
    elif sha256_file(current) != run["manifest_sha256"]:
        report.problems.append(Problem(str(current), "清单", "清单的 SHA-256 与结算库记录不符"))
    for output in manifest["outputs"]:
        path = out_dir / output["path"]
        report.files += 1
        if not path.exists():
            report.problems.append(Problem(str(path), "输出文件", "文件缺失"))
        elif sha256_file(path) != output["sha256"]:
            report.problems.append(
                Problem(str(path), "输出文件", "SHA-256 与清单不符（文件被修改）")
            )
    for item in manifest["inputs"]:
        # recorded as given and resolved to an absolute path at run time (SPEC §8.2)
        path = Path(item.get("resolved") or item["path"])
        if not path.exists():
            report.notes.append(f"输入文件 {item['path']}（{path}）已不在原处，未重新校验")
        elif sha256_file(path) != item["sha256"]:
            report.problems.append(
                Problem(str(path), "输入文件", "SHA-256 与清单不符（输入文件已改变）")
            )
        else:
            report.files += 1
    _verify_totals(out_dir, run, manifest, report, statements_sha)


def _verify_totals(
    out_dir: Path, run: dict, manifest: dict, report: VerifyReport, statements_sha: str | None
) -> None:
    """Ledger, units, manifest, store and statements agree to the 分 (SPEC §7.5)."""
    part = manifest.get("part", PART_FILE)
    league, month = run["league_code"], run["month"]
    paths = {
        k: out_dir / k / f"league={league}" / f"month={month}" / part for k in ("ledger", "units")
    }
    if not all(p.exists() for p in paths.values()):
        return
    con = scratch_connection()
    try:
        ledger_fen, parcels = con.execute(
            "SELECT COALESCE(SUM(subsidy_fen), 0), COUNT(*) FROM read_parquet(?)",
            [str(paths["ledger"])],
        ).fetchall()[0]
        units_fen = con.execute(
            "SELECT COALESCE(SUM(subsidy_fen), 0) FROM read_parquet(?)", [str(paths["units"])]
        ).fetchall()[0][0]
        by_company = dict(
            con.execute(
                "SELECT company, SUM(subsidy_fen) FROM read_parquet(?) GROUP BY company",
                [str(paths["ledger"])],
            ).fetchall()
        )
    finally:
        con.close()
    where = str(paths["ledger"])
    if ledger_fen != manifest["totals"]["subsidy_fen"] or ledger_fen != run["subsidy_fen"]:
        report.problems.append(Problem(where, "合计一致", "明细账补贴合计与清单或结算库不符"))
    if units_fen != ledger_fen:
        report.problems.append(Problem(str(paths["units"]), "合计一致", "结算单元合计与明细账不符"))
    if parcels != manifest["counts"]["parcels"]:
        report.problems.append(Problem(where, "合计一致", "明细账件数与清单不符"))
    if part != PART_FILE:
        return
    folder = out_dir / "statements" / f"league={league}" / f"month={month}"
    smanifest = folder / "statements.json"
    if not smanifest.exists():
        report.notes.append(f"{folder} 没有结算单（可用 settle statement 生成）")
        return
    data = json.loads(smanifest.read_text(encoding="utf-8"))
    if data.get("run_id") != run["run_id"]:
        report.problems.append(Problem(str(smanifest), "结算单", "结算单不是由当前批次生成的"))
    # statements.json holds every statement's SHA-256; the store holds statements.json's,
    # recorded whenever the statements were rendered (run, seal, settle statement …)
    if statements_sha is None:
        report.notes.append(
            f"结算库没有记录 {smanifest} 的 SHA-256（由较早的版本生成）；重新生成结算单后即可核对"
        )
    elif sha256_file(smanifest) != statements_sha:
        report.problems.append(
            Problem(
                str(smanifest),
                "结算单",
                "SHA-256 与结算库最后一次记录的不符：结算单或其清单在生成后被改动"
                "（如需重新生成，请用 settle statement）",
            )
        )
    for extra in sorted(
        {p.name for p in folder.iterdir()} - set(data["files"]) - {"statements.json"}
    ):
        report.problems.append(
            Problem(str(folder / extra), "结算单", "结算单目录中有 statements.json 未列出的文件")
        )
    for name, entry in data["files"].items():
        path = folder / name
        report.files += 1
        if not path.exists():
            report.problems.append(Problem(str(path), "结算单", "文件缺失"))
            continue
        if sha256_file(path) != entry["sha256"]:
            report.problems.append(Problem(str(path), "结算单", "SHA-256 与 statements.json 不符"))
        expected = ledger_fen if entry["company"] is None else by_company.get(entry["company"], 0)
        if entry["subsidy_fen"] != expected:
            report.problems.append(
                Problem(
                    str(path),
                    "结算单合计（SPEC §7.5）",
                    f"结算单合计 {entry['subsidy_fen']} 分，明细账 {expected} 分",
                )
            )
