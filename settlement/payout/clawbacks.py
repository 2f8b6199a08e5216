"""Clawbacks (追缴, SPEC §10): payments of a sealed month found improper later are recovered as
negative adjustments booked in the company's next open month, whose statement and public
notice show them with their waybills, reason and who recorded them.

A clawback list names waybills paid in the sealed month (运单号) and, optionally, the amount to
recover (金额, 元); never more than was paid for a waybill, counting earlier clawbacks
(sql/94_clawback.sql). A batch never pays a negative amount: what a company's months net below
zero is carried to its next batch (sql/93_batch.sql).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa

from .. import SQL_DIR, clock, journal, shipped
from ..config import Config
from ..errors import RefusedError, UsageError
from ..events import Actor
from ..lock import store_lock
from ..money import format_yuan
from ..outputs import PART_FILE, partition, recover
from ..period import Month
from ..reconcile import read_waybill_list
from ..store import (
    _query,
    committed_runs,
    connect_readonly,
    journal_head,
    month_state,
    next_open_month,
    recorded_out,
    require_store,
)
from .records import record_clawback

ALIASES = {
    "waybill_no": ("运单号",),
    "amount_yuan": ("金额", "金额(元)", "追缴金额", "追缴金额(元)"),
}
PROBLEMS = {
    "NO_WAYBILL": "运单号为空",
    "REPEATED": "运单号在前面的行已出现",
    "NOT_PAID": "不是该盟市该月份已结算的运单",
    "BAD_AMOUNT": "金额应为大于 0、最多两位小数的元数",
    "NOTHING_LEFT": "该运单已无可追缴的金额（补贴为 0 或已全部追缴）",
    "TOO_MUCH": "追缴金额超过该运单尚未追缴的补贴",
}


@dataclass
class ClawbackResult:
    clawback_id: str
    booked_in_month: str
    lines: list[dict]  # waybill_no, company, amount_fen (< 0), source_run_id

    @property
    def total_fen(self) -> int:
        return sum(x["amount_fen"] for x in self.lines)


def read_list(path: Path) -> pl.DataFrame:
    """The clawback list as (line, waybill_no, amount_text); line as Excel shows it."""
    rows, _ = read_waybill_list(path, ALIASES, "amount_yuan", "line")
    return rows.rename({"amount_yuan": "amount_text"})


def check_list(store: Path, league: str, month: Month, request: pl.DataFrame) -> list[dict]:
    """Each line of the list against what was paid (sql/94_clawback.sql)."""
    con = connect_readonly(store)
    try:
        con.register("clawback_request", request.to_arrow())
        con.register("clawback_params", pa.table({"league_code": [league], "month": [str(month)]}))
        con.execute(shipped(SQL_DIR / "94_clawback.sql").read_text(encoding="utf-8"))
        cursor = con.execute("SELECT * FROM clawback_check ORDER BY line")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    finally:
        con.close()


def _problem_text(path: Path, row: dict, store: Path, league: str, month: Month) -> str:
    what = PROBLEMS[row["problem"]]
    waybill = row["waybill_no"] or ""
    if row["problem"] == "NOT_PAID" and waybill:
        where = _query(
            store,
            "SELECT league_code, month FROM settled_waybills WHERE waybill_no = ?",
            [waybill],
        )
        if where:
            what += f"（该运单在 {where[0]['league_code']} {where[0]['month']} 结算）"
    if row["problem"] in ("TOO_MUCH", "NOTHING_LEFT"):
        what += (
            f"（已付 {format_yuan(row['paid_fen'])} 元，已追缴 {format_yuan(row['clawed_before_fen'])}"
            f" 元，可追缴 {format_yuan(max(0, row['left_fen']))} 元"
            + (
                f"，本行 {row['amount_text']} 元）"
                if row["problem"] == "TOO_MUCH" and row["amount_text"]
                else "）"
            )
        )
    if row["problem"] == "BAD_AMOUNT":
        what += f"，实际为“{row['amount_text']}”"
    return f"{path.name} 第 {row['line']} 行 运单 {waybill or '（空）'}：{what}"


def clawback(
    cfg: Config,
    store: Path,
    league: str,
    month: Month,
    waybills_file: Path,
    reason: str,
    actor: Actor | None = None,
    say=None,
) -> ClawbackResult:
    """Book a clawback of waybills paid in a sealed month, in the company's next open month
    (the first month after it that is neither sealed nor in a closed year); its statements are
    rendered again when that month is settled. Refused whole, naming each waybill and why,
    when any line cannot be recovered."""
    say = say or (lambda _m: None)
    require_store(store)
    reason = (reason or "").strip()
    if not reason:
        raise UsageError("追缴原因不能为空（--reason）")
    actor = actor or Actor.cli()
    request = read_list(waybills_file)
    if not request.height:
        raise RefusedError(f"追缴清单 {waybills_file} 没有数据行")
    with store_lock(store, say=say):
        out_dir = recorded_out(store)
        if out_dir is not None:
            for message in recover(out_dir, committed_runs(store)):
                say(message)
        state = month_state(store, league, month)
        if state.run_id is None:
            raise RefusedError(f"盟市 {league} {month} 尚未结算，没有可追缴的款项")
        if state.seal is None:
            raise RefusedError(
                f"盟市 {league} {month} 尚未封存：未封存的月份可以重新结算（--replace）或作废，"
                "无需追缴"
            )
        checked = check_list(store, league, month, request)
        bad = [r for r in checked if r["problem"]]
        if bad:
            texts = [_problem_text(waybills_file, r, store, league, month) for r in bad]
            raise RefusedError(
                f"追缴未登记（{len(bad)} 行有问题，全部行均未登记）：{texts[0]}", details=texts[1:]
            )
        booked = next_open_month(store, league, month)
        clawback_id = journal.new_entry_id("clawback", league, str(month))
        recorded_at = clock.now_naive_utc()
        rows = [
            {
                "clawback_id": clawback_id,
                "kind": "manual",
                "league_code": league,
                "booked_in_month": str(booked),
                "company": r["company"],
                "waybill_no": r["waybill_no"],
                "amount_fen": -int(r["amount_fen"]),
                "source_month": str(month),
                "source_run_id": r["source_run_id"],
                "reason": reason,
                "recorded_by": actor.name,
                "recorded_at": recorded_at,
            }
            for r in checked
        ]
        entry = {
            "kind": "clawback",
            "clawback_id": clawback_id,
            "league_code": league,
            "month": str(month),
            "booked_in_month": str(booked),
            "reason": reason,
            "recorded_by": actor.name,
            "recorded_at": recorded_at,
            "source_file": str(waybills_file),
            "lines": [
                {k: r[k] for k in ("waybill_no", "company", "amount_fen", "source_run_id")}
                for r in rows
            ],
            "total_fen": sum(r["amount_fen"] for r in rows),
        }
        text = journal.entry_text(journal.chain(entry, journal_head(store)))
        journal.write_entry(out_dir, clawback_id, text)
        record_clawback(store, entry, rows, actor, hashlib.sha256(text.encode()).hexdigest())
        rerender_month(cfg, store, out_dir, league, booked, say, actor, "clawback")
    return ClawbackResult(clawback_id, str(booked), rows)


def rerender_month(
    cfg: Config, store: Path, out_dir: Path, league: str, month: Month, say, actor, why: str
):
    """The statements of the month an adjustment is booked in, when it is already settled
    (their new SHA-256 recorded in the store, so that verify can check them)."""
    from ..statements import details_written, rerender

    if (out_dir / partition("ledger", league, str(month)) / PART_FILE).exists():
        say(f"更新 {month} 结算单的追缴调整项")
        keep = details_written(out_dir, league, month)
        rerender(out_dir, cfg, league, month, store, actor, why, with_detail=keep)
