"""One 盟市-month from raw logs to published outputs; and the courier companies' pre-check."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from . import __version__, clock, journal
from .audit import run_audits, staged_audit_connection
from .catalog import reference_tables
from .clock import now_naive_utc, now_utc
from .config import Config
from .db import connect
from .errors import RefusedError, ReplaceRefused, SettlementError
from .events import Actor
from .ingest import InputFile, LogStream
from .lock import store_lock
from .money import format_yuan
from .months import refuse_breaking_sealed
from .outputs import (
    KINDS,
    PART_FILE,
    crash_point,
    discard,
    manifest_path,
    partition,
    publish,
    recover,
    sha256_file,
    stage_text,
    supplement_file,
    write_staged,
)
from .period import Month
from .rules import (
    PIPELINE,
    READ,
    VALIDATION,
    load_config,
    load_store,
    read_rows,
    run_sql,
)
from .statements import details_written, render, rerender, statements_sha
from .store import (
    check_out_dir,
    closed_year_of,
    committed_runs,
    journal_head,
    month_state,
    next_open_month,
    record_run,
    relative_out,
    require_store,
)

Progress = Callable[[str], None] | None


@dataclass
class RunResult:
    run_id: str
    league_code: str
    month: str
    manifest: dict
    manifest_path: Path
    superseded: str | None
    payouts: list[dict] = field(default_factory=list)  # by company and county
    changes: list[dict] = field(default_factory=list)  # replacing: per company, old and new
    stale: list[dict] = field(default_factory=list)  # months now stale (SPEC §8.5)
    new_store: Path | None = None  # the store, when this run created it


def new_run_id(league: str, month: Month) -> str:
    """A unique, sortable, path-safe run id: 150700-2025-03-20261126T213000Z-3fa2c1."""
    stamp = now_utc().strftime("%Y%m%dT%H%M%SZ")
    return f"{league}-{month}-{stamp}-{secrets.token_hex(3)}"


def _combined_sha(hashes: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(hashes).encode()).hexdigest()


def _rows(con, sql: str, params: list | None = None) -> list[dict]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _per_file(con, inputs: list[InputFile]) -> list[dict]:
    counts = {r["source_file"]: r for r in _rows(con, "SELECT * FROM file_counts")}
    out = []
    for f in inputs:
        c = counts.get(f.path, {"accepted": 0, "rejected": 0})
        out.append(
            {
                "path": f.path,
                "resolved": os.path.abspath(f.path),
                "format": f.format,
                "encoding": f.encoding,
                "sha256": f.sha256,
                "size_bytes": f.size_bytes,
                "rows": f.rows,
                "header_line": f.header_line,
                **({"sheet": f.sheet} if f.sheet is not None else {}),
                "accepted": c["accepted"],
                "rejected": c["rejected"],
            }
        )
    return out


def prepare(
    cfg: Config,
    league: str,
    month: Month,
    stream: LogStream,
    run_id: str,
    progress: Progress = None,
    memory_limit: str | None = None,
    temp_dir: Path | None = None,
) -> duckdb.DuckDBPyConnection:
    """A connection holding configuration and every input row, validated as far as a row can
    be on its own (`rows`): the one pass over the input, before the store is looked at."""
    con = connect(memory_limit, temp_dir)
    try:
        load_config(con, cfg, league, month, run_id, stream.names, stream.header_lines)
        read_rows(con, stream, progress)
    except BaseException:
        con.close()
        raise
    return con


def finish(
    con: duckdb.DuckDBPyConnection,
    cfg: Config,
    league: str,
    month: Month,
    store: Path | None,
    progress: Progress = None,
    files: tuple[str, ...] = PIPELINE,
    supplementary: bool = False,
    month_ledgers: list[Path] | None = None,
) -> None:
    """Look at the store and run the rest of sql/ (DUPLICATE onwards)."""
    load_store(con, cfg, league, month, store, supplementary, month_ledgers)
    run_sql(con, tuple(f for f in files if f not in READ), progress=progress)


@contextmanager
def compute(
    cfg: Config,
    league: str,
    month: Month,
    logs: pl.DataFrame | LogStream,
    store: Path | None,
    run_id: str,
    progress: Progress = None,
    memory_limit: str | None = None,
    files: tuple[str, ...] = PIPELINE,
    temp_dir: Path | None = None,
    supplementary: bool = False,
    month_ledgers: list[Path] | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Run sql/ on log files (a LogStream) or an all-text frame with source_file/source_row;
    yields the connection holding the results (rejects_out, file_counts, units, budget,
    ledger_out as a view)."""
    stream = logs if isinstance(logs, LogStream) else LogStream.from_frame(logs)
    con = prepare(cfg, league, month, stream, run_id, progress, memory_limit, temp_dir)
    try:
        finish(con, cfg, league, month, store, progress, files, supplementary, month_ledgers)
        yield con
    finally:
        con.close()


