"""Paying out in the portal (SPEC §10, §11), in terms of the library: the administration creates
and confirms payment batches (maker-checker: the logged-in user who created a batch cannot
confirm it), records clawbacks and closes the year; a company sees its own payments, clawbacks
and annual statement; auditors see all of it. No rule and no SQL here: `settlement.payout` and
the store's `payable` view decide, this only calls them one at a time (`Portal.store_access`)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

from ..clock import local_text
from ..payout import annual, batches, cash, clawbacks, records
from ..period import Month
from ..store import _query, closed_years, list_runs
from . import submissions as sub
from .portal import NotFound, Portal, Who

FILE_KINDS = ("xlsx", "csv", "parquet")


def _company(who: Who) -> str | None:
    """The company whose data alone a user sees (None: every company)."""
    return who.user.company if who.user.role == "company" else None


def overview(portal: Portal, who: Who, league: str, year: int) -> dict:
    """The 资金拨付 page: per month of the budget year what is due, paid and outstanding; the
    batches; the clawbacks; the months ready to pay; the year's close. A company sees only its
    own lines, clawbacks and annual statement."""
    portal.check_league(league)
    portal.check_year(year)
    company = _company(who)
    empty = {"months": [], "carries": [], "batches": [], "start": None, "end": None}
    if not portal.has_store():
        return {**empty, "clawbacks": [], "payable_months": [], "close": None, "annual": []}
    with portal.store_access():
        view = cash.cash_view(portal.store, league, year, company)
        claws = _query(
            portal.store,
            "SELECT clawback_id, kind, booked_in_month, company, source_month, "
            "COUNT(*) AS waybills, CAST(SUM(amount_fen) AS BIGINT) AS amount_fen, "
            "MIN(reason) AS reason, MIN(recorded_by) AS recorded_by, "
            "MIN(recorded_at) AS recorded_at, list(waybill_no ORDER BY waybill_no)[1:10] AS first "
            "FROM clawbacks WHERE league_code = ? AND (? IS NULL OR company = ?) "
            "GROUP BY clawback_id, kind, booked_in_month, company, source_month "
            "ORDER BY recorded_at DESC, clawback_id, company",
            [league, company, company],
        )
        paid = records.paid_months(portal.store, league)
        ready = [
            r["month"]
            for r in list_runs(portal.store, league)
            if r["status"] == "current"
            and r["kind"] == "regular"
            and r["sealed"]
            and r["month"] not in paid
        ]
        close = next((c for c in closed_years(portal.store, league) if c["year"] == year), None)
        mine = {}
        if company is not None:
            mine = {
                r["batch_id"]: r
                for r in _query(
                    portal.store,
                    "SELECT * FROM payment_lines WHERE company = ? ORDER BY batch_id",
                    [company],
                )
            }
    for c in claws:
        c["recorded_at"] = local_text(c["recorded_at"], seconds=False)
    shown_batches = []
    for b in view["batches"]:
        if company is not None and b["batch_id"] not in mine:
            continue
        b = dict(b)
        b["state_text"] = batches.STATE_TEXT[b["state"]]
        b["created_at"] = local_text(b["created_at"], seconds=False)
        b["months"] = b["months"].replace(",", "、")
        if company is not None:
            line = mine[b["batch_id"]]
            b |= {k: line[k] for k in ("due_fen", "carried_in_fen", "carried_forward_fen")}
        shown_batches.append(b)
    annual_files = []
    if close is not None:
        folder = portal.out / annual.annual_dir(league, year)
        names = sorted(json.loads(close["files"]))
        annual_files = [
            n
            for n in names
            if n != "annual.json"
            and (company is None or n.rsplit(".", 1)[0] == company)
            and (folder / n).is_file()
        ]
        close = {
            **close,
            "closed_at": local_text(close["closed_at"], seconds=False),
            "files": None,
        }
    return {
        **view,
        "batches": shown_batches,
        "clawbacks": claws,
        "payable_months": sorted(ready),
        "close": close,
        "annual": annual_files,
        "start": view["start"],
    }


def batch_detail(portal: Portal, who: Who, batch_id: str) -> dict:
    """One batch with its lines and its files; a company sees its own line only, and its own
    amount as the batch's `amount_fen` (never another company's or the batch's total)."""
    if not portal.has_store():
        raise NotFound(f"没有拨付批次 {batch_id}")
    with portal.store_access():
        found = records.batches(portal.store, batch_id=batch_id)
        if not found:
            raise NotFound(f"没有拨付批次 {batch_id}")
        lines = records.batch_lines(portal.store, batch_id)
    batch = dict(found[0])
    company = _company(who)
    if company is not None:
        lines = [x for x in lines if x["company"] == company]
        batch["amount_fen"] = sum(x["amount_fen"] for x in lines)  # its own, not the batch's
    batch["lines"] = lines
    batch["state_text"] = batches.STATE_TEXT[batch["state"]]
    batch["created_at"] = local_text(batch["created_at"])
    batch["confirmed_at"] = local_text(batch["confirmed_at"]) if batch["confirmed_at"] else None
    batch["files"] = sorted(json.loads(batch["files"])) if company is None else []
    batch["months"] = batch["months"].split(",")
    return batch


