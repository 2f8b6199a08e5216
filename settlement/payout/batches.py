"""Payment batches (拨付批次, SPEC §10): created from sealed months (已生成), confirmed once the
transfer is made (已拨付) by someone other than their maker.

A month is paid at most once (payment_months' key). A batch pays each company its months'
sealed statements' 本期实付 — supplements and clawbacks booked in them included — less what its
previous batch could not recover; never a negative amount (sql/93_batch.sql). The files are
published together with the batch's journal entry, and the store commits last.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pyarrow as pa

from .. import SQL_DIR, clock, journal, shipped
from ..config import Config
from ..errors import RefusedError, UsageError
from ..events import Actor
from ..lock import store_lock
from ..months import stale_for
from ..outputs import crash_point, discard, publish, recover, sha256_file, stage_text
from ..period import Month
from ..store import (
    committed_runs,
    connect_readonly,
    journal_head,
    month_state,
    recorded_out,
    require_store,
)
from . import documents
from .payee import PAYEE_FIELDS
from .records import batches, paid_months, record_batch, record_confirmation

STATE_TEXT = {"created": "已生成", "paid": "已拨付"}


def payments_dir(league: str) -> Path:
    """Where a 盟市's batch files are, relative to the output directory."""
    return Path("payments") / f"league={league}"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_months(store: Path, league: str, months: list[Month]) -> None:
    """Refuse a month that is not settled, not sealed, stale, or already in a batch, naming
    each one."""
    paid = paid_months(store, league)
    problems = []
    for month in months:
        state = month_state(store, league, month)
        if str(month) in paid:
            b = paid[str(month)]
            problems.append(
                f"{month} 已在拨付批次 {b['batch_id']}（{STATE_TEXT[b['state']]}）中，每个月份只拨付一次"
            )
        elif state.run_id is None:
            problems.append(f"{month} 尚未结算（或已作废），没有可拨付的结算单")
        elif state.seal is None:
            problems.append(
                f"{month} 尚未封存：结算单须经审核、公示、审批并封存（settle seal）后才能拨付"
            )
        elif stale_for(store, league, month):
            problems.append(f"{month} 需重算，不能拨付")
    if problems:
        raise RefusedError(f"盟市 {league} 不能拨付：" + "；".join(problems))


def compute_lines(store: Path, league: str, months: list[Month]) -> tuple[list[dict], list[dict]]:
    """The batch's lines per company (sql/93_batch.sql) and the months' payable per company."""
    con = connect_readonly(store)
    try:
        con.register(
            "batch_params",
            pa.table({"league_code": [league] * len(months), "month": [str(m) for m in months]}),
        )
        con.execute(shipped(SQL_DIR / "93_batch.sql").read_text(encoding="utf-8"))
        cursor = con.execute("SELECT * FROM batch_lines ORDER BY company")
        names = [d[0] for d in cursor.description]
        lines = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
        cursor = con.execute(
            "SELECT p.* FROM payable p JOIN batch_params b USING (league_code, month) "
            "ORDER BY p.company, p.month"
        )
        names = [d[0] for d in cursor.description]
        detail = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    finally:
        con.close()
    return lines, detail


def check_payees(cfg: Config, lines: list[dict]) -> None:
    """Every company paid more than 0 has complete payee data; else refused naming the company
    and the missing field."""
    problems = []
    for line in lines:
        if line["amount_fen"] <= 0:
            continue
        company = cfg.companies.get(line["company"])
        if company is None:
            problems.append(f"企业编码 {line['company']} 未在 companies.toml 中登记")
            continue
        missing = company.missing_payee()
        if missing:
            fields = "、".join(f"{k}（{PAYEE_FIELDS[k]}）" for k in missing)
            problems.append(f"企业 {company.code}（{company.name}）缺少收款信息 {fields}")
    if problems:
        raise RefusedError(
            f"不能拨付：{problems[0]}；请在 {cfg.root / 'companies.toml'} 中补全收款信息"
            "（payee_name、credit_code、bank、account）",
            details=problems[1:],
        )