def settle_month(
    cfg: Config,
    league: str,
    month: Month,
    logs: Iterable[str | Path],
    out_dir: Path,
    store: Path | None = None,
    progress: Progress = None,
    memory_limit: str | None = None,
    supplementary: bool = False,
    replace: bool = False,
    force: bool = False,
    actor: Actor | None = None,
) -> RunResult:
    """Settle one 盟市-month: read logs, apply sql/, publish Parquet, manifest and store record.

    Re-running a month that has a current run needs `replace` (else ReplaceRefused, carrying
    what would change per company). A month not yet ended, or inputs more than half of whose
    rows are WRONG_LEAGUE or OUTSIDE_PERIOD, need `force` (SPEC §8.3). A sealed month cannot be
    settled again; its late parcels go in a supplementary run (`supplementary=True`), which
    keeps break-even and the budget over the whole month.
    """
    say = progress or (lambda _msg: None)
    cfg.policy(league)  # a configuration error before anything else
    store = store if store is not None else out_dir / "settlement.duckdb"
    new_store = None if Path(store).exists() else Path(store)
    if not force:
        refuse_unfinished_month(month)
    # open every file (and refuse an unreadable one) before anything is written, the lock
    # file included; then read them through once, into DuckDB (spilling to a private temp dir)
    stream = LogStream(logs, progress=say)
    run_id = new_run_id(league, month)
    started = now_utc()
    spill = Path(tempfile.mkdtemp(prefix="settle-"))
    try:
        con = prepare(cfg, league, month, stream, run_id, say, memory_limit, spill)
        try:
            rows = sum(f.rows for f in stream.inputs)
            if not force:
                refuse_misdirected(con, league, month, rows)
            say(
                f"共读取 {rows:,} 行，开始结算 {league} {month}"
                + ("（补充结算）" if supplementary else "")
            )
            with store_lock(store, say=say):
                for message in recover(out_dir, committed_runs(store)):
                    say(message)
                check_out_dir(store, out_dir)
                request = RunRequest(supplementary, replace, force, actor or Actor.cli())
                result = _settle_locked(
                    con,
                    cfg,
                    league,
                    month,
                    stream.inputs,
                    out_dir,
                    store,
                    say,
                    request,
                    run_id,
                    started,
                    stream.skipped,
                )
                result.new_store = new_store
                return result
        finally:
            con.close()
    finally:
        shutil.rmtree(spill, ignore_errors=True)


@dataclass(frozen=True)
class RunRequest:
    """What the officer asked for, beyond the month and the files."""

    supplementary: bool
    replace: bool
    force: bool
    actor: Actor


def refuse_unfinished_month(month: Month) -> None:
    """A month that has not ended yet is settled only with --force (SPEC §8.3)."""
    today = clock.today()
    if month.last_day >= today:
        raise RefusedError(
            f"结算月份 {month} 尚未结束（今天是 {today}，北京时间），不能结算；"
            "请检查 --month 是否写错。确需提前结算请加 --force"
        )


#: More than this share of a run's rows WRONG_LEAGUE or OUTSIDE_PERIOD: a wrong --league,
#: --month or --logs, refused without --force (SPEC §8.3).
MISDIRECTED_SHARE = (1, 2)


