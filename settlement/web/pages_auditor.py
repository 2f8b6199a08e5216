"""The auditors' pages: the read-only SQL console, canned queries, verify, explain and the log of
every state change. Read-only: nothing here changes the store."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from ..errors import RefusedError, SettlementError, UsageError
from .access import authorize
from .api import scoped_events
from .portal import NotFound, Portal
from .templating import render

router = APIRouter(include_in_schema=False)
SHOWN_ROWS = 1000  # rows of a result shown on the page (the API returns them all)

EXAMPLE = (
    "SELECT league, month, company, COUNT(*) AS parcels, SUM(subsidy_fen) * 0.01 AS yuan\n"
    "FROM ledger GROUP BY ALL ORDER BY ALL"
)


def portal_of(request: Request) -> Portal:
    return request.app.state.portal


def result_context(frame) -> dict:
    return {
        "columns": frame.columns,
        "rows": frame.head(SHOWN_ROWS).rows(),
        "row_count": frame.height,
        "shown": min(frame.height, SHOWN_ROWS),
    }


@router.get("/sql")
async def sql_form(request: Request):
    who = await authorize(request, "sql")
    return render(
        request,
        who,
        "sql.html",
        "SQL 查询（只读）",
        query=EXAMPLE,
        limits=portal_of(request).settings,
    )


@router.post("/sql")
async def sql(request: Request):
    who = await authorize(request, "sql")
    form = await request.form()
    query = str(form.get("query", ""))
    context: dict = {"query": query, "limits": portal_of(request).settings}
    try:
        frame = await run_in_threadpool(portal_of(request).sql, query)
        context["result"] = result_context(frame)
    except (UsageError, RefusedError) as exc:
        context["error"] = str(exc)
    return render(
        request, who, "sql.html", "SQL 查询（只读）", 200 if "result" in context else 422, **context
    )


@router.get("/queries")
async def queries(request: Request):
    who = await authorize(request, "sql")
    portal = portal_of(request)
    return render(
        request,
        who,
        "queries.html",
        "预置查询",
        queries=list(portal.queries().values()),
        defaults={"league": who.user.leagues[0]},
    )


@router.post("/queries/{name}")
async def run_query(request: Request, name: str):
    who = await authorize(request, "sql")
    portal = portal_of(request)
    form = await request.form()
    queries = portal.queries()
    if name not in queries:
        raise NotFound(f"没有名为 {name} 的预置查询")
    params = {p: str(form.get(p, "")).strip() for p in queries[name].params}
    for league in portal.query_leagues(name, params):
        await authorize(request, "sql", league=league)
    context: dict = {"queries": list(queries.values()), "chosen": name, "given": params}
    try:
        frame = await run_in_threadpool(portal.run_query, name, params)
        context["result"] = result_context(frame)
    except (UsageError, RefusedError) as exc:
        context["error"] = str(exc)
    return render(
        request,
        who,
        "queries.html",
        f"预置查询：{queries[name].question}",
        200 if "result" in context else 422,
        defaults=params,
        **context,
    )


@router.get("/verify")
async def verify_form(request: Request):
    who = await authorize(request, "verify")
    return render(request, who, "verify.html", "全面校验", report=None)


@router.post("/verify")
async def verify(request: Request):
    who = await authorize(request, "verify")
    try:
        report = await run_in_threadpool(portal_of(request).verify, who)
        error = None
    except (NotFound, RefusedError) as exc:
        report, error = None, str(exc)
    return render(request, who, "verify.html", "全面校验", report=report, error=error)


@router.get("/explain")
async def explain(request: Request, waybill: str | None = None):
    who = await authorize(request, "explain")
    lines, error, status = None, None, 200
    if waybill is not None:
        try:
            lines = await run_in_threadpool(portal_of(request).explain, who, waybill)
        except (UsageError, NotFound, SettlementError) as exc:
            error, status = str(exc), 404 if isinstance(exc, NotFound) else 422
    return render(
        request,
        who,
        "explain.html",
        "运单追溯",
        status,
        waybill=waybill or "",
        lines=lines,
        error=error,
    )


@router.get("/events")
async def events(request: Request):
    who = await authorize(request, "events")
    data = await run_in_threadpool(portal_of(request).events, 500)
    return render(
        request,
        who,
        "events.html",
        "操作日志（谁、做了什么、何时、从哪里）",
        **scoped_events(data, who.user.leagues),
    )
