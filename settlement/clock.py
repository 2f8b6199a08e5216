"""Time as the engine records it (UTC) and as people read it (Asia/Shanghai, with the offset).

The store and manifests record UTC; everything shown to people — statements, messages, the
portal — is local time in Asia/Shanghai with its offset, e.g. `2026-12-04 18:13:57 +08:00`.
`SETTLE_TODAY=YYYY-MM-DD` fixes today's date (tests, and re-checking an old decision).
"""

from __future__ import annotations

import datetime as dt
import os
from zoneinfo import ZoneInfo

LOCAL = ZoneInfo("Asia/Shanghai")


def now_utc() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


def now_naive_utc() -> dt.datetime:
    """The current UTC time without tzinfo: how the store's TIMESTAMP columns hold it."""
    return now_utc().replace(tzinfo=None)


def today() -> dt.date:
    """Today's date in Asia/Shanghai (or SETTLE_TODAY when set)."""
    fixed = os.environ.get("SETTLE_TODAY")
    if fixed:
        return dt.date.fromisoformat(fixed)
    return now_utc().astimezone(LOCAL).date()


def to_local(moment: dt.datetime | str) -> dt.datetime:
    """A UTC moment (aware, naive-UTC as the store holds it, or ISO text) in Asia/Shanghai."""
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(LOCAL)


def local_text(moment: dt.datetime | str | None, seconds: bool = True) -> str:
    """'2026-12-04 18:13:57 +08:00' for people; '—' for none."""
    if moment is None:
        return "—"
    local = to_local(moment)
    return local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M") + " +08:00"