def refuse_misdirected(con, league: str, month: Month, rows: int) -> None:
    """Refuse a run whose rows mostly belong to another 盟市 or month, saying where they belong."""
    found = _rows(
        con,
        """
        SELECT CAST(reason_code AS VARCHAR) AS reason_code, COUNT(*) AS n,
               mode(CASE WHEN reason_code = 'OUTSIDE_PERIOD' THEN strftime(delivered_at, '%Y-%m')
                    END) AS usual_month
        FROM rows WHERE reason_code IN ('WRONG_LEAGUE', 'OUTSIDE_PERIOD') GROUP BY 1""",
    )
    counts = {r["reason_code"]: r["n"] for r in found}
    wrong = counts.get("WRONG_LEAGUE", 0) + counts.get("OUTSIDE_PERIOD", 0)
    if rows == 0 or wrong * MISDIRECTED_SHARE[1] <= rows * MISDIRECTED_SHARE[0]:
        return
    leagues = _rows(
        con,
        """
        SELECT v.league_code, COUNT(*) AS n FROM rows r JOIN village_dim v ON v.village = r.village
        WHERE r.reason_code = 'WRONG_LEAGUE' GROUP BY 1 ORDER BY n DESC, 1 LIMIT 1""",
    )
    # a hint only for the reason most of those rows have: 200 rows of another 盟市 among
    # 19,000 of another month say nothing about --league
    hints = []
    if leagues and counts.get("WRONG_LEAGUE", 0) * 2 > wrong:
        hints.append(f"这些村大多属于盟市 {leagues[0]['league_code']}")
    usual = next((r["usual_month"] for r in found if r["usual_month"]), None)
    if usual and counts.get("OUTSIDE_PERIOD", 0) * 2 > wrong:
        hints.append(f"签收时间大多在 {usual}")
    raise RefusedError(
        f"本次输入 {rows:,} 行中，{counts.get('WRONG_LEAGUE', 0):,} 行不属于盟市 {league}"
        f"（WRONG_LEAGUE），{counts.get('OUTSIDE_PERIOD', 0):,} 行签收时间不在 {month}"
        f"（OUTSIDE_PERIOD），合计超过一半"
        + (f"（{'，'.join(hints)}）" if hints else "")
        + "；请检查 --league、--month 和 --logs 是否选对。确认无误请加 --force"
    )


def _company_totals(con, source: str, params: list | None = None) -> dict[str, dict]:
    """Parcels and 分 per company of a ledger (a view name or read_parquet(...) expression)."""
    return {
        r["company"]: r
        for r in _rows(
            con,
            f"SELECT CAST(company AS VARCHAR) AS company, COUNT(*) AS parcels, "
            f"CAST(SUM(subsidy_fen) AS BIGINT) AS subsidy_fen FROM {source} GROUP BY 1",
            params,
        )
    }


def compare_companies(old: dict[str, dict], new: dict[str, dict]) -> list[dict]:
    """Per company: parcels and 应付 before and after (0 where absent), sorted by company."""
    out = []
    for company in sorted(set(old) | set(new)):
        o, n = old.get(company, {}), new.get(company, {})
        out.append(
            {
                "company": company,
                "old_parcels": o.get("parcels", 0),
                "new_parcels": n.get("parcels", 0),
                "old_fen": o.get("subsidy_fen", 0),
                "new_fen": n.get("subsidy_fen", 0),
            }
        )
    return out


def change_lines(changes: list[dict]) -> list[str]:
    """The per-company change as lines of text (CLI and refusals)."""
    lines = []
    for c in changes:
        delta = c["new_fen"] - c["old_fen"]
        sign = "+" if delta > 0 else ("−" if delta < 0 else "±")
        lines.append(
            f"  {c['company']:<8}应付 {format_yuan(c['old_fen'])} → {format_yuan(c['new_fen'])} 元"
            f"（{sign}{format_yuan(abs(delta))}）  受理 {c['old_parcels']:,} → {c['new_parcels']:,} 件"
        )
    old = sum(c["old_fen"] for c in changes)
    new = sum(c["new_fen"] for c in changes)
    lines.append(f"  合计    应付 {format_yuan(old)} → {format_yuan(new)} 元")
    return lines


def _refuse_unreplaced(con, league, month, state, old: dict[str, dict]) -> None:
    """Without --replace a month's current run stays: say what the new run would change."""
    changes = compare_companies(old, _company_totals(con, "ledger_out"))
    old_total = sum(c["old_fen"] for c in changes)
    new_total = sum(c["new_fen"] for c in changes)
    raise ReplaceRefused(
        f"盟市 {league} {month} 已有有效的结算（批次 {state.run_id}，应付 "
        f"{format_yuan(old_total)} 元），本次结算将改为 {format_yuan(new_total)} 元；未作任何更改。"
        "确认要替换该月结算请加 --replace。各企业的变化：",
        changes,
        change_lines(changes),
    )


