"""A 盟市-month after its run: sealing it (审核、公示、审批) and voiding it (作废).

Both are decisions people make, so both are refused unless everything they need is there
(SPEC §8.4, §8.6), both are entries in the journal's hash chain, and both are events.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from . import clock, journal
from .config import Config
from .errors import RefusedError, UsageError
from .events import Actor
from .lock import store_lock
from .outputs import (
    KINDS,
    crash_point,
    discard,
    manifest_path,
    partition,
    publish,
    recover,
    stage_text,
)
from .period import Month
from .store import (
    committed_runs,
    current_runs,
    dependents,
    journal_head,
    month_state,
    record_seal,
    record_void,
    recorded_out,
    require_store,
    stale_months,
)

APPROVAL_FIELDS = {
    "reviewed_by": ("审核人", "--reviewed-by"),
    "approved_by": ("审批人", "--approved-by"),
    "approval_ref": ("审批文号", "--approval-ref"),
}


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stale_for(store: Path, league: str, month: Month) -> list[dict]:
    """The dependencies that make a 盟市-month stale (empty when it is not)."""
    return [
        s for s in stale_months(store) if s["league_code"] == league and s["month"] == str(month)
    ]


def stale_text(rows: list[dict]) -> str:
    """'150700 2025-05（143 个运单）、…' for messages."""
    return "、".join(f"{r['league_code']} {r['month']}（{r['waybills']:,} 个运单）" for r in rows)


def check_approval(approval: dict, month: Month) -> dict:
    """The approval with its names trimmed, or a refusal naming what is missing or premature:
    blank names, a notice period that starts before the month ended, or has not ended before
    today (Asia/Shanghai)."""
    cleaned = dict(approval)
    for key, (label, option) in APPROVAL_FIELDS.items():
        value = str(approval.get(key) or "").strip()
        if not value:
            raise UsageError(f"{label}不能为空（{option}），封存需要写明{label}")
        cleaned[key] = value
    start, end = approval["notice_start"], approval["notice_end"]
    if end < start:
        raise RefusedError(f"公示结束日期 {end} 早于开始日期 {start}")
    if start < month.end:
        raise RefusedError(f"公示开始日期 {start} 早于结算月份结束（{month.end}）")
    today = clock.today()
    if end >= today:
        raise RefusedError(
            f"公示期至 {end} 尚未结束（今天是 {today}，北京时间）；公示期满后才能封存"
        )
    return cleaned


def seal_month(
    store: Path, league: str, month: Month, approval: dict, actor: Actor | None = None
) -> dict:
    """Seal a settled 盟市-month after review, public notice and approval (审核、公示、审批).

    Refused when a name is blank, the notice period has not ended before today, the month is
    not settled, already sealed, or stale (SPEC §8.6). The caller holds the store's lock."""
    require_store(store)
    approval = check_approval(approval, month)
    actor = actor or Actor.cli()
    state = month_state(store, league, month)
    if state.seal is not None:
        raise RefusedError(
            f"盟市 {league} {month} 已于 {clock.local_text(state.seal['sealed_at'], seconds=False)} "
            f"封存（审批文号 {state.seal['approval_ref']}），无需再次封存"
        )
    if state.run_id is None:
        raise RefusedError(f"盟市 {league} {month} 尚未结算（或已作废），不能封存")
    stale = stale_for(store, league, month)
    if stale:
        raise RefusedError(
            f"盟市 {league} {month} 需重算：其结算以已被取代或作废的批次为由剔除了运单"
            f"（{'、'.join(s['depends_on'] for s in stale)}），请先重新结算该月（settle run "
            "--replace），再封存"
        )
    regular = next(r for r in current_runs(store, league, month) if r["kind"] == "regular")
    if approval["reviewed_by"] == regular["run_by"]:
        raise RefusedError(
            f"盟市 {league} {month} 的结算（批次 {regular['run_id']}）是 {regular['run_by']} "
            "运行的；按照经办与审核分离的要求，运行结算的人不能审核封存，请由另一人审核并封存"
        )
    warnings = []
    settled_on = clock.to_local(regular["finished_at"]).date()
    if approval["notice_start"] < settled_on:
        warnings.append(
            f"公示开始日期 {approval['notice_start']} 早于本月结算完成的日期 {settled_on}"
            f"（批次 {regular['run_id']}）：请确认公示的是这一批次的结算结果"
        )
    out_dir = recorded_out(store)
    entry_id = journal.new_entry_id("seal", league, str(month))
    row = {
        "league_code": league,
        "month": str(month),
        "run_id": state.run_id,
        **{k: approval[k] for k in ("reviewed_by", "notice_start", "notice_end")},
        "approved_by": approval["approved_by"],
        "approval_ref": approval["approval_ref"],
        "sealed_at": clock.now_naive_utc(),
        "sealed_by": actor.name,
        "entry_id": entry_id,
    }
    payload = {"kind": "seal", **row, "warnings": warnings}
    text = journal.entry_text(journal.chain(payload, journal_head(store)))
    journal.write_entry(out_dir, entry_id, text)
    record_seal(store, row, actor, _sha(text))
    return {**row, "warnings": warnings}


