"""Policy simulation in the portal (SPEC §9, §11): the office's page and the same as an API.

The administration of a 盟市 starts a simulation of its settled months under a variant (the
current policy edited in the page, an uploaded TOML file, or TOML text in the API), follows its
progress and reads the summary; auditors of the 盟市 may read finished simulations (they check
how the office designs its rates) but not start one; companies never see them. Thin like
`cli.py`: authorize, call `simulations.Simulations`, render.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ..errors import ConfigError, SettlementError
from .access import authenticated, authorize
from .api import as_json, download
from .messages import for_portal
from .portal import NotFound
from .simulations import EDITED_NAME, FILES, POSTED_NAME, Simulations, variant_upload
from .templating import render

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api", tags=["API"], dependencies=[Depends(authenticated)])


def simulations_of(request: Request) -> Simulations:
    return request.app.state.simulations


def status_of(exc: Exception) -> int:
    from .app import STATUS

    return next((code for kind, code in STATUS if isinstance(exc, kind)), 500)


def problem_of(exc: SettlementError) -> dict:
    """A refusal as the form shows it: the loader's file, key and problem when it has them."""
    if isinstance(exc, ConfigError):
        return {"detail": str(exc), "file": exc.path, "key": exc.key, "problem": exc.problem}
    return {"detail": for_portal(str(exc))}


async def one(request: Request, sim_id: str) -> tuple[dict, object]:
    """A simulation the user may read (404 after the permission check when there is none)."""
    sims = simulations_of(request)
    row = await run_in_threadpool(sims.row, sim_id)
    if row is None:
        await authorize(request, "simulations")
        raise NotFound(f"没有编号为 {sim_id} 的模拟")
    who = await authorize(request, "simulations", league=row["league_code"])
    return sims.describe(row), who


# --------------------------------------------------------------------------- pages


async def form_page(request: Request, who, league: str, status: int = 200, **given) -> Response:
    sims = simulations_of(request)
    portal = sims.portal
    months = await run_in_threadpool(sims.months, league)
    context = {
        "league": league,
        "leagues": [x for x in portal.leagues() if x["code"] in who.user.leagues],
        "months": months,
        "first": given.get("first") or (months[0] if months else ""),
        "last": given.get("last") or (months[-1] if months else ""),
        "policy": given.get("policy") or sims.policy_text(league),
        "policy_file": Path(portal.cfg.policy(league).path).name,
        "classes": sims.classes(league),
        "scale": given.get("scale", {}),
        "fit": given.get("fit", False),
        "problem": given.get("problem"),
        "simulations": await run_in_threadpool(sims.list, league),
        "busy": sims.jobs.running(),
    }
    title = f"{portal.league_name(league)}（{league}）补贴政策模拟测算"
    return render(request, who, "simulations.html", title, status, **context)


@router.get("/simulations")
async def simulations_page(request: Request, league: str | None = None):
    who = await authorize(request, "simulations")
    league = league or who.user.leagues[0]
    who = await authorize(request, "simulations", league=league)
    simulations_of(request).portal.check_league(league)
    return await form_page(request, who, league)


@router.post("/simulations")
async def start_page(request: Request):
    who = await authorize(request, "simulate")
    form = await request.form()
    league = str(form.get("league", ""))
    who = await authorize(request, "simulate", league=league)
    sims = simulations_of(request)
    sims.portal.check_league(league)
    policy = str(form.get("policy", ""))
    scale = {c["code"]: str(form.get(f"scale_{c['code']}", "")) for c in sims.classes(league)}
    given = {
        "first": str(form.get("from", "")),
        "last": str(form.get("to", "")),
        "policy": policy,
        "scale": scale,
        "fit": form.get("fit_budget") == "1",
    }
    try:
        upload = form.get("variant_file")
        if isinstance(upload, UploadFile) and upload.filename:
            text, name = await run_in_threadpool(variant_upload, upload.file, upload.filename)
        else:
            text, name = policy, EDITED_NAME
        req = sims.request(league, given["first"], given["last"], text, name, scale, given["fit"])
        job = await run_in_threadpool(sims.start, who, req)
    except SettlementError as exc:
        return await form_page(
            request, who, league, status_of(exc), problem=problem_of(exc), **given
        )
    return RedirectResponse(f"/simulations/{job.id}", status_code=303)