def _settle_locked(
    con, cfg, league, month, inputs, out_dir, store, say, request, run_id, started, skipped
):
    policy = cfg.policy(league)
    supplementary = request.supplementary
    state = month_state(store, league, month)
    if state.seal is not None and not supplementary:
        raise RefusedError(
            f"盟市 {league} {month} 已封存（审批文号 {state.seal['approval_ref']}），不能重新结算；"
            "迟到的投递请用 settle run --supplementary 补充结算"
        )
    closed = closed_year_of(store, league, month) if not supplementary else None
    if closed is not None:
        raise RefusedError(
            f"盟市 {league} {closed['year']} 预算年度（{closed['start_month']} 至 "
            f"{closed['end_month']}）已关账，不能再结算其中的月份 {month}；该年度之后的变化"
            "计入下一年度（迟到的投递可对已封存月份补充结算，计入下一年度的月份）"
        )
    if supplementary and state.seal is None:
        raise RefusedError(
            f"盟市 {league} {month} 尚未封存，补充结算只用于已封存的月份；请直接重新结算该月"
        )
    replacing = state.run_id is not None and not supplementary
    stale: list[dict] = []
    if replacing:
        stale = refuse_breaking_sealed(store, league, month, state, request.force)
    part = supplement_file(state.supplements + 1) if supplementary else PART_FILE
    month_dir = out_dir / partition("ledger", league, str(month))
    month_ledgers = sorted(month_dir.glob("*.parquet"))
    old = (
        _company_totals(con, "read_parquet(?)", [os.path.abspath(month_dir / PART_FILE)])
        if replacing and (month_dir / PART_FILE).exists()
        else {}
    )
    staging = out_dir / ".staging" / run_id
    try:
        finish(
            con,
            cfg,
            league,
            month,
            store,
            say,
            supplementary=supplementary,
            month_ledgers=month_ledgers,
        )
        if replacing and not request.replace:
            _refuse_unreplaced(con, league, month, state, old)
        if supplementary:
            _refuse_empty_supplement(con, league, month)
        dependencies = dict(
            con.execute(
                "SELECT s.run_id, COUNT(*) FROM late_rejects l "
                "JOIN settled_elsewhere s USING (waybill_no) "
                "WHERE l.reason_code = 'ALREADY_SETTLED' GROUP BY 1"
            ).fetchall()
        )
        say("写出 Parquet")
        outputs = write_staged(con, staging, league, str(month), part)
        manifest = _manifest(con, cfg, policy, league, month, run_id, started, inputs, outputs)
        manifest["skipped_files"] = [{"path": s.path, "reason": s.reason} for s in skipped]
        ledger_file = os.path.abspath(staging / outputs[0]["path"])
        payouts = _rows(
            con,
            """
            SELECT company, county_code, COUNT(*) AS parcels, SUM(rate_fen) AS gross_fen,
                   SUM(subsidy_fen) AS subsidy_fen
            FROM read_parquet(?) GROUP BY company, county_code ORDER BY company, county_code""",
            [ledger_file],
        )
        changes = (
            compare_companies(old, _company_totals(con, "read_parquet(?)", [ledger_file]))
            if replacing
            else []
        )
        con.close()
        manifest["kind"] = "supplementary" if supplementary else "regular"
        manifest["part"] = part
        manifest.update(journal.chain({}, journal_head(store)))
        if supplementary:
            manifest["payable_in_month"] = str(next_open_month(store, league, month))
        text = journal.entry_text(manifest)
        manifest_rel = manifest_path(Path(), league, str(month), part)
        journal_rel = journal.entry_rel(run_id)
        stage_text(staging, manifest_rel, text)
        stage_text(staging, journal_rel, text)
        reference = reference_tables(cfg)
        audit = (store, reference, staging, out_dir, manifest, supplementary, say)
        if supplementary:  # its files go beside the month's own
            items = [partition(kind, league, str(month)) / part for kind in KINDS]
            _audit_before_publishing(*audit)
        else:  # a regular run replaces the month's partitions whole, statements included
            # the audits read the staged Parquet, the statements write beside it: both at once
            # (DuckDB and hashlib release the GIL, so they share the two cores)
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="settle-audit") as pool:
                audits = pool.submit(_audit_before_publishing, *audit)
                say("生成结算单")
                render(staging, cfg, league, month, store, source_dir=staging)
                audits.result()
            items = [partition(kind, league, str(month)) for kind in (*KINDS, "statements")]
        items += [manifest_rel, journal_rel]
        crash_point("staged")
        say("发布")
        publish(staging, out_dir, run_id, items)
        crash_point("published")
        manifest_file = out_dir / manifest_rel
        record = _run_record(manifest, started, manifest_file, out_dir, store)
        say("写入结算库")
        statements_sha256 = None if supplementary else statements_sha(out_dir, league, month)
        superseded = record_run(
            store, record, reference, request.actor, dependencies, statements_sha256
        )
        crash_point("committed")
    finally:
        discard(staging)
    if supplementary:
        _render_payment_month(cfg, league, month, out_dir, store, say, request.actor)
    say(
        f"完成：{manifest['counts']['parcels']:,} 件受理，补贴 {manifest['totals']['subsidy_fen']:,} 分"
    )
    return RunResult(
        run_id, league, str(month), manifest, manifest_file, superseded, payouts, changes, stale
    )


