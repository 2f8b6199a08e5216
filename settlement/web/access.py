"""Who is asking, and whether they may: the one permission check every route goes through.

`authorize(request, right, league=…, company=…)` finds the user (a session cookie or an
`Authorization: Bearer` token), checks the CSRF token of a cookie-authenticated POST, the right
of the user's role, and the resource's scope: an office or an auditor works in its own 盟市 only,
a company on its own data only (in any 盟市). Anything else is 401 (nobody) or 403 (not yours).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from starlette.requests import Request

from .accounts import Accounts, User
from .portal import Who

SESSION_COOKIE = "settle_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"

#: What each role may do. Company data (statements, submissions, rejects, reconciliation,
#: month figures) is further limited to the company's own by `authorize`.
RIGHTS: dict[str, frozenset[str]] = {
    "me": frozenset({"admin", "company", "auditor"}),
    "months": frozenset({"admin", "company", "auditor"}),
    "company_data": frozenset({"admin", "company", "auditor"}),
    "notice": frozenset({"admin", "company", "auditor"}),
    "submit": frozenset({"company"}),
    "reconcile": frozenset({"company"}),
    "month_all": frozenset({"admin", "auditor"}),  # every company's figures, the summary
    "run": frozenset({"admin"}),
    "seal": frozenset({"admin"}),
    "void": frozenset({"admin"}),
    "status": frozenset({"admin", "auditor"}),
    "sql": frozenset({"auditor"}),
    "verify": frozenset({"auditor"}),
    "explain": frozenset({"auditor"}),
    "events": frozenset({"auditor"}),
    "simulate": frozenset({"admin"}),  # start a policy simulation
    "simulations": frozenset({"admin", "auditor"}),  # read the 盟市's simulations
    # paying out (SPEC §10): a company sees its own lines, clawbacks and annual statement
    "payouts": frozenset({"admin", "company", "auditor"}),
    "payment_files": frozenset({"admin", "auditor"}),  # every company's bank data
    "pay": frozenset({"admin"}),  # create and confirm batches, clawbacks, close the year
}
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class NotAuthenticated(Exception):
    """No valid session or token (401)."""


class Forbidden(Exception):
    """A role or a resource not the user's own (403)."""


@dataclass(frozen=True)
class Principal(Who):
    via: str = "session"  # session | token
    csrf_token: str | None = None


def client_address(request: Request) -> str:
    """The client's address (behind the office's proxy, uvicorn's proxy headers set it)."""
    return request.client.host if request.client else "unknown"


def identify(request: Request, accounts: Accounts) -> Principal | None:
    """The user of the request's bearer token, else of its session cookie; None if neither."""
    origin = client_address(request)
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        user = accounts.token_user(token.strip())
        return Principal(user, origin, via="token") if user else None
    session = accounts.session(request.cookies.get(SESSION_COOKIE))
    if session is None:
        return None
    return Principal(session.user, origin, via="session", csrf_token=session.csrf_token)


def in_scope(user: User, league: str | None, company: str | None) -> bool:
    """Whether a resource of (league, company) is the user's: an office or auditor's 盟市, a
    company's own code."""
    if user.role == "company":
        return company is None or company == user.company
    return league is None or league in user.leagues


async def authenticated(request: Request) -> None:
    """The API router's dependency: 401 before a body is even parsed (a request without a
    session or token learns nothing about the route)."""
    accounts: Accounts = request.app.state.portal.accounts
    request.state.principal = identify(request, accounts)
    if request.state.principal is None:
        raise NotAuthenticated()


async def authorize(
    request: Request, right: str, league: str | None = None, company: str | None = None
) -> Principal:
    """Every route's first line: the principal, or NotAuthenticated / Forbidden."""
    principal = getattr(request.state, "principal", None)
    if principal is None:
        principal = identify(request, request.app.state.portal.accounts)
    if principal is None:
        raise NotAuthenticated()
    if principal.via == "session" and request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER)
        if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            sent = (await request.form()).get(CSRF_FIELD)
        if not sent or not hmac.compare_digest(str(sent), principal.csrf_token or ""):
            raise Forbidden("请求缺少有效的 CSRF 令牌（页面可能已过期）；请刷新页面后重试")
    user = principal.user
    if user.role not in RIGHTS[right]:
        raise Forbidden(f"您的角色（{user.role_text}）无权进行此操作")
    if not in_scope(user, league, company):
        raise Forbidden(
            f"无权访问：该资源属于企业 {company}，不是本企业（{user.company}）"
            if user.role == "company"
            else f"无权访问：盟市 {league} 不在您的管辖范围（{'、'.join(user.leagues)}）内"
        )
    return principal