@router.get("/simulations/{sim_id}")
async def simulation_page(request: Request, sim_id: str):
    sim, who = await one(request, sim_id)
    sims = simulations_of(request)
    portal = sims.portal
    return render(
        request,
        who,
        "simulation.html",
        f"{portal.league_name(sim['league'])}（{sim['league']}）政策模拟 "
        f"{sim['from']} 至 {sim['to']}",
        s=sim,
        summary=await run_in_threadpool(sims.summary_part, sim_id)
        if sim["state"] == "done"
        else "",
        refresh=2 if sim["state"] == "running" else None,
    )


# --------------------------------------------------------------------------- API


class SimulationBody(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    league: str = Field(description="盟市代码")
    first: str = Field(alias="from", description="起始月份 YYYY-MM（须有有效结算批次）")
    last: str = Field(alias="to", description="结束月份 YYYY-MM（含）")
    policy: str | None = Field(
        None,
        description="模拟政策的 TOML 文本（格式同 config/policies/<盟市代码>.toml，UTF-8，"
        "不超过 1 MB，受理条件须与现行政策相同）；省略时模拟现行政策",
    )
    scale: dict[str, str | float | int] = Field(
        default_factory=dict,
        description='区域类别 → 基础费率系数（最多6位小数），如 {"border": "1.2"}',
    )
    fit_budget: bool = Field(
        False, description="求全部基础费率的最大系数（步长 0.0001），使全期无需预算调减"
    )
    wait: bool = Field(False, description="等模拟完成再返回；默认立即返回 202 和任务地址")


@api.post("/simulations", summary="发起政策模拟（管理员）：返回模拟编号，后台运行")
async def start(request: Request, body: SimulationBody):
    who = await authorize(request, "simulate", league=body.league)
    sims = simulations_of(request)
    try:
        req = sims.request(
            body.league,
            body.first,
            body.last,
            body.policy,
            POSTED_NAME,
            body.scale,
            body.fit_budget,
        )
        job = await run_in_threadpool(sims.start, who, req)
    except ConfigError as exc:
        return as_json(problem_of(exc), 422)
    if body.wait:
        await run_in_threadpool(job.done.wait)
        sim, _who = await one(request, job.id)
        return as_json(sim, 200 if sim["state"] == "done" else 500)
    return as_json({"simulation": job.id, "state": "running", **status_urls(job.id)}, 202)


def status_urls(sim_id: str) -> dict:
    return {"status_url": f"/api/simulations/{sim_id}", "page_url": f"/simulations/{sim_id}"}


@api.get("/simulations", summary="某盟市的政策模拟记录（管理员、审计人员）")
async def list_simulations(request: Request, league: str = Query(description="盟市代码")):
    await authorize(request, "simulations", league=league)
    sims = simulations_of(request)
    sims.portal.check_league(league)
    rows = await run_in_threadpool(sims.list, league)
    for r in rows:
        r["progress"] = None  # the messages are on each simulation's own route
    return as_json({"league": league, "simulations": rows})


@api.get("/simulations/{sim_id}", summary="一次政策模拟：状态、进度；完成后的合计和文件地址")
async def simulation(request: Request, sim_id: str):
    sim, _who = await one(request, sim_id)
    return as_json(sim)


@api.get(
    "/simulations/{sim_id}/{name}",
    summary="模拟结果文件：summary.xlsx、summary.html、comparison.parquet、variant.toml",
)
async def simulation_file(request: Request, sim_id: str, name: str):
    sim, _who = await one(request, sim_id)
    if sim["state"] != "done":
        raise NotFound(f"模拟 {sim_id} {sim['state_text']}，没有结果文件")
    path = simulations_of(request).file(sim_id, name)
    stem, _, ext = name.rpartition(".")
    label = {"summary": "政策模拟", "comparison": "政策模拟对照", "variant": "模拟政策"}[stem]
    return download(
        path,
        f"{label}-{sim['league']}-{sim['from']}-{sim['to']}-{sim_id}.{ext}",
        FILES[name],
        document=ext == "html",
    )