def _refuse_empty_supplement(con, league: str, month: Month) -> None:
    """A supplementary run that accepts nothing is not recorded: say why every row failed."""
    accepted = con.execute("SELECT COALESCE(SUM(parcels), 0) FROM units").fetchall()[0][0]
    if accepted:
        return
    counts = con.execute(
        "SELECT reason_code, COUNT(*) FROM rejects_out GROUP BY 1 ORDER BY 2 DESC, 1"
    ).fetchall()
    reasons = "，".join(f"{code} {n:,} 行" for code, n in counts) or "没有输入行"
    raise RefusedError(
        f"补充结算 {league} {month} 没有可受理的投递（{reasons}），未记录任何批次；"
        "可先用 settle validate --store 预检"
    )


def _audit_before_publishing(store, reference, staging, out_dir, manifest, supplementary, say):
    """Run sql/audits/ on the store as it will be after this run; refuse to publish on a finding."""
    say("发布前审计（sql/audits/）")
    run = {
        "run_id": manifest["run_id"],
        "league_code": manifest["league_code"],
        "month": manifest["month"],
        "kind": manifest["kind"],
        "rows_in": manifest["counts"]["rows_in"],
        "parcels": manifest["counts"]["parcels"],
        "gross_fen": manifest["totals"]["gross_fen"],
        "subsidy_fen": manifest["totals"]["subsidy_fen"],
    }
    findings = []
    for scope in ("run", "store"):  # each run's own rows (this run's), then the year's runs
        con = staged_audit_connection(
            store, reference, staging, out_dir, run, not supplementary, scope
        )
        try:
            findings += run_audits(con, scope)
        finally:
            con.close()
    if findings:
        first = findings[0]
        raise SettlementError(
            f"发布前审计未通过，未发布任何结果：sql/audits/{first.name}.sql（{first.question}）"
            f"发现 {first.rows.height} 行，例如 {first.rows.head(2).to_dicts()}"
        )


def _render_payment_month(cfg, league, month, out_dir, store, say, actor) -> None:
    """After a supplementary run: the statements of the month that pays it, when already
    settled, so its adjustment line appears there."""
    target = next_open_month(store, league, month)
    if (out_dir / partition("ledger", league, str(target)) / PART_FILE).exists():
        say(f"更新 {target} 结算单的补充结算调整项")
        # that month's ledger is unchanged: parcel details written on request stay beside it
        keep = details_written(out_dir, league, target)
        rerender(out_dir, cfg, league, target, store, actor, "supplementary", with_detail=keep)


def _run_record(
    manifest: dict, started: dt.datetime, manifest_file: Path, out_dir: Path, store: Path
) -> dict:
    """The store's `runs` row for a published run."""
    counts, totals = manifest["counts"], manifest["totals"]
    return {
        "run_id": manifest["run_id"],
        "league_code": manifest["league_code"],
        "month": manifest["month"],
        "kind": manifest["kind"],
        "payable_in_month": manifest.get("payable_in_month"),
        "started_at": started.replace(tzinfo=None),
        "finished_at": now_naive_utc(),
        "input_sha256": manifest["input_sha256"],
        "config_sha256": manifest["config_sha256"],
        "manifest_sha256": sha256_file(manifest_file),
        "out_dir": relative_out(store, out_dir),
        "rows_in": counts["rows_in"],
        "parcels": counts["parcels"],
        "rejects": counts["rejects"],
        "gross_fen": totals["gross_fen"],
        "after_breakeven_fen": totals["after_breakeven_fen"],
        "subsidy_fen": totals["subsidy_fen"],
        "budget_available_fen": manifest["budget"]["available_fen"],
        "annual_budget_fen": manifest["budget"]["annual_fen"],
        "budget_rule": manifest["budget"]["rule"],
    }


