"""The 资金拨付 pages (SPEC §10 in the portal): a 盟市's budget year month by month with its
batches, clawbacks and annual close; one batch with its lines. The administration creates and
confirms batches (not the same person), records clawbacks and closes the year; a company sees
its own payments, clawbacks and annual statement; auditors see everything, read-only."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ..clock import today
from ..errors import RefusedError, UsageError
from ..money import format_yuan
from ..payout.clawbacks import PROBLEMS
from . import payouts
from .access import authorize
from .api import upload_field
from .pages import _date, default_league, portal_of, see_other
from .templating import render

router = APIRouter(include_in_schema=False)


async def payouts_page(
    request: Request, league: str | None, year: int | None, who=None, status=200, **extra
) -> Response:
    portal = portal_of(request)
    who = who or await authorize(request, "payouts")
    league = league or default_league(portal, who)
    who = await authorize(request, "payouts", league=league)
    year = year or today().year
    data = await run_in_threadpool(payouts.overview, portal, who, league, year)
    leagues = (
        portal.leagues()
        if who.user.role == "company"
        else [x for x in portal.leagues() if x["code"] in who.user.leagues]
    )
    title = f"{portal.league_name(league)}（{league}）{year} 预算年度资金拨付"
    if who.user.role == "company":
        title = f"{portal.league_name(league)}（{league}）{year} 预算年度：本企业拨付与追缴"
    return render(
        request,
        who,
        "payouts.html",
        title,
        status,
        league=league,
        year=year,
        d=data,
        leagues=leagues,
        problems=PROBLEMS,
        **extra,
    )


@router.get("/payouts")
async def overview(request: Request, league: str | None = None, year: int | None = None):
    return await payouts_page(request, league, year)


@router.post("/payouts/{league}/batches")
async def create(request: Request, league: str):
    who = await authorize(request, "pay", league=league)
    portal = portal_of(request)
    form = await request.form()
    months = [str(m) for m in form.getlist("month")]
    year = int(str(form.get("year") or today().year))
    try:
        if not months:
            raise UsageError("请至少勾选一个已封存的月份")
        batch = await run_in_threadpool(payouts.create, portal, who, league, months)
    except (RefusedError, UsageError) as exc:
        return await payouts_page(request, league, year, who, 409, error=str(exc))
    return see_other(f"/payouts/batches/{batch['batch_id']}?created=1")


async def batch_page(request: Request, batch_id: str, who=None, status=200, **extra) -> Response:
    portal = portal_of(request)
    await authorize(request, "payouts")
    league = await run_in_threadpool(payouts.batch_league, portal, batch_id)
    who = who or await authorize(request, "payouts", league=league)
    batch = await run_in_threadpool(payouts.batch_detail, portal, who, batch_id)
    return render(
        request,
        who,
        "batch.html",
        f"拨付批次 {batch_id}（{batch['state_text']}）",
        status,
        b=batch,
        league=league,
        company_names={c: portal.company_name(c) for c in portal.cfg.companies},
        today=str(today()),
        **extra,
    )


@router.get("/payouts/batches/{batch_id}")
async def batch(request: Request, batch_id: str, created: int = 0):
    notice = None
    if created:
        notice = "拨付批次已生成（已生成）：请下载拨付清单办理拨付；拨付后由另一位管理员登记拨付日期和凭证号。"
    return await batch_page(request, batch_id, notice=notice)


@router.post("/payouts/batches/{batch_id}/confirm")
async def confirm(request: Request, batch_id: str):
    await authorize(request, "pay")
    portal = portal_of(request)
    league = await run_in_threadpool(payouts.batch_league, portal, batch_id)
    who = await authorize(request, "pay", league=league)
    form = await request.form()
    try:
        paid_on = _date(form, "paid_on", "拨付日期")
        result = await run_in_threadpool(
            payouts.confirm, portal, who, batch_id, paid_on, str(form.get("voucher", ""))
        )
    except (RefusedError, UsageError) as exc:
        return await batch_page(request, batch_id, who, 409, error=str(exc), form=dict(form))
    return await batch_page(
        request,
        batch_id,
        who,
        notice=f"已登记拨付：{result['paid_on']}，凭证号 {result['voucher']}，确认人 "
        f"{result['confirmed_by']}（经办人 {result['created_by']}）。",
    )


@router.post("/payouts/{league}/clawbacks")
async def clawback(request: Request, league: str):
    who = await authorize(request, "pay", league=league)
    portal = portal_of(request)
    form = await request.form()
    year = int(str(form.get("year") or today().year))
    try:
        upload = upload_field(form, "waybills")
        result = await run_in_threadpool(
            payouts.record_clawback,
            portal,
            who,
            league,
            portal.month(str(form.get("month", ""))),
            upload.file,
            upload.filename or "",
            str(form.get("reason", "")),
        )
    except (RefusedError, UsageError) as exc:
        lines = getattr(exc, "details", [])
        return await payouts_page(
            request, league, year, who, 409, error=str(exc), error_lines=lines
        )
    return await payouts_page(
        request,
        league,
        year,
        who,
        notice=f"已登记追缴 {result['clawback_id']}：{len(result['lines'])} 个运单，合计 "
        f"{format_yuan(result['total_fen'])} 元，计入 {result['booked_in_month']} 结算单。",
    )


@router.post("/payouts/{league}/close-year")
async def close_year(request: Request, league: str):
    who = await authorize(request, "pay", league=league)
    portal = portal_of(request)
    form = await request.form()
    year = int(str(form.get("year") or today().year))
    try:
        if form.get("confirm") != "1":
            raise UsageError("请勾选“确认关账”后再关账：每个预算年度只能关账一次")
        result = await run_in_threadpool(payouts.close, portal, who, league, year)
    except (RefusedError, UsageError) as exc:
        return await payouts_page(request, league, year, who, 409, error=str(exc))
    notice = f"已关账 {year} 预算年度（{result['start']} 至 {result['end']}），年度结算表已生成。"
    if result["true_up_waybills"]:
        notice += (
            f"年度盈亏平衡清算追缴 {format_yuan(-result['true_up_fen'])} 元"
            f"（{result['true_up_waybills']} 个运单），计入 {result['booked_in_month']}。"
        )
    return await payouts_page(request, league, year, who, notice=notice)
