"""The JSON API (SPEC §11) for company systems and the pages' downloads. Thin: parse, authorize,
call the portal, answer. Money in integer 分 (`*_fen`)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ..errors import UsageError
from ..statements import excel_safe_frame
from .access import SESSION_COOKIE, authenticated, authorize, client_address
from .accounts import SESSION_HOURS
from .portal import NotFound, Portal

router = APIRouter(prefix="/api", tags=["API"], dependencies=[Depends(authenticated)])
#: Login is the one route open to anyone.
public = APIRouter(prefix="/api", tags=["API"])
CSV_BOM = "\ufeff"  # Excel opens UTF-8 CSV with Chinese correctly only with it


def portal_of(request: Request) -> Portal:
    return request.app.state.portal


def as_json(data: Any, status: int = 200) -> Response:
    """JSON of anything the library returns (dates, decimals as text), Chinese unescaped."""
    return Response(
        json.dumps(data, ensure_ascii=False, default=str),
        status_code=status,
        media_type="application/json",
    )


def multipart(field: str) -> dict:
    """The OpenAPI description of a route that reads one uploaded file from its form itself."""
    schema = {
        "type": "object",
        "properties": {field: {"type": "string", "format": "binary"}},
        "required": [field],
    }
    return {"requestBody": {"content": {"multipart/form-data": {"schema": schema}}}}


def upload_field(form, name: str) -> UploadFile:
    value = form.get(name)
    if not isinstance(value, UploadFile):
        raise UsageError(f"请求中没有文件字段“{name}”（multipart/form-data）")
    return value


def download(path, filename: str, media_type: str | None = None, document=False, cleanup=None):
    """A file as an attachment (a statement's HTML is shown, but can run nothing)."""
    response = FileResponse(
        path,
        media_type=media_type,
        filename=filename,
        content_disposition_type="inline" if document else "attachment",
        background=BackgroundTask(cleanup) if cleanup else None,
    )
    if document:
        from .app import CSP_DOCUMENT

        response.headers["content-security-policy"] = CSP_DOCUMENT
    return response


# --------------------------------------------------------------------------- sessions


class LoginBody(BaseModel):
    username: str = Field(description="用户名")
    password: str = Field(description="密码")


@public.post("/login", summary="登录：返回会话 Cookie 和 CSRF 令牌")
async def login(request: Request, body: LoginBody):
    portal = portal_of(request)
    token, session = await run_in_threadpool(
        portal.accounts.login, body.username, body.password, client_address(request)
    )
    response = JSONResponse(
        {
            "csrf_token": session.csrf_token,
            "user": session.user.name,
            "role": session.user.role,
            "expires_at": session.expires_at,
        }
    )
    set_session_cookie(request, response, token)
    return response


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    """HttpOnly, SameSite=Strict, Secure behind HTTPS; the server ends it sooner when unused."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=SESSION_HOURS * 3600,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


@router.post("/logout", summary="退出登录")
async def logout(request: Request):
    who = await authorize(request, "me")
    token = request.cookies.get(SESSION_COOKIE)
    if token and who.via == "session":
        portal_of(request).accounts.logout(token, who.origin)
    response = JSONResponse({"detail": "已退出登录"})
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/me", summary="当前用户")
async def me(request: Request):
    who = await authorize(request, "me")
    u = who.user
    return {"user": u.name, "role": u.role, "company": u.company, "leagues": list(u.leagues)}


# --------------------------------------------------------------------------- months


@router.get("/months", summary="某盟市的结算月份：状态、受理件数、应付（企业只看到本企业）")
async def months(request: Request, league: str = Query(description="盟市代码，如 150700")):
    who = await authorize(request, "months", league=league)
    portal = portal_of(request)
    rows = await run_in_threadpool(portal.months, who, league)
    return as_json({"league": league, "league_name": portal.league_name(league), "months": rows})


@router.get("/status", summary="预算年度逐月状态（同 settle status）")
async def status(request: Request, league: str, year: int):
    await authorize(request, "status", league=league)
    return as_json(await run_in_threadpool(portal_of(request).status, league, year))


# --------------------------------------------------------------------------- submissions


@router.post(
    "/submissions",
    summary="企业提交某月投递日志，返回校验报告（同 settle validate）",
    openapi_extra=multipart("file"),
)
async def submit(request: Request, league: str, month: str):
    who = await authorize(request, "submit")
    portal = portal_of(request)
    upload = upload_field(await request.form(), "file")
    result = await run_in_threadpool(
        portal.submit, who, league, portal.month(month), upload.file, upload.filename or ""
    )
    return as_json(result, 201)


@router.get("/submissions", summary="某月的当前提交（企业只看到本企业）")
async def list_submissions(request: Request, league: str, month: str, company: str | None = None):
    who = await authorize(request, "company_data", league=league, company=company)
    portal = portal_of(request)
    if who.user.role == "company":
        company = who.user.company
    rows = await run_in_threadpool(
        portal.submissions, portal.check_league(league), str(portal.month(month)), company
    )
    return as_json(rows)


@router.get("/submissions/{submission_id}", summary="一次提交及其校验报告")
async def one_submission(request: Request, submission_id: int):
    portal = portal_of(request)
    row = await run_in_threadpool(portal.submission_report, submission_id)
    if row is None:
        await authorize(request, "company_data")
        raise NotFound(f"没有编号为 {submission_id} 的提交")
    await authorize(request, "company_data", league=row["league_code"], company=row["company"])
    row.pop("path", None)
    return as_json(row)


# --------------------------------------------------------------------------- runs, seal, void


class RunBody(BaseModel):
    league: str = Field(description="盟市代码")
    month: str = Field(description="结算月份 YYYY-MM")
    replace: bool = Field(False, description="替换该月已有的有效结算（先不加，查看各企业的变化）")
    force: bool = Field(False, description="月份未结束，或超过一半的行不属于本盟市或本月时仍然结算")
    wait: bool = Field(True, description="等结算完成再返回；false 时立即返回 202 和任务地址")


@router.post("/runs", summary="按各企业当前提交结算该月（管理员）")
async def start_run(request: Request, body: RunBody):
    who = await authorize(request, "run", league=body.league)
    portal = portal_of(request)
    job = await run_in_threadpool(
        portal.start_run, who, body.league, portal.month(body.month), body.replace, body.force
    )
    if not body.wait:
        return as_json(job.public() | {"status_url": f"/api/jobs/{job.id}"}, 202)
    await run_in_threadpool(job.done.wait)
    status = {"done": 200, "confirm": 409, "refused": 409, "failed": 500}[job.state]
    return as_json(job.public() | {"detail": job.error} if job.error else job.public(), status)


@router.get("/jobs/{job_id}", summary="结算任务的进度和结果（管理员）")
async def job_status(request: Request, job_id: str):
    job = portal_of(request).jobs.get(job_id)
    await authorize(request, "run", league=job.league if job else None)
    if job is None:
        raise NotFound(
            f"没有编号为 {job_id} 的结算任务（服务重启后任务记录不保留，结算批次见月份页面）"
        )
    return as_json(job.public())


class SealBody(BaseModel):
    league: str
    month: str
    notice_start: dt.date = Field(description="公示开始日期")
    notice_end: dt.date = Field(description="公示结束日期（含），须早于今天")
    approval_ref: str = Field(description="审批文号")
    approved_by: str = Field("", description="审批人（必填）")


@router.post("/seal", summary="封存（审核人为当前用户；运行结算的人不能封存）")
async def seal(request: Request, body: SealBody):
    who = await authorize(request, "seal", league=body.league)
    portal = portal_of(request)
    approval = body.model_dump(
        include={"notice_start", "notice_end", "approval_ref", "approved_by"}
    )
    row = await run_in_threadpool(portal.seal, who, body.league, portal.month(body.month), approval)
    return as_json(row)


class VoidBody(BaseModel):
    league: str
    month: str
    reason: str = Field(description="作废原因")


@router.post("/void", summary="作废该月有效结算（管理员）")
async def void(request: Request, body: VoidBody):
    who = await authorize(request, "void", league=body.league)
    portal = portal_of(request)
    result = await run_in_threadpool(
        portal.void, who, body.league, portal.month(body.month), body.reason
    )
    return as_json(result)


# --------------------------------------------------------------------------- documents


def split_name(name: str, allowed: tuple[str, ...]) -> tuple[str, str]:
    stem, dot, ext = name.rpartition(".")
    if not dot or ext not in allowed or not stem:
        raise NotFound(f"没有文件 {name}")
    return stem, ext


MEDIA = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "html": "text/html; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
}


@router.get(
    "/statements/{league}/{month}/{name}", summary="结算单 C.xlsx / C.html（summary：盟市汇总）"
)
async def statement(request: Request, league: str, month: str, name: str):
    stem, ext = split_name(name, ("xlsx", "html"))
    if stem == "summary":
        await authorize(request, "month_all", league=league)
    else:
        await authorize(request, "company_data", league=league, company=stem)
    portal = portal_of(request)
    path = portal.statement_file(league, portal.month(month), f"{stem}.{ext}")
    return download(
        path, f"结算单-{league}-{month}-{stem}.{ext}", MEDIA[ext], document=ext == "html"
    )


@router.get("/notice/{league}/{month}/{name}", summary="公示名单 public_notice.html / .csv")
async def notice(request: Request, league: str, month: str, name: str):
    stem, ext = split_name(name, ("html", "csv"))
    await authorize(request, "notice", league=league)
    if stem != "public_notice":
        raise NotFound(f"没有文件 {name}")
    portal = portal_of(request)
    path = portal.statement_file(league, portal.month(month), name)
    return download(path, f"公示名单-{league}-{month}.{ext}", MEDIA[ext], document=ext == "html")


@router.get("/details/{league}/{month}/{name}", summary="企业投递量明细 C.csv")
async def detail(request: Request, league: str, month: str, name: str):
    company, _ext = split_name(name, ("csv",))
    await authorize(request, "company_data", league=league, company=company)
    portal = portal_of(request)
    path = await run_in_threadpool(portal.detail_csv, league, portal.month(month), company)
    return download(
        path,
        f"投递量明细-{league}-{month}-{company}.csv",
        MEDIA["csv"],
        cleanup=lambda: shutil.rmtree(path.parent, ignore_errors=True),
    )


@router.get("/rejects/{league}/{month}/{name}", summary="企业剔除清单 C.csv / C.json")
async def rejects(request: Request, league: str, month: str, name: str):
    company, ext = split_name(name, ("csv", "json"))
    await authorize(request, "company_data", league=league, company=company)
    portal = portal_of(request)
    frame = await run_in_threadpool(portal.rejects, league, portal.month(month), company)
    if ext == "json":
        return as_json({"rows": frame.height, "rejects": frame.to_dicts()})
    return Response(
        CSV_BOM + excel_safe_frame(frame).write_csv(),  # text from logs: no formulas
        media_type=MEDIA["csv"],
        headers={
            "content-disposition": f"attachment; filename*=UTF-8''rejects-{league}-{month}-{company}.csv"
        },
    )


# --------------------------------------------------------------------------- reconciliation


@router.post(
    "/reconcile",
    summary="企业上传申报文件，与已结算月份逐行对账，返回各状态的行数和金额",
    openapi_extra=multipart("claim"),
)
async def reconcile_claim(request: Request, league: str, month: str):
    who = await authorize(request, "reconcile")
    portal = portal_of(request)
    upload = upload_field(await request.form(), "claim")
    result = await run_in_threadpool(
        portal.reconcile, who, league, portal.month(month), upload.file, upload.filename or ""
    )
    return as_json(result)


@router.get("/reconciliation/{league}/{month}/{name}", summary="对账明细 C.xlsx")
async def reconciliation(request: Request, league: str, month: str, name: str):
    company, _ext = split_name(name, ("xlsx",))
    await authorize(request, "company_data", league=league, company=company)
    portal = portal_of(request)
    path = portal.reconciliation_file(league, portal.month(month), company)
    return download(path, f"对账-{league}-{month}-{company}.xlsx", MEDIA["xlsx"])


# --------------------------------------------------------------------------- auditors


class SqlBody(BaseModel):
    query: str = Field(description="一条只读 SELECT 或 EXPLAIN")


def frame_json(frame) -> dict:
    return {"columns": frame.columns, "rows": frame.rows(), "row_count": frame.height}


@router.post("/sql", summary="只读 SQL（同 settle sql，有时间和行数限制）")
async def sql(request: Request, body: SqlBody):
    await authorize(request, "sql")
    frame = await run_in_threadpool(portal_of(request).sql, body.query)
    return as_json(frame_json(frame))


@router.get("/queries", summary="预置查询及其参数")
async def queries(request: Request):
    await authorize(request, "sql")
    return as_json(
        [
            {"name": q.name, "question": q.question, "params": q.params, "columns": q.columns}
            for q in portal_of(request).queries().values()
        ]
    )


class QueryBody(BaseModel):
    params: dict[str, str] = Field(default_factory=dict)


@router.post("/queries/{name}", summary="运行预置查询")
async def run_query(request: Request, name: str, body: QueryBody):
    await authorize(request, "sql")
    frame = await run_in_threadpool(portal_of(request).run_query, name, body.params)
    return as_json(frame_json(frame))


@router.post("/verify", summary="全面校验（同 settle verify）")
async def verify(request: Request):
    who = await authorize(request, "verify")
    return as_json(await run_in_threadpool(portal_of(request).verify, who))


@router.get("/explain", summary="一个运单的完整计算过程（同 settle explain）")
async def explain(request: Request, waybill: str):
    await authorize(request, "explain")
    return as_json({"lines": await run_in_threadpool(portal_of(request).explain, waybill)})


@router.get(
    "/events", summary="状态变更日志：结算库 events 表和门户日志（谁、做了什么、何时、从哪里）"
)
async def events(request: Request, limit: int = Query(500, ge=1, le=10_000)):
    who = await authorize(request, "events")
    data = await run_in_threadpool(portal_of(request).events, limit)
    return as_json(scoped_events(data, who.user.leagues))


def scoped_events(data: dict, leagues: tuple[str, ...]) -> dict:
    """An auditor's view: events of its 盟市, and those of none (logins, accounts)."""
    return {
        source: [e for e in rows if not e.get("league_code") or e["league_code"] in leagues]
        for source, rows in data.items()
    }