def _manifest(con, cfg, policy, league, month, run_id, started, inputs, outputs) -> dict:
    counts = con.execute("""
        SELECT (SELECT COALESCE(SUM(rows_in), 0) FROM file_counts),
               (SELECT COALESCE(SUM(parcels), 0) FROM units),
               (SELECT COUNT(*) FROM rejects_out)""").fetchall()[0]
    by_reason = dict(
        con.execute(
            "SELECT reason_code, COUNT(*) FROM rejects_out GROUP BY 1 ORDER BY 1"
        ).fetchall()
    )
    totals = _rows(
        con,
        """
        SELECT CAST(COALESCE(SUM(gross_fen), 0) AS BIGINT) AS gross_fen,
               CAST(COALESCE(SUM(after_breakeven_fen), 0) AS BIGINT) AS after_breakeven_fen,
               CAST(COALESCE(SUM(subsidy_fen), 0) AS BIGINT) AS subsidy_fen,
               COUNT(*) AS units,
               CAST(COALESCE(SUM(breakeven_excess_fen), 0) AS BIGINT) AS breakeven_excess_fen
        FROM units""",
    )[0]
    totals["breakeven_reduction_fen"] = totals["gross_fen"] - totals["after_breakeven_fen"]
    totals["budget_reduction_fen"] = totals["after_breakeven_fen"] - totals["subsidy_fen"]
    budget = _rows(con, "SELECT * FROM budget")[0]
    used = {
        r[0]
        for r in con.execute("SELECT DISTINCT CAST(version_id AS VARCHAR) FROM accepted").fetchall()
    }
    versions = [
        {
            "id": v.id,
            "reference": v.reference,
            "effective_from": str(v.effective_from),
            "effective_to": str(v.effective_to) if v.effective_to else None,
            "parcels_settled": v.id in used,
        }
        for v in policy.versions_overlapping(month.start, month.last_day)
    ]
    return {
        "manifest_version": 1,
        "engine_version": __version__,
        "run_id": run_id,
        "league_code": league,
        "league_name": policy.league_name,
        "month": str(month),
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": now_utc().isoformat(timespec="seconds"),
        "policy": {
            "file": str(policy.path.relative_to(cfg.root)),
            "scope": policy.scope,
            "budget_rule": policy.budget_rule,
            "versions": versions,
        },
        "config_files": cfg.files,
        "config_sha256": _combined_sha(f"{k}:{v}" for k, v in sorted(cfg.files.items())),
        "inputs": _per_file(con, inputs),
        "input_sha256": _combined_sha(sorted(f.sha256 for f in inputs)),
        "outputs": outputs,
        "counts": {
            "rows_in": counts[0],
            "parcels": counts[1],
            "rejects": counts[2],
            "by_reason": by_reason,
        },
        "cross_company_duplicates": _cross_company_duplicates(con),
        "totals": totals,
        "budget": {
            "rule": budget["budget_rule"],
            "budget_year_start": budget["budget_year_start"],
            "month_index": budget["budget_month_index"],
            "annual_fen": budget["annual_budget_fen"],
            "paid_before_fen": budget["paid_before_fen"],
            "available_fen": budget["available_fen"],
            "requested_fen": budget["requested_fen"],
            "prorated": budget["available_fen"] is not None
            and budget["requested_fen"] > budget["available_fen"],
        },
    }


def _cross_company_duplicates(con) -> list[dict]:
    """DUPLICATE rejects whose kept row is another company's, per (kept, rejected) company pair:
    a company that logs another's waybills backdated wins the tie-break (waybill squatting)."""
    return _rows(
        con,
        """
        SELECT kept_company AS kept, CAST(company AS VARCHAR) AS rejected,
               COUNT(DISTINCT waybill_no) AS waybills
        FROM late_rejects
        WHERE reason_code = 'DUPLICATE' AND kept_company <> CAST(company AS VARCHAR)
        GROUP BY ALL ORDER BY waybills DESC, kept, rejected""",
    )


