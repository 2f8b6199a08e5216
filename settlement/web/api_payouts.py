"""The paying-out API (SPEC §10 in the portal of §11): batches, their confirmation (maker-checker),
clawbacks, the year's close, and what a company was paid. Thin: authorize, call
`web.payouts`, answer. Money in integer 分."""

from __future__ import annotations

import datetime as dt

from fastapi import Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ..clock import today
from . import payouts
from .access import authorize
from .api import MEDIA, as_json, download, multipart, portal_of, router, split_name, upload_field

MEDIA_PAYOUT = {**MEDIA, "parquet": "application/vnd.apache.parquet"}


@router.get("/payouts", summary="资金拨付：逐月应付、拨付批次、未拨付、追缴（企业只看到本企业）")
async def overview(
    request: Request,
    league: str = Query(description="盟市代码"),
    year: int | None = Query(None, description="预算年度，默认今年"),
):
    who = await authorize(request, "payouts", league=league)
    year = year or today().year
    data = await run_in_threadpool(payouts.overview, portal_of(request), who, league, year)
    return as_json({"league": league, "year": year, **data})


class BatchBody(BaseModel):
    league: str = Field(description="盟市代码")
    months: list[str] = Field(description="已封存、尚未拨付的月份 YYYY-MM")


@router.post("/batches", summary="生成拨付批次（同 settle pay；管理员）")
async def create_batch(request: Request, body: BatchBody):
    who = await authorize(request, "pay", league=body.league)
    portal = portal_of(request)
    return as_json(
        await run_in_threadpool(payouts.create, portal, who, body.league, body.months), 201
    )


@router.get("/batches/{batch_id}", summary="一个拨付批次及其各行（企业只看到本企业的一行）")
async def batch(request: Request, batch_id: str):
    await authorize(request, "payouts")
    portal = portal_of(request)
    league = await run_in_threadpool(payouts.batch_league, portal, batch_id)
    who = await authorize(request, "payouts", league=league)
    return as_json(await run_in_threadpool(payouts.batch_detail, portal, who, batch_id))


class ConfirmBody(BaseModel):
    paid_on: dt.date = Field(description="拨付日期（不晚于今天）")
    voucher: str = Field(description="付款凭证号")


@router.post(
    "/batches/{batch_id}/confirm",
    summary="确认拨付：已生成 → 已拨付（生成批次的人不能确认）",
)
async def confirm_batch(request: Request, batch_id: str, body: ConfirmBody):
    await authorize(request, "pay")
    portal = portal_of(request)
    league = await run_in_threadpool(payouts.batch_league, portal, batch_id)
    who = await authorize(request, "pay", league=league)
    return as_json(
        await run_in_threadpool(payouts.confirm, portal, who, batch_id, body.paid_on, body.voucher)
    )


@router.get(
    "/batches/{batch_id}/files/{name}",
    summary="拨付批次文件 ID.xlsx / ID.csv / ID.parquet（管理员、审计）",
)
async def batch_file(request: Request, batch_id: str, name: str):
    _stem, ext = split_name(name, ("xlsx", "csv", "parquet"))
    await authorize(request, "payment_files")
    portal = portal_of(request)
    league = await run_in_threadpool(payouts.batch_league, portal, batch_id)
    await authorize(request, "payment_files", league=league)
    path = await run_in_threadpool(payouts.batch_file, portal, batch_id, name)
    return download(path, f"拨付清单-{name}", MEDIA_PAYOUT[ext])


@router.post(
    "/clawbacks",
    summary="登记追缴（同 settle clawback；管理员）：multipart 字段 waybills（运单号、可选金额）",
    openapi_extra=multipart("waybills"),
)
async def clawback(request: Request, league: str, month: str, reason: str = ""):
    who = await authorize(request, "pay", league=league)
    portal = portal_of(request)
    form = await request.form()
    upload = upload_field(form, "waybills")
    reason = reason or str(form.get("reason", ""))
    result = await run_in_threadpool(
        payouts.record_clawback,
        portal,
        who,
        league,
        portal.month(month),
        upload.file,
        upload.filename or "",
        reason,
    )
    return as_json(result, 201)


class CloseBody(BaseModel):
    league: str
    year: int = Field(description="预算年度")


@router.post("/close-year", summary="年度关账（同 settle close-year；管理员）")
async def close_year(request: Request, body: CloseBody):
    who = await authorize(request, "pay", league=body.league)
    portal = portal_of(request)
    return as_json(await run_in_threadpool(payouts.close, portal, who, body.league, body.year))


@router.get(
    "/annual/{league}/{year}/{name}",
    summary="年度结算表 C.xlsx / C.html（summary：盟市汇总）",
)
async def annual_statement(request: Request, league: str, year: int, name: str):
    stem, ext = split_name(name, ("xlsx", "html"))
    if stem == "summary":
        await authorize(request, "payment_files", league=league)
    else:
        await authorize(request, "payouts", league=league, company=stem)
    path = await run_in_threadpool(payouts.annual_file, portal_of(request), league, year, name)
    return download(path, f"年度结算表-{league}-{year}-{name}", MEDIA[ext], document=ext == "html")