def create_batch(
    cfg: Config,
    store: Path,
    league: str,
    months: list[Month],
    actor: Actor | None = None,
    say=None,
) -> dict:
    """Create a payment batch (已生成) for sealed months of one 盟市 not yet in a batch: its
    files under payments/league=L/ and its journal entry, published together; the batch's row,
    lines and months in the store. Returns the batch with its lines."""
    say = say or (lambda _m: None)
    require_store(store)
    if not months:
        raise UsageError("请至少给出一个结算月份（--month）")
    months = sorted(set(months))
    actor = actor or Actor.cli()
    cfg.policy(league)  # a 盟市 without a policy is a configuration error
    with store_lock(store, say=say):
        out_dir = recorded_out(store)
        if out_dir is None:
            raise RefusedError(f"结算库 {store} 中没有任何结算，没有可拨付的月份")
        for message in recover(out_dir, committed_runs(store)):
            say(message)
        check_months(store, league, months)
        lines, detail = compute_lines(store, league, months)
        if not lines:
            raise RefusedError(
                f"盟市 {league} {'、'.join(map(str, months))} 没有任何企业的应付款，无需拨付"
            )
        check_payees(cfg, lines)
        for line in lines:
            company = cfg.companies.get(line["company"])
            for key in PAYEE_FIELDS:
                line[key] = getattr(company, key) if company else None
        batch_id = f"pay-{league}-{len(batches(store, league)) + 1:04d}"
        batch = {
            "batch_id": batch_id,
            "league_code": league,
            "league_name": cfg.policy(league).league_name,
            "state": "created",
            "months": ",".join(map(str, months)),
            "amount_fen": sum(line["amount_fen"] for line in lines),
            "created_by": actor.name,
            "created_at": clock.now_naive_utc(),
        }
        staging = out_dir / ".staging" / batch_id
        try:
            folder = staging / payments_dir(league)
            folder.mkdir(parents=True, exist_ok=True)
            files = documents.file_names(batch_id)
            documents.write_parquet(folder / files["parquet"], batch_id, lines)
            documents.write_csv(folder / files["csv"], batch_id, lines)
            names = {c.code: c.name for c in cfg.companies.values()}
            documents.write_xlsx(folder / files["xlsx"], batch, lines, detail, names)
            hashes = {name: sha256_file(folder / name) for name in files.values()}
            payload = {
                "kind": "batch",
                **{k: v for k, v in batch.items() if k != "state"},
                "lines": lines,
                "months_due": [{"month": str(m), "due_fen": _month_due(detail, m)} for m in months],
                "files": hashes,
            }
            text = journal.entry_text(journal.chain(payload, journal_head(store)))
            stage_text(staging, journal.entry_rel(batch_id), text)
            items = [payments_dir(league) / n for n in files.values()]
            items.append(journal.entry_rel(batch_id))
            crash_point("staged")
            publish(staging, out_dir, batch_id, items)
            crash_point("published")
            row = {k: v for k, v in batch.items() if k != "league_name"}
            row["files"] = json.dumps(hashes, sort_keys=True)
            record_batch(
                store,
                row,
                [{"batch_id": batch_id, **{k: line[k] for k in LINE_COLUMNS}} for line in lines],
                [
                    {
                        "league_code": league,
                        "month": str(m),
                        "batch_id": batch_id,
                        "due_fen": _month_due(detail, m),
                    }
                    for m in months
                ],
                actor,
                _sha(text),
            )
            crash_point("committed")
        finally:
            discard(staging)
    return {**batch, "lines": lines, "files": hashes, "folder": out_dir / payments_dir(league)}


LINE_COLUMNS = (
    "company",
    "payee_name",
    "credit_code",
    "bank",
    "account",
    "months",
    "due_fen",
    "carried_in_fen",
    "amount_fen",
    "carried_forward_fen",
)


def _month_due(detail: list[dict], month: Month) -> int:
    return sum(d["due_fen"] for d in detail if d["month"] == str(month))


def confirm_batch(
    store: Path, batch_id: str, paid_on: dt.date, voucher: str, actor: Actor | None = None
) -> dict:
    """Record that a batch was transferred (已生成 → 已拨付), once, by someone other than the
    person who created it (maker-checker); the paid-on date cannot be in the future."""
    require_store(store)
    voucher = (voucher or "").strip()
    if not voucher:
        raise UsageError("付款凭证号不能为空（--voucher）")
    actor = actor or Actor.cli()
    with store_lock(store):
        found = batches(store, batch_id=batch_id)
        if not found:
            raise RefusedError(f"结算库 {store} 中没有拨付批次 {batch_id}")
        batch = found[0]
        if batch["state"] == "paid":
            raise RefusedError(
                f"拨付批次 {batch_id} 已于 {batch['paid_on']} 拨付（凭证号 {batch['voucher']}，"
                f"确认人 {batch['confirmed_by']}），不能再次确认"
            )
        if actor.name == batch["created_by"]:
            raise RefusedError(
                f"拨付批次 {batch_id} 由 {batch['created_by']} 生成，须由另一人确认拨付"
                "（经办与复核分离）"
            )
        today = clock.today()
        if paid_on > today:
            raise RefusedError(f"拨付日期 {paid_on} 晚于今天（{today}，北京时间）")
        # the confirmation is once and for ever: a mistyped year would stay on every annual
        # statement. Nothing is paid before its months ended, nor before the batch existed
        # (unless the clock is set back, as in tests: SETTLE_TODAY)
        last = max(Month.parse(m) for m in batch["months"].split(","))
        earliest, why = last.end, f"所付的 {last} 结束之后"
        created_on = clock.to_local(batch["created_at"]).date()
        if earliest <= created_on <= today:
            earliest, why = created_on, f"拨付批次 {batch_id} 生成（{created_on}）之后"
        if paid_on < earliest:
            raise RefusedError(
                f"拨付日期 {paid_on} 不对：拨付只能在{why}；请检查 --paid-on 是否写错"
            )
        reused = [b["batch_id"] for b in batches(store) if b.get("voucher") == voucher]
        confirm = {
            "entry_id": f"paid-{batch_id}",
            "confirmed_by": actor.name,
            "confirmed_at": clock.now_naive_utc(),
            "paid_on": paid_on,
            "voucher": voucher,
        }
        payload = {"kind": "payment", "batch_id": batch_id, **confirm}
        payload["amount_fen"] = batch["amount_fen"]
        text = journal.entry_text(journal.chain(payload, journal_head(store)))
        journal.write_entry(recorded_out(store), confirm["entry_id"], text)
        record_confirmation(store, batch, confirm, actor, _sha(text))
    warnings = (
        [f"凭证号 {voucher} 已用于拨付批次 {'、'.join(reused)}，请确认没有重复登记"]
        if reused
        else []
    )
    return {**batch, **confirm, "state": "paid", "warnings": warnings}