def cross_company_warnings(manifest: dict) -> list[str]:
    """The office's warning, per company pair, of waybills that two companies logged (the run's
    summary, the portal's run result and month page)."""
    return [
        f"注意：{p['waybills']:,} 个运单号同时出现在 {p['kept']} 和 {p['rejected']} 的日志中"
        f"（已受理 {p['kept']} 的记录），请核实"
        for p in manifest.get("cross_company_duplicates", [])
    ]


@dataclass
class ValidationReport:
    inputs: list[dict]
    by_reason: dict[str, int]
    by_file_reason: list[dict]
    examples: dict[str, list[dict]]
    rows: int
    accepted: int
    rejects: object  # pyarrow.Table of every rejected row
    mode: str = "new"  # new | replace | supplementary: what a run of these files would be
    warnings: list[str] = field(default_factory=list)  # what a run would refuse without --force
    skipped: list = field(default_factory=list)  # ingest.Skipped: what the directories held


def validate_logs(
    cfg: Config,
    league: str,
    month: Month,
    logs: Iterable[str | Path],
    store: Path | None = None,
    examples: int = 5,
) -> ValidationReport:
    """The same validation as a run, writing nothing: counts by reason and file, first rows.

    With a store it sees exactly what a run would: a sealed month's rows are checked as a
    supplementary run's (the month's own settled waybills are ALREADY_SETTLED), a settled
    month's as a replacement's (its own waybills released); and it warns of what a run would
    refuse without --force."""
    if store is not None:
        require_store(store)
    state = month_state(store, league, month) if store is not None else None
    supplementary = state is not None and state.seal is not None
    mode = "supplementary" if supplementary else ("replace" if state and state.run_id else "new")
    stream = LogStream(logs)
    with (
        tempfile.TemporaryDirectory(prefix="settle-") as spill,
        compute(
            cfg,
            league,
            month,
            stream,
            store,
            "validate",
            files=VALIDATION,
            temp_dir=Path(spill),
            supplementary=supplementary,
        ) as con,
    ):
        inputs = stream.inputs
        warnings = []
        try:
            refuse_unfinished_month(month)
            refuse_misdirected(con, league, month, sum(f.rows for f in inputs))
        except RefusedError as exc:  # said to a company's clerk, who has no --force
            text = str(exc)
            for option in ("确认无误请加 --force", "确需提前结算请加 --force"):
                text = text.replace(option, "须由盟市邮政管理局确认后才能结算")
            warnings.append(f"正式结算时将被拒绝：{text}")
        per_file = _per_file(con, inputs)
        by_reason = dict(
            con.execute("SELECT reason_code, COUNT(*) FROM rejects_out GROUP BY 1").fetchall()
        )
        by_file_reason = _rows(
            con,
            """
            SELECT source_file, reason_code, reason, COUNT(*) AS rows
            FROM rejects_out GROUP BY ALL ORDER BY source_file, reason_code""",
        )
        example_rows = _rows(
            con,
            """
            SELECT * EXCLUDE (rn, run_id) FROM (
                SELECT *, ROW_NUMBER() OVER (PARTITION BY reason_code
                                             ORDER BY source_file, source_row) AS rn
                FROM rejects_out) WHERE rn <= ? ORDER BY reason_code, source_file, source_row""",
            [examples],
        )
        rejects = con.sql("SELECT * EXCLUDE (run_id) FROM rejects_out").to_arrow_table()
        total = con.execute("SELECT COALESCE(SUM(rows_in), 0) FROM file_counts").fetchall()[0][0]
    grouped: dict[str, list[dict]] = {}
    for row in example_rows:
        grouped.setdefault(row["reason_code"], []).append(row)
    return ValidationReport(
        per_file,
        by_reason,
        by_file_reason,
        grouped,
        total,
        total - sum(by_reason.values()),
        rejects,
        mode,
        warnings,
        stream.skipped,
    )


def load_manifest(path: Path) -> dict:
    """Read a manifest JSON."""
    return json.loads(path.read_text(encoding="utf-8"))
