"""The browser pages of every role: login, months, a month, submissions, runs, seal, void and the
budget year. Thin like `cli.py`: authorize, call the portal, render a template."""

from __future__ import annotations

import datetime as dt
import hmac
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ..clock import today
from ..errors import RefusedError, UsageError
from .access import CSRF_FIELD, SESSION_COOKIE, authorize, client_address, identify
from .accounts import BadLogin, Throttled
from .api import set_session_cookie, upload_field
from .portal import MissingCompanies, NotFound, Portal
from .templating import render

router = APIRouter(include_in_schema=False)


def portal_of(request: Request) -> Portal:
    return request.app.state.portal


#: Login CSRF (an attacker's page logging the victim into the attacker's account): the login
#: form carries a token that must match this cookie, which another site's form cannot send.
LOGIN_COOKIE = "settle_login"
LOGIN_EXPIRED = "登录页面已过期或不是从本站打开的；请在本页重新输入用户名和密码登录"


def login_page(request: Request, message: str | None = None, status: int = 200) -> Response:
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
    response = render(request, None, "login.html", "登录", status, error=message, login_token=token)
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/login",
    )
    return response


def login_token_ok(request: Request, form) -> bool:
    """Whether the login form's token is this browser's login cookie (double submit)."""
    cookie, sent = request.cookies.get(LOGIN_COOKIE), form.get(CSRF_FIELD)
    return bool(cookie and sent) and hmac.compare_digest(str(sent), cookie)


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


@router.get("/login")
async def login_form(request: Request):
    return login_page(request)


@router.post("/login")
async def login(request: Request):
    form = await request.form()
    portal = portal_of(request)
    if not login_token_ok(request, form):
        return login_page(request, LOGIN_EXPIRED, 403)
    try:
        token, _session = await run_in_threadpool(
            portal.accounts.login,
            str(form.get("username", "")).strip(),
            str(form.get("password", "")),
            client_address(request),
        )
    except BadLogin as exc:
        return login_page(request, str(exc), 401)
    except Throttled as exc:
        return login_page(request, str(exc), 429)
    response = see_other("/")
    set_session_cookie(request, response, token)
    return response


@router.post("/logout")
async def logout(request: Request):
    who = await authorize(request, "me")
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        portal_of(request).accounts.logout(token, who.origin)
    response = login_page(request, None)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/")
async def home(request: Request):
    if identify(request, portal_of(request).accounts) is None:
        return login_page(request)
    return see_other("/months")


# --------------------------------------------------------------------------- months


def default_league(portal: Portal, who) -> str:
    """The 盟市 a page opens on: the user's first, or (a company) where it last submitted."""
    if who.user.role != "company":
        return who.user.leagues[0]
    return portal.last_league(who.user.company) or portal.leagues()[0]["code"]


@router.get("/months")
async def months(request: Request, league: str | None = None):
    portal = portal_of(request)
    who = await authorize(request, "months")
    league = league or default_league(portal, who)
    who = await authorize(request, "months", league=league)
    rows = await run_in_threadpool(portal.months, who, league)
    choices = (
        portal.leagues()
        if who.user.role == "company"
        else [x for x in portal.leagues() if x["code"] in who.user.leagues]
    )
    return render(
        request,
        who,
        "months.html",
        f"{portal.league_name(league)}（{league}）结算月份",
        league=league,
        leagues=choices,
        rows=rows,
        last_month=str(today().replace(day=1) - dt.timedelta(days=1))[:7],
    )


@router.get("/open-month")
async def open_month(request: Request, league: str, month: str):
    await authorize(request, "months", league=league)
    portal = portal_of(request)
    return see_other(f"/months/{portal.check_league(league)}/{portal.month(month)}")