def batch_league(portal: Portal, batch_id: str) -> str:
    """The 盟市 a batch belongs to (for the permission check), or 404."""
    found = []
    if portal.has_store():
        with portal.store_access():
            found = records.batches(portal.store, batch_id=batch_id)
    if not found:
        raise NotFound(f"没有拨付批次 {batch_id}")
    return found[0]["league_code"]


def create(portal: Portal, who: Who, league: str, months: list[str]) -> dict:
    """`settle pay`: a batch of sealed months, created by the logged-in user."""
    portal.check_league(league)
    parsed = [Month.parse(m) for m in months]
    with portal.store_access(wait=60):
        batch = batches.create_batch(portal.cfg, portal.store, league, parsed, who.actor)
    return {
        "batch_id": batch["batch_id"],
        "league": league,
        "months": batch["months"].split(","),
        "state": batch["state"],
        "amount_fen": batch["amount_fen"],
        "created_by": batch["created_by"],
        "lines": [
            {
                k: line[k]
                for k in (
                    "company",
                    "months",
                    "due_fen",
                    "carried_in_fen",
                    "amount_fen",
                    "carried_forward_fen",
                )
            }
            for line in batch["lines"]
        ],
        "files": sorted(batch["files"]),
    }


def confirm(portal: Portal, who: Who, batch_id: str, paid_on: dt.date, voucher: str) -> dict:
    """`settle pay confirm`: by a user other than the batch's creator (maker-checker)."""
    with portal.store_access(wait=60):
        batch = batches.confirm_batch(portal.store, batch_id, paid_on, voucher, who.actor)
    return {
        "batch_id": batch_id,
        "state": "paid",
        "paid_on": str(batch["paid_on"]),
        "voucher": batch["voucher"],
        "confirmed_by": batch["confirmed_by"],
        "created_by": batch["created_by"],
        "amount_fen": batch["amount_fen"],
        "warnings": batch["warnings"],
    }


def record_clawback(
    portal: Portal,
    who: Who,
    league: str,
    month: Month,
    source: BinaryIO,
    original_name: str,
    reason: str,
) -> dict:
    """`settle clawback` with an uploaded waybill list (kept only while it is read)."""
    portal.check_league(league)
    suffix = sub.suffix_of(original_name or "")
    folder = Path(tempfile.mkdtemp(prefix="settle-clawback-"))
    try:
        path, _sha, _size = sub.store_upload(
            source, folder, original_name, portal.settings.upload_limit
        )
        path = path.rename(folder / f"{Path(original_name or '追缴清单').stem}{suffix}")
        with portal.store_access(wait=60):
            result = clawbacks.clawback(
                portal.cfg, portal.store, league, month, path, reason, who.actor
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "clawback_id": result.clawback_id,
        "league": league,
        "month": str(month),
        "booked_in_month": result.booked_in_month,
        "total_fen": result.total_fen,
        "lines": [{k: x[k] for k in ("waybill_no", "company", "amount_fen")} for x in result.lines],
    }


def close(portal: Portal, who: Who, league: str, year: int) -> dict:
    """`settle close-year`."""
    portal.check_league(league)
    portal.check_year(year)
    with portal.store_access(wait=60):
        result = annual.close_year(portal.cfg, portal.store, league, year, who.actor)
    t = result.data.totals(None)
    return {
        "league": league,
        "year": year,
        "start": result.data.start,
        "end": result.data.end,
        "due_fen": t["due_fen"],
        "paid_fen": t["paid_fen"],
        "outstanding_fen": t["outstanding_fen"],
        "annual_true_up": result.data.annual_true_up,
        "true_up_fen": result.true_up_fen,
        "true_up_waybills": result.clawbacks,
        "booked_in_month": result.booked_in_month,
        "files": sorted(n for n in result.files if n != "annual.json"),
    }


def batch_file(portal: Portal, batch_id: str, name: str) -> Path:
    """A batch's published file (its league checked by the caller)."""
    league = batch_league(portal, batch_id)
    kind = name.rsplit(".", 1)[-1]
    if name != f"{batch_id}.{kind}" or kind not in FILE_KINDS:
        raise NotFound(f"拨付批次 {batch_id} 没有文件 {name}")
    path = portal.out / batches.payments_dir(league) / name
    if not path.is_file():
        raise NotFound(f"拨付批次 {batch_id} 的文件 {name} 不在输出目录中")
    return path


def annual_file(portal: Portal, league: str, year: int, name: str) -> Path:
    """A closed year's annual statement (the caller checks the company)."""
    portal.check_league(league)
    portal.check_year(year)
    path = portal.out / annual.annual_dir(league, year) / name
    if "/" in name or name.startswith(".") or not name.endswith((".xlsx", ".html")):
        raise NotFound(f"没有文件 {name}")
    if not path.is_file():
        raise NotFound(f"盟市 {league} {year} 预算年度尚未关账，或没有文件 {name}")
    return path
