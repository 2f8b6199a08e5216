"""The portal's own state, in a SQLite file beside the store (`<store>.portal.sqlite`, WAL).

The settlement store is DuckDB: one writer process at a time, and a read-write connection
excludes every reader. Accounts, sessions, API tokens, login failures, submissions and the
portal's event log change on every request, so they live here instead; the store is opened only
briefly, through the library.

Secrets are never stored: passwords as argon2id hashes (memory-hard), session and API tokens as
the SHA-256 of 32 random bytes (they are random, so a fast hash is enough and lookups stay
exact).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ..clock import now_utc, to_local
from ..errors import RefusedError, UsageError

ROLES = {"admin": "管理员（盟市邮政管理局）", "company": "快递企业", "auditor": "审计人员"}
NAME_RE = re.compile(r"[A-Za-z0-9_.\-]{2,32}")
MIN_PASSWORD = 10
#: A session lasts this long after login, and ends sooner after this long unused.
SESSION_HOURS = 8
IDLE_MINUTES = 60
#: Failed logins of one user name within the window that pause that name's logins for
#: LOCK_TIME after the last of them. An office behind one NAT address shares the address, so the
#: address's own limit is far higher: it stops guessing across names, not a clerk's typos.
MAX_FAILURES = 5
MAX_ADDRESS_FAILURES = 50
FAILURE_WINDOW = dt.timedelta(minutes=15)
LOCK_TIME = dt.timedelta(minutes=15)

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name          TEXT PRIMARY KEY,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'company', 'auditor')),
    company       TEXT,                      -- role company: its code
    leagues       TEXT NOT NULL DEFAULT '[]',-- role admin/auditor: JSON list of 盟市 codes
    password_hash TEXT NOT NULL,             -- argon2id
    active        INTEGER NOT NULL DEFAULT 1,
    created_at    TEXT NOT NULL,
    created_by    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_sha256  TEXT PRIMARY KEY,
    user_name     TEXT NOT NULL REFERENCES users(name),
    csrf_token    TEXT NOT NULL,
    origin        TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    expires_at    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS api_tokens (
    id            INTEGER PRIMARY KEY,
    user_name     TEXT NOT NULL REFERENCES users(name),
    token_sha256  TEXT NOT NULL UNIQUE,
    prefix        TEXT NOT NULL,             -- first characters, to tell tokens apart
    created_at    TEXT NOT NULL,
    revoked_at    TEXT,
    last_used_at  TEXT
);
CREATE TABLE IF NOT EXISTS login_failures (
    user_name     TEXT NOT NULL,
    origin        TEXT NOT NULL,
    at            TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS submissions (
    id            INTEGER PRIMARY KEY,
    league_code   TEXT NOT NULL,
    month         TEXT NOT NULL,
    company       TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    path          TEXT NOT NULL,             -- relative to the output directory
    original_name TEXT NOT NULL,             -- as uploaded: shown (escaped), never used as a path
    size_bytes    INTEGER NOT NULL,
    rows          INTEGER NOT NULL,
    accepted      INTEGER NOT NULL,
    report        TEXT NOT NULL,             -- JSON: the validation report shown at upload
    status        TEXT NOT NULL CHECK (status IN ('current', 'replaced')),
    uploaded_by   TEXT NOT NULL,
    origin        TEXT NOT NULL,
    uploaded_at   TEXT NOT NULL,
    late          INTEGER NOT NULL DEFAULT 0,-- 补报: uploaded after the month was sealed
    settled_in    TEXT                       -- late: the supplementary run that settled it
);
CREATE INDEX IF NOT EXISTS submissions_month ON submissions (league_code, month, company);
CREATE TABLE IF NOT EXISTS events (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    occurred_at   TEXT NOT NULL,
    actor         TEXT NOT NULL,
    origin        TEXT NOT NULL,
    action        TEXT NOT NULL,
    league_code   TEXT,
    month         TEXT,
    detail        TEXT
);
"""

#: Columns added to `submissions` since the first portal release, as ALTER TABLE adds them.
LATER_COLUMNS = (("late", "INTEGER NOT NULL DEFAULT 0"), ("settled_in", "TEXT"))


def portal_db(store: Path) -> Path:
    """Where the portal keeps its state for a store: `<store>.portal.sqlite` beside it."""
    return store.with_name(store.name + ".portal.sqlite")