async def month_page(
    request: Request, league: str, month: str, who=None, status: int = 200, **extra
) -> Response:
    portal = portal_of(request)
    who = who or await authorize(request, "months", league=league)
    m = portal.month(month)
    portal.check_league(league)
    detail = await run_in_threadpool(portal.month_detail, who, league, m)
    context: dict = {"league": league, "month": str(m), "m": detail}
    if who.user.role == "company":
        context["subs"] = portal.submissions(league, str(m), who.user.company, all_=True)
        if detail["run_id"]:
            try:
                frame = await run_in_threadpool(portal.rejects, league, m, who.user.company)
                context["reject_count"] = frame.height
                context["reject_rows"] = frame.head(100).to_dicts()
            except NotFound:
                pass
    else:
        current = {s["company"]: s for s in portal.submissions(league, str(m)) if not s["late"]}
        context["late"] = portal.late_submissions(league, str(m))
        context["companies"] = [
            {"code": code, "name": c.name, "sub": current.get(code)}
            for code, c in sorted(portal.cfg.companies.items())
        ]
        context["missing"] = portal.missing_companies(league, m)
        context["company_files"] = sorted(
            {f.rsplit(".", 1)[0] for f in detail["statement_files"]}
            - {"summary", "public_notice", "statements"}
        )
    title = f"{portal.league_name(league)}（{league}）{m} 结算"
    return render(request, who, "month.html", title, status, **context, **extra)


@router.get("/months/{league}/{month}")
async def month(request: Request, league: str, month: str):
    return await month_page(request, league, month)


# --------------------------------------------------------------------------- company


@router.get("/submit")
async def submit_form(request: Request, league: str | None = None, month: str | None = None):
    who = await authorize(request, "submit")
    portal = portal_of(request)
    return render(
        request,
        who,
        "submit.html",
        "提交投递日志",
        leagues=portal.leagues(),
        league=league or default_league(portal, who),
        month=month or str(today().replace(day=1) - dt.timedelta(days=1))[:7],
        limit_mb=portal.settings.upload_limit // (1024 * 1024),
    )


@router.post("/submit")
async def submit(request: Request):
    who = await authorize(request, "submit")
    portal = portal_of(request)
    form = await request.form()
    league, month = str(form.get("league", "")), str(form.get("month", ""))
    upload = upload_field(form, "file")
    result = await run_in_threadpool(
        portal.submit, who, league, portal.month(month), upload.file, upload.filename or ""
    )
    return see_other(f"/submissions/{result['submission_id']}?new=1")


@router.get("/submissions/{submission_id}")
async def submission(request: Request, submission_id: int, new: int = 0):
    portal = portal_of(request)
    row = await run_in_threadpool(portal.submission_report, submission_id)
    if row is None:
        await authorize(request, "company_data")
        raise NotFound(f"没有编号为 {submission_id} 的提交")
    who = await authorize(
        request, "company_data", league=row["league_code"], company=row["company"]
    )
    return render(
        request,
        who,
        "report.html",
        f"校验报告：{row['original_name']}",
        s=row,
        r=row["report"],
        new=bool(new),
        league_name=portal.league_name(row["league_code"]),
    )


@router.post("/months/{league}/{month}/reconcile")
async def reconcile(request: Request, league: str, month: str):
    who = await authorize(request, "reconcile")
    portal = portal_of(request)
    upload = upload_field(await request.form(), "claim")
    result = await run_in_threadpool(
        portal.reconcile, who, league, portal.month(month), upload.file, upload.filename or ""
    )
    return render(
        request,
        who,
        "reconcile.html",
        f"{portal.league_name(league)}（{league}）{month} 对账结果",
        league=league,
        month=month,
        r=result,
        claim=upload.filename,
    )


# --------------------------------------------------------------------------- administration


@router.post("/months/{league}/{month}/run")
async def run(request: Request, league: str, month: str):
    who = await authorize(request, "run", league=league)
    portal = portal_of(request)
    form = await request.form()
    try:
        job = await run_in_threadpool(
            portal.start_run,
            who,
            league,
            portal.month(month),
            form.get("replace") == "1",
            form.get("force") == "1",
            form.get("confirm_missing") == "1",
            form.get("supplementary") == "1",
        )
    except MissingCompanies as exc:
        return await month_page(request, league, month, who, 409, error=str(exc))
    return see_other(f"/jobs/{job.id}")


