"""Who changed what, when and from where: the store's `events` table (read by auditors).

Every state change — a run, a replacement, a void, a seal, and the portal's uploads and
accounts — is one row, written in the same transaction as the change itself.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from dataclasses import dataclass

import duckdb

from .clock import now_naive_utc


@dataclass(frozen=True)
class Actor:
    """Who is acting (a user name) and from where (`cli@host`, or the portal's client address)."""

    name: str
    origin: str

    @classmethod
    def cli(cls, default: str | None = None) -> Actor:
        """The person at this shell: $SETTLE_USER, else `default` (a seal's named reviewer),
        else the login name; from $SETTLE_ORIGIN (the portal sets it for the runs it starts),
        else `cli@host`."""
        name = os.environ.get("SETTLE_USER") or default
        if not name:
            try:
                name = getpass.getuser()
            except (KeyError, OSError):  # no passwd entry in some containers
                name = f"uid{os.getuid()}"
        return cls(name, os.environ.get("SETTLE_ORIGIN") or f"cli@{socket.gethostname()}")


def record_event(
    con: duckdb.DuckDBPyConnection,
    actor: Actor,
    action: str,
    league: str | None = None,
    month: str | None = None,
    run_id: str | None = None,
    detail: dict | None = None,
) -> None:
    """Append one event (inside the caller's transaction)."""
    con.execute(
        "INSERT INTO events (seq, occurred_at, actor, origin, action, league_code, month, run_id, detail) "
        "SELECT COALESCE(MAX(seq), 0) + 1, ?, ?, ?, ?, ?, ?, ?, ? FROM events",
        [
            now_naive_utc(),
            actor.name,
            actor.origin,
            action,
            league,
            month,
            run_id,
            json.dumps(detail, ensure_ascii=False, default=str) if detail else None,
        ],
    )