def _now() -> str:
    return now_utc().isoformat(timespec="seconds")


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class User:
    name: str
    role: str
    company: str | None
    leagues: tuple[str, ...]
    active: bool = True

    @property
    def role_text(self) -> str:
        return ROLES[self.role]


@dataclass(frozen=True)
class Session:
    user: User
    csrf_token: str
    expires_at: str


def _user(row: sqlite3.Row | dict) -> User:
    return User(
        row["name"],
        row["role"],
        row["company"],
        tuple(json.loads(row["leagues"])),
        bool(row["active"]),
    )


class Accounts:
    """The portal's SQLite file: one connection per call, WAL so that readers never wait."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._hasher = PasswordHasher()
        self._write = threading.Lock()  # SQLite allows one writer; keep ours in line
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute("PRAGMA journal_mode = WAL")
            db.executescript(SCHEMA)
            have = {r["name"] for r in db.execute("PRAGMA table_info(submissions)")}
            for column, kind in LATER_COLUMNS:  # a portal file from before they existed
                if column not in have:
                    db.execute(f"ALTER TABLE submissions ADD COLUMN {column} {kind}")

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA busy_timeout = 30000")
        try:
            yield db
        finally:
            db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (all of it or none)."""
        with self._write, self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def rows(self, sql: str, params: tuple = ()) -> list[dict]:
        """The rows of one read."""
        with self._db() as db:
            return [dict(r) for r in db.execute(sql, params).fetchall()]

    # ------------------------------------------------------------------ events

    def record(
        self,
        db: sqlite3.Connection,
        actor: str,
        origin: str,
        action: str,
        league: str | None = None,
        month: str | None = None,
        detail: dict | None = None,
    ) -> None:
        """One row of the portal's event log, inside the caller's transaction."""
        db.execute(
            "INSERT INTO events (occurred_at, actor, origin, action, league_code, month, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                _now(),
                actor,
                origin,
                action,
                league,
                month,
                json.dumps(detail, ensure_ascii=False, default=str) if detail else None,
            ),
        )

    def log(self, actor: str, origin: str, action: str, **fields) -> None:
        """Record one event on its own."""
        with self.transaction() as db:
            self.record(db, actor, origin, action, **fields)

    def events(self, limit: int = 500) -> list[dict]:
        """The portal's event log, newest first."""
        return self.rows("SELECT * FROM events ORDER BY seq DESC LIMIT ?", (limit,))

    # ------------------------------------------------------------------ users

    def add_user(
        self,
        name: str,
        role: str,
        password: str,
        leagues: tuple[str, ...] = (),
        company: str | None = None,
        actor: str = "cli",
        origin: str = "cli",
    ) -> User:
        """Create an account; refuses a bad name, role, scope or weak password, or a name taken."""
        if not NAME_RE.fullmatch(name or ""):
            raise UsageError(f"用户名“{name}”无效：应为 2–32 个字母、数字或 _ . -")
        if role not in ROLES:
            raise UsageError(f"角色“{role}”无效：应为 admin、company 或 auditor")
        if role == "company":
            if not company or leagues:
                raise UsageError("企业用户需要 --company（企业编码），不能指定 --league")
        else:
            if company:
                raise UsageError(f"{ROLES[role]}不能指定 --company")
            if not leagues:
                raise UsageError(f"{ROLES[role]}需要至少一个 --league（盟市代码）")
        if len(password) < MIN_PASSWORD:
            raise UsageError(f"密码太短：至少 {MIN_PASSWORD} 个字符")
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise RefusedError(f"用户 {name} 已存在")
            db.execute(
                "INSERT INTO users (name, role, company, leagues, password_hash, active, "
                "created_at, created_by) VALUES (?, ?, ?, ?, ?, 1, ?, ?)",
                (
                    name,
                    role,
                    company,
                    json.dumps(sorted(set(leagues))),
                    self._hasher.hash(password),
                    _now(),
                    actor,
                ),
            )
            detail = {"role": role, "company": company, "leagues": sorted(set(leagues))}
            self.record(db, actor, origin, "user_add", detail={"user": name, **detail})
        return User(name, role, company, tuple(sorted(set(leagues))))

    def user(self, name: str) -> User | None:
        rows = self.rows("SELECT * FROM users WHERE name = ?", (name,))
        return _user(rows[0]) if rows else None

    def users(self) -> list[dict]:
        """Every account with its token counts (for `settle user list`)."""
        return self.rows(
            "SELECT u.name, u.role, u.company, u.leagues, u.active, u.created_at, "
            "(SELECT COUNT(*) FROM api_tokens t WHERE t.user_name = u.name "
            " AND t.revoked_at IS NULL) AS tokens "
            "FROM users u ORDER BY u.name"
        )

    def set_active(self, name: str, active: bool, actor: str = "cli", origin: str = "cli") -> None:
        """Disable (or enable again) an account; disabling ends its sessions at once."""
        with self.transaction() as db:
            if not db.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise UsageError(f"没有用户 {name}")
            db.execute("UPDATE users SET active = ? WHERE name = ?", (int(active), name))
            if not active:
                db.execute("DELETE FROM sessions WHERE user_name = ?", (name,))
            self.record(
                db,
                actor,
                origin,
                "user_enable" if active else "user_disable",
                detail={"user": name},
            )

    def set_password(self, name: str, password: str, actor: str = "cli", origin: str = "cli"):
        """A new password; the user's sessions end."""
        if len(password) < MIN_PASSWORD:
            raise UsageError(f"密码太短：至少 {MIN_PASSWORD} 个字符")
        with self.transaction() as db:
            if not db.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise UsageError(f"没有用户 {name}")
            db.execute(
                "UPDATE users SET password_hash = ? WHERE name = ?",
                (self._hasher.hash(password), name),
            )
            db.execute("DELETE FROM sessions WHERE user_name = ?", (name,))
            self.record(db, actor, origin, "user_password", detail={"user": name})

    # ------------------------------------------------------------------ login and sessions

    def throttled(self, name: str, origin: str) -> Throttled | None:
        """Why this user name, or this address, may not try now (None: it may).

        Failures are counted for any name typed, known or not, so the answer says nothing
        about which names exist."""
        since = (now_utc() - FAILURE_WINDOW).isoformat(timespec="seconds")
        for column, value, limit in (
            ("user_name", name, MAX_FAILURES),
            ("origin", origin, MAX_ADDRESS_FAILURES),
        ):
            rows = self.rows(
                f"SELECT at FROM login_failures WHERE {column} = ? AND at > ? ORDER BY at",
                (value, since),
            )
            if len(rows) >= limit:
                until = dt.datetime.fromisoformat(rows[-1]["at"]) + LOCK_TIME
                if until > now_utc():
                    return Throttled(column == "user_name", value, until)
        return None

    def login(self, name: str, password: str, origin: str) -> tuple[str, Session]:
        """Check the password and open a session: (the cookie's token, the session).

        Refused alike for an unknown user, a wrong password or a disabled account (nothing tells
        them apart); refused for LOCK_TIME after MAX_FAILURES failures of the name, or
        MAX_ADDRESS_FAILURES from the address, within FAILURE_WINDOW."""
        refusal = self.throttled(name or "?", origin)
        if refusal is not None:
            self.log(name or "?", origin, "login_throttled", detail={"by": refusal.by})
            raise refusal
        rows = self.rows("SELECT * FROM users WHERE name = ?", (name,))
        ok = False
        if rows:
            try:
                ok = self._hasher.verify(rows[0]["password_hash"], password)
            except (VerificationError, InvalidHashError):
                ok = False
        else:
            self._hasher.hash(password or "x")  # take as long as a real check
        if not ok or not rows[0]["active"]:
            with self.transaction() as db:
                db.execute(
                    "INSERT INTO login_failures VALUES (?, ?, ?)", (name or "?", origin, _now())
                )
                self.record(db, name or "?", origin, "login_failed")
            raise BadLogin()
        token = secrets.token_urlsafe(32)
        now = now_utc()
        expires = (now + dt.timedelta(hours=SESSION_HOURS)).isoformat(timespec="seconds")
        csrf = secrets.token_urlsafe(32)
        with self.transaction() as db:
            if self._hasher.check_needs_rehash(rows[0]["password_hash"]):
                db.execute(
                    "UPDATE users SET password_hash = ? WHERE name = ?",
                    (self._hasher.hash(password), name),
                )
            db.execute("DELETE FROM sessions WHERE expires_at < ?", (_now(),))
            db.execute("DELETE FROM login_failures WHERE user_name = ?", (name,))
            db.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?)",
                (_sha(token), name, csrf, origin, _now(), _now(), expires),
            )
            self.record(db, name, origin, "login")
        return token, Session(_user(rows[0]), csrf, expires)

    def session(self, token: str | None) -> Session | None:
        """The live session of a cookie token (its idle time renewed), or None."""
        if not token:
            return None
        rows = self.rows(
            "SELECT s.*, u.* FROM sessions s JOIN users u ON u.name = s.user_name "
            "WHERE s.token_sha256 = ?",
            (_sha(token),),
        )
        if not rows:
            return None
        row = rows[0]
        now = now_utc()
        idle_since = dt.datetime.fromisoformat(row["last_seen_at"])
        if (
            not row["active"]
            or dt.datetime.fromisoformat(row["expires_at"]) <= now
            or now - idle_since > dt.timedelta(minutes=IDLE_MINUTES)
        ):
            with self.transaction() as db:
                db.execute("DELETE FROM sessions WHERE token_sha256 = ?", (_sha(token),))
            return None
        if now - idle_since > dt.timedelta(minutes=1):
            with self.transaction() as db:
                db.execute(
                    "UPDATE sessions SET last_seen_at = ? WHERE token_sha256 = ?",
                    (_now(), _sha(token)),
                )
        return Session(_user(row), row["csrf_token"], row["expires_at"])

    def logout(self, token: str, origin: str) -> None:
        with self.transaction() as db:
            found = db.execute(
                "SELECT user_name FROM sessions WHERE token_sha256 = ?", (_sha(token),)
            ).fetchone()
            db.execute("DELETE FROM sessions WHERE token_sha256 = ?", (_sha(token),))
            if found:
                self.record(db, found[0], origin, "logout")

    # ------------------------------------------------------------------ API tokens

    def new_token(self, name: str, actor: str = "cli", origin: str = "cli") -> str:
        """A new API token for a user (shown once; only its hash is kept)."""
        token = "st_" + secrets.token_urlsafe(32)
        with self.transaction() as db:
            if not db.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise UsageError(f"没有用户 {name}")
            cur = db.execute(
                "INSERT INTO api_tokens (user_name, token_sha256, prefix, created_at) "
                "VALUES (?, ?, ?, ?)",
                (name, _sha(token), token[:9], _now()),
            )
            self.record(
                db, actor, origin, "token_new", detail={"user": name, "token_id": cur.lastrowid}
            )
        return token

    def tokens(self, name: str | None = None) -> list[dict]:
        return self.rows(
            "SELECT id, user_name, prefix, created_at, revoked_at, last_used_at FROM api_tokens "
            "WHERE ? IS NULL OR user_name = ? ORDER BY id",
            (name, name),
        )

    def revoke_token(self, token_id: int, actor: str = "cli", origin: str = "cli") -> dict:
        """Revoke one API token by its number (`settle user list` shows them)."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT user_name, revoked_at FROM api_tokens WHERE id = ?", (token_id,)
            ).fetchone()
            if row is None:
                raise UsageError(f"没有编号为 {token_id} 的 API 令牌")
            if row[1] is None:
                db.execute("UPDATE api_tokens SET revoked_at = ? WHERE id = ?", (_now(), token_id))
                self.record(
                    db, actor, origin, "token_revoke", detail={"user": row[0], "token_id": token_id}
                )
        return {"user": row[0], "already": row[1] is not None}

    def token_user(self, token: str | None) -> User | None:
        """The active user of a live API token, or None."""
        if not token:
            return None
        rows = self.rows(
            "SELECT t.id, u.* FROM api_tokens t JOIN users u ON u.name = t.user_name "
            "WHERE t.token_sha256 = ? AND t.revoked_at IS NULL",
            (_sha(token),),
        )
        if not rows or not rows[0]["active"]:
            return None
        with self.transaction() as db:
            db.execute(
                "UPDATE api_tokens SET last_used_at = ? WHERE id = ?", (_now(), rows[0]["id"])
            )
        return _user(rows[0])


class BadLogin(RefusedError):
    """A wrong user name or password (401)."""

    def __init__(self) -> None:
        super().__init__("用户名或密码不正确")


class Throttled(RefusedError):
    """Too many failed logins of a user name, or from an address (429): until when."""

    def __init__(self, by_name: bool, value: str, until: dt.datetime) -> None:
        at = to_local(until).strftime("%H:%M")
        if by_name:
            text = f"登录失败次数过多，账户 {value} 已暂停登录至 {at}（北京时间）；如忘记密码请联系管理员"
        else:
            text = (
                f"登录失败次数过多，来自本网络地址（{value}）的登录已暂停至 {at}（北京时间）；"
                "请稍后再试，或联系管理员"
            )
        super().__init__(text)
        self.by = "user_name" if by_name else "origin"
        self.until = until