@router.get("/jobs/{job_id}")
async def job(request: Request, job_id: str):
    portal = portal_of(request)
    job = portal.jobs.get(job_id)
    who = await authorize(request, "run", league=job.league if job else None)
    if job is None:
        raise NotFound("没有这个结算任务（服务重启后任务记录不保留）；结算批次请在月份页面查看")
    return render(
        request,
        who,
        "job.html",
        f"{portal.league_name(job.league)}（{job.league}）{job.month} {job.what}",
        job=job.public(),
        refresh=2 if job.state == "running" else None,
        company_names={c: portal.company_name(c) for c in portal.cfg.companies},
    )


def _date(form, key: str, label: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(form.get(key, "")).strip())
    except ValueError:
        raise UsageError(f"{label}应为日期（年-月-日），如 2025-04-20") from None


@router.post("/months/{league}/{month}/seal")
async def seal(request: Request, league: str, month: str):
    who = await authorize(request, "seal", league=league)
    portal = portal_of(request)
    form = await request.form()
    try:
        approval = {
            "notice_start": _date(form, "notice_start", "公示开始日期"),
            "notice_end": _date(form, "notice_end", "公示结束日期"),
            "approved_by": str(form.get("approved_by", "")),
            "approval_ref": str(form.get("approval_ref", "")),
        }
        if form.get("confirm") != "1":
            raise UsageError("请勾选“我已审核本月结算单并确认封存”后再封存")
        row = await run_in_threadpool(portal.seal, who, league, portal.month(month), approval)
    except (RefusedError, UsageError) as exc:
        return await month_page(request, league, month, who, 409, error=str(exc), form=dict(form))
    return await month_page(
        request,
        league,
        month,
        who,
        notice=f"已封存：审核人 {row['reviewed_by']}，审批人 {row['approved_by']}，审批文号 "
        f"{row['approval_ref']}，公示 {row['notice_start']} 至 {row['notice_end']}；结算单已重新生成并显示封存信息。"
        + "".join(f"注意：{w}。" for w in row["warnings"]),
    )


@router.post("/months/{league}/{month}/void")
async def void(request: Request, league: str, month: str):
    who = await authorize(request, "void", league=league)
    portal = portal_of(request)
    form = await request.form()
    try:
        if form.get("confirm") != "1":
            raise UsageError("请勾选“确认作废”后再作废")
        result = await run_in_threadpool(
            portal.void, who, league, portal.month(month), str(form.get("reason", ""))
        )
    except (RefusedError, UsageError) as exc:
        return await month_page(request, league, month, who, 409, error=str(exc))
    stale = "；".join(f"{s['league']} {s['month']}" for s in result["stale"])
    return await month_page(
        request,
        league,
        month,
        who,
        notice=f"已作废结算批次 {result['run_id']}；该月的运单已释放，各企业可重新提交。"
        + (f"以下月份需重新结算：{stale}。" if stale else ""),
    )


@router.get("/status")
async def status(request: Request, league: str | None = None, year: int | None = None):
    who = await authorize(request, "status")
    portal = portal_of(request)
    league = league or who.user.leagues[0]
    who = await authorize(request, "status", league=league)
    year = year or today().year
    try:
        data = await run_in_threadpool(portal.status, league, year)
        error = None
    except (UsageError, NotFound) as exc:
        data, error = None, str(exc)
    return render(
        request,
        who,
        "status.html",
        f"{portal.league_name(league)}（{league}）{year} 预算年度执行情况",
        league=league,
        year=year,
        data=data,
        error=error,
        leagues=[x for x in portal.leagues() if x["code"] in who.user.leagues],
    )
