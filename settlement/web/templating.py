"""Templates (Jinja2, autoescaped) and the helpers they use: 元 from 分, counts, local times."""

from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates
from starlette.requests import Request

from ..clock import local_text
from ..money import format_yuan
from .messages import for_portal

OFFICE = "快递进村补贴结算服务平台"
HERE = Path(__file__).parent


def _yuan(fen) -> str:
    return "—" if fen is None else format_yuan(int(fen))


def _number(n) -> str:
    return "—" if n is None else f"{int(n):,}"


def _signed_yuan(fen) -> str:
    fen = int(fen or 0)
    return ("+" if fen > 0 else "−" if fen < 0 else "±") + format_yuan(abs(fen))


templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters["yuan"] = _yuan
templates.env.filters["signed_yuan"] = _signed_yuan
templates.env.filters["number"] = _number
templates.env.filters["local"] = local_text
templates.env.globals["OFFICE"] = OFFICE

MENUS = {
    "company": (
        ("/months", "本企业结算月份"),
        ("/submit", "提交投递日志"),
        ("/payouts", "拨付与追缴"),
        ("/docs", "接口文档（API）"),
    ),
    "admin": (
        ("/months", "结算月份"),
        ("/status", "预算年度执行"),
        ("/simulations", "政策模拟测算"),
        ("/payouts", "资金拨付"),
        ("/docs", "接口文档（API）"),
    ),
    "auditor": (
        ("/months", "结算月份"),
        ("/status", "预算年度执行"),
        ("/simulations", "政策模拟测算"),
        ("/payouts", "资金拨付"),
        ("/sql", "SQL 查询"),
        ("/queries", "预置查询"),
        ("/verify", "全面校验"),
        ("/explain", "运单追溯"),
        ("/events", "操作日志"),
        ("/docs", "接口文档（API）"),
    ),
}


def render(request: Request, who, template: str, title: str, status: int = 200, **context):
    """A page: the layout (office, user, the role's menu) around the template's content."""
    portal = request.app.state.portal
    company_name = portal.company_name(who.user.company) if who and who.user.company else ""
    for key in ("error", "notice"):  # the library's messages, as the page can act on them
        if isinstance(context.get(key), str):
            context[key] = for_portal(context[key])
    return templates.TemplateResponse(
        request,
        template,
        {
            "who": who,
            "title": title,
            "portal": portal,
            "company_name": company_name,
            "menu": MENUS[who.user.role] if who else (),
            "path": request.url.path,
            **context,
        },
        status_code=status,
    )