def refuse_breaking_sealed(store: Path, league, month, state, force: bool) -> list[dict]:
    """Months that rejected waybills as ALREADY_SETTLED against the run being replaced or
    voided. Unsealed ones become stale (returned); a sealed one cannot be settled again, so
    the change is refused unless forced."""
    affected = dependents(store, [state.run_id]) if state.run_id else []
    sealed = [d for d in affected if d["sealed"]]
    if sealed and not force:
        names = "、".join(
            f"{d['league_code']} {d['month']}（{d['waybills']:,} 个运单）" for d in sealed
        )
        raise RefusedError(
            f"已封存的月份 {names} 以本月批次 {state.run_id} 已结算为由剔除了运单；"
            f"更改 {league} {month} 可能使这些运单在任何月份都得不到结算，而已封存的月份不能重算。"
            "如确需更改，请加 --force，并用 settle run --supplementary 为这些运单补充结算"
        )
    return [d for d in affected if not d["sealed"]]


@dataclass
class VoidResult:
    run_id: str
    entry_id: str
    voided_at: dt.datetime
    stale: list[dict] = field(default_factory=list)  # months now stale (SPEC §8.5)
    archive: Path | None = None  # where the run's outputs went


def void_month(
    cfg: Config,
    store: Path,
    league: str,
    month: Month,
    reason: str,
    actor: Actor | None = None,
    force: bool = False,
    say=None,
) -> VoidResult:
    """Withdraw the current run of an unsealed month (SPEC §8.4): its waybills are released, its
    outputs move to voided/<run_id>/, its statements are marked 作废, the journal records it.

    Months that rejected waybills as ALREADY_SETTLED against it become stale (returned); a
    sealed one makes the void refused unless `force`."""
    from .statements import render, statements_sha

    say = say or (lambda _m: None)
    require_store(store)
    reason = (reason or "").strip()
    if not reason:
        raise UsageError("作废原因不能为空（--reason）")
    actor = actor or Actor.cli()
    with store_lock(store, say=say):
        out_dir = recorded_out(store)
        if out_dir is not None:
            for message in recover(out_dir, committed_runs(store)):
                say(message)
        state = month_state(store, league, month)
        if state.seal is not None:
            raise RefusedError(
                f"盟市 {league} {month} 已封存（审批文号 {state.seal['approval_ref']}），不能作废；"
                "已支付的款项如需追回，请用 settle clawback 登记追缴"
            )
        if state.run_id is None or out_dir is None:
            raise RefusedError(f"盟市 {league} {month} 没有有效的结算批次，无需作废")
        stale = refuse_breaking_sealed(store, league, month, state, force)
        run_id = state.run_id
        entry_id = journal.new_entry_id("void", league, str(month))
        voided_at = clock.now_naive_utc()
        archive = Path("voided") / run_id
        void = {
            "kind": "void",
            "run_id": run_id,
            "league_code": league,
            "month": str(month),
            "reason": reason,
            "voided_by": actor.name,
            "voided_at": voided_at,
            "entry_id": entry_id,
            "archive": archive.as_posix(),
        }
        staging = out_dir / ".staging" / entry_id
        try:
            say("生成作废标记的结算单")
            render(staging, cfg, league, month, store, source_dir=out_dir, voided=void)
            statements = partition("statements", league, str(month))
            shutil.copytree(staging / statements, staging / archive / statements)
            void["statements_sha256"] = statements_sha(staging, league, month)
            text = journal.entry_text(journal.chain(void, journal_head(store)))
            stage_text(staging, journal.entry_rel(entry_id), text)
            moves = [
                (partition(kind, league, str(month)), archive / partition(kind, league, str(month)))
                for kind in (*KINDS, "reconciliation")
            ]
            manifest = manifest_path(Path(), league, str(month))
            moves.append((manifest, archive / manifest))
            items = [statements, archive / statements, journal.entry_rel(entry_id)]
            crash_point("staged")
            publish(staging, out_dir, entry_id, items, moves)
            crash_point("published")
            record_void(store, run_id, void, actor, _sha(text))
            crash_point("committed")
        finally:
            discard(staging)
    return VoidResult(run_id, entry_id, voided_at, stale, out_dir / archive)
