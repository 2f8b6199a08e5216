"""Policy simulations from the portal (SPEC §9, §11): a 盟市 office tries a variant of its policy
on the months it has settled, in the background, and reads the summary in its browser.

The variant is checked before anything starts — by the strict loader of config/policies/
(`simulate.load_variant`), the scale factors against its area classes, the period against the
store — so its errors are shown beside the form. The store is read only to plan the replay
(under the portal's store lock); the replay itself reads the runs' ledger Parquet files, so the
other pages stay usable while it works, and nothing is written to the store.

Outputs go to `<out>/simulations/<id>/`, named by a random id, never by an uploaded name:
variant.toml (the policy text simulated, when not the current policy), comparison.parquet,
summary.xlsx, summary.html, and summary.part.html (the summary as the portal page shows it).
The list of simulations is kept in the portal's SQLite file (table `simulations`); one
simulation runs at a time.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO

from ..clock import local_text, now_utc
from ..config import Policy
from ..errors import RefusedError, SettlementError, UsageError
from ..money import format_yuan
from ..period import Month
from ..simulate import (
    cap_limit,
    load_variant,
    parse_factor,
    plan,
    policy_classes,
    scale_policy,
    simulate,
)
from ..simulate.summary import html_body
from ..statements import area_class_label
from .jobs import Job, Jobs, new_job_id
from .messages import for_portal
from .portal import NotFound, Portal, Who
from .submissions import TooLarge

#: An uploaded or posted variant may be at most this large (a policy file is a few KB).
VARIANT_LIMIT = 1024 * 1024
#: How messages name a variant edited in the page's text box, or posted as text to the API.
EDITED_NAME = "编辑后的政策.toml"
POSTED_NAME = "请求中的政策.toml"
#: The files of a finished simulation that may be downloaded, with their media types.
FILES = {
    "summary.xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "summary.html": "text/html; charset=utf-8",
    "comparison.parquet": "application/vnd.apache.parquet",
    "variant.toml": "application/toml; charset=utf-8",
}
PART = "summary.part.html"
ID_RE = re.compile(r"[0-9a-f]{16}")
#: A replay step in simulate's progress messages: "…重放 2025-03 月度结算（4 件）".
REPLAY_RE = re.compile(r"重放 \d{4}-\d{2} ")
STATE_TEXT = {"running": "正在模拟", "done": "模拟完成", "failed": "未完成"}

SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS simulations (
        id             TEXT PRIMARY KEY,         -- also the folder under <out>/simulations/
        league_code    TEXT NOT NULL,
        first_month    TEXT NOT NULL,
        last_month     TEXT NOT NULL,
        source         TEXT NOT NULL,            -- 现行政策, or how the variant was named
        variant_sha256 TEXT,                     -- of variant.toml (NULL: the current policy)
        scale          TEXT NOT NULL,            -- JSON {area class: factor}
        fit_budget     INTEGER NOT NULL,
        state          TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed')),
        error          TEXT,
        totals         TEXT,                     -- JSON: simulate.Simulation.totals (分)
        fit_multiplier TEXT,
        requested_by   TEXT NOT NULL,
        origin         TEXT NOT NULL,
        started_at     TEXT NOT NULL,
        finished_at    TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS simulations_league ON simulations (league_code, started_at)",
)
INTERRUPTED = "门户服务在模拟完成前停止，模拟未完成；请重新发起"


class VariantTooLarge(TooLarge):
    """A variant over VARIANT_LIMIT (413)."""

    def __init__(self) -> None:
        RefusedError.__init__(
            self,
            f"政策文件超过大小上限 {VARIANT_LIMIT // 1024:,} KB，未使用；"
            "政策文件应是几 KB 的 TOML 文本，请检查是否选错了文件",
        )


@dataclass(frozen=True)
class SimulationRequest:
    """What to simulate: a period of a 盟市 under a variant (None: the current policy)."""

    league: str
    first: Month
    last: Month
    text: str | None
    name: str  # how messages and the summary name the variant
    scale: dict[str, Decimal] = field(default_factory=dict)
    fit: bool = False


@dataclass
class SimJob(Job):
    """A simulation's job: its progress counted in replayed runs."""

    total: int = 1
    replayed: int = 0

    @property
    def percent(self) -> int:
        return min(99, self.replayed * 100 // max(1, self.total))


def variant_upload(source: BinaryIO, filename: str) -> tuple[str, str]:
    """An uploaded variant file: (its text, its name for messages). Refused: over the limit,
    empty, not .toml, not UTF-8 text."""
    name = (filename or "").strip() or "（未命名）"  # shown (escaped), never used as a path
    if Path(name).suffix.lower() != ".toml":
        raise UsageError(
            f"不支持的文件类型“{Path(name).suffix or '无扩展名'}”：请上传政策文件"
            "（.toml，UTF-8 编码，格式同 config/policies/<盟市代码>.toml）"
        )
    data = source.read(VARIANT_LIMIT + 1)
    if len(data) > VARIANT_LIMIT:
        raise VariantTooLarge()
    return variant_text(data, name), name


def variant_text(data: bytes, name: str) -> str:
    """UTF-8 text (a BOM is dropped), or a refusal saying where it stops being UTF-8."""
    if not data.strip():
        raise UsageError(f"政策文件“{name}”是空的")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"政策文件“{name}”不是 UTF-8 编码的文本（第 {exc.start + 1:,} 字节起无法按 UTF-8 "
            "读取）：请在编辑器中以 UTF-8 编码另存后再上传"
        ) from None
    if "\x00" in text:
        raise UsageError(f"政策文件“{name}”不是文本文件（含有 NUL 字节），请上传 TOML 文本")
    return text


def scale_factors(given: dict[str, object]) -> dict[str, Decimal]:
    """Factors by area class from a form or JSON; a blank factor or 1 leaves the class as it is."""
    factors = {}
    for cls, raw in given.items():
        text = str(raw if raw is not None else "").strip()
        if not text:
            continue
        try:
            value = parse_factor(text)
        except UsageError as exc:
            raise UsageError(f"区域类别 {cls} 的{exc}") from None
        if value != 1:
            factors[cls] = value
    return factors


class Simulations:
    """The portal's simulations: started, listed, shown."""

    def __init__(self, portal: Portal) -> None:
        self.portal = portal
        self.jobs = Jobs("模拟测算")
        self.root = portal.out / "simulations"
        with portal.accounts.transaction() as db:
            for statement in SCHEMA:
                db.execute(statement)
            db.execute(
                "UPDATE simulations SET state = 'failed', error = ? WHERE state = 'running'",
                (INTERRUPTED,),
            )

    # ------------------------------------------------------------------ the form

    def policy_text(self, league: str) -> str:
        """The current policy's file, as the form's starting point."""
        return Path(self.portal.cfg.policy(league).path).read_text(encoding="utf-8")

    def classes(self, league: str) -> list[dict]:
        """The current policy's area classes, with the names people know them by."""
        return [
            {"code": c, "label": area_class_label(c)}
            for c in policy_classes(self.portal.cfg.policy(league))
        ]

    def months(self, league: str) -> list[str]:
        """Months of the 盟市 with a current run (what a simulation can replay)."""
        runs = self.portal._runs(league)
        return sorted({r["month"] for r in runs if r["status"] == "current"})

    def request(
        self,
        league: str,
        first: str,
        last: str,
        text: str | None,
        name: str,
        scale: dict[str, object] | None = None,
        fit: bool = False,
    ) -> SimulationRequest:
        """A request from what a form or the API gave; the current policy's text, unchanged,
        is the current policy."""
        self.portal.check_league(league)
        first_m, last_m = Month.parse(first), Month.parse(last)
        if last_m < first_m:
            raise UsageError(f"起始月份 {first_m} 晚于结束月份 {last_m}")
        if text is not None:
            text = text.replace("\r\n", "\n")
            if len(text.encode("utf-8")) > VARIANT_LIMIT:
                raise VariantTooLarge()
            if not text.strip():
                raise UsageError("模拟政策是空的：请填写政策内容，或省略以模拟现行政策")
            if text.strip() == self.policy_text(league).replace("\r\n", "\n").strip():
                text = None
        return SimulationRequest(
            league,
            first_m,
            last_m,
            text,
            "现行政策" if text is None else name,
            scale_factors(scale or {}),
            fit,
        )

    def prepare(self, req: SimulationRequest):
        """Everything that can be refused at once: the variant (strict loader), the factors,
        the budget fit, the period. Returns (variant or None, plan, the fit's steps at most)."""
        cfg = self.portal.cfg
        variant = None if req.text is None else load_variant(cfg, req.league, req.text, req.name)
        base: Policy = variant or cfg.policy(req.league)
        unknown = sorted(set(req.scale) - set(policy_classes(base)))
        if unknown:
            raise UsageError(
                f"区域类别 {unknown[0]} 不在模拟政策中（模拟政策的区域类别："
                f"{'、'.join(policy_classes(base))}），不能设置它的系数"
            )
        steps = 1
        if req.fit:
            if base.budget_rule == "none":
                raise UsageError(
                    "模拟政策的预算规则为 none（不限额），没有可拟合的预算：请取消“拟合预算”"
                )
            # the bisection's steps; refuses rates that are all 0
            steps = math.ceil(math.log2(cap_limit(scale_policy(base, req.scale)) + 1))
        if not self.portal.has_store():
            raise RefusedError("还没有任何结算（结算库不存在），无可模拟")
        with self.portal.store_access():
            the_plan = plan(self.portal.store, req.league, req.first, req.last)
        return variant, the_plan, steps

    # ------------------------------------------------------------------ a simulation

    def folder(self, sim_id: str) -> Path:
        if not ID_RE.fullmatch(sim_id):
            raise NotFound(f"没有编号为 {sim_id} 的模拟")
        return self.root / sim_id

    def start(self, who: Who, req: SimulationRequest) -> SimJob:
        """Check the request, then simulate in the background (one at a time)."""
        variant, the_plan, steps = self.prepare(req)
        sim_id = new_job_id()
        folder = self.folder(sim_id)
        folder.mkdir(parents=True)
        sha = None
        if req.text is not None:
            (folder / "variant.toml").write_text(req.text, encoding="utf-8")
            sha = hashlib.sha256(req.text.encode("utf-8")).hexdigest()
        runs = len(the_plan.runs)
        period = f"{req.first} 至 {req.last}"
        job = SimJob(sim_id, req.league, period, who.user.name, False, False, total=runs * steps)
        scale = {c: str(f) for c, f in sorted(req.scale.items())}

        def say(text: str) -> None:
            if REPLAY_RE.search(text):
                job.replayed += 1
            job.say(text)

        def work(job: SimJob) -> dict:
            try:
                sim = simulate(
                    self.portal.cfg,
                    self.portal.store,
                    req.league,
                    req.first,
                    req.last,
                    variant,
                    req.scale,
                    req.fit,
                    folder,
                    say,
                    variant_name=req.name,
                    planned=the_plan,
                )
                (folder / PART).write_text(html_body(sim), encoding="utf-8")
            except BaseException as exc:
                self._finish(sim_id, "failed", error=_message(exc))
                raise
            totals = {k: int(v) for k, v in sim.totals.items()}
            multiplier = f"{sim.fit.multiplier:.4f}" if sim.fit else None
            self._finish(sim_id, "done", totals=totals, fit=multiplier)
            job.replayed = job.total
            say(
                f"模拟完成：模拟应付 {format_yuan(totals['variant_fen'])} 元，"
                f"现行实付 {format_yuan(totals['baseline_fen'])} 元"
            )
            return {"totals": totals, "fit_multiplier": multiplier}

        with self.portal.accounts.transaction() as db:
            db.execute(
                "INSERT INTO simulations (id, league_code, first_month, last_month, source, "
                "variant_sha256, scale, fit_budget, state, requested_by, origin, started_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?)",
                (
                    sim_id,
                    req.league,
                    str(req.first),
                    str(req.last),
                    req.name,
                    sha,
                    json.dumps(scale),
                    int(req.fit),
                    who.user.name,
                    who.origin,
                    now_utc().isoformat(timespec="seconds"),
                ),
            )
        try:
            self.jobs.start(job, work)
        except BaseException:
            with self.portal.accounts.transaction() as db:
                db.execute("DELETE FROM simulations WHERE id = ?", (sim_id,))
            shutil.rmtree(folder, ignore_errors=True)
            raise
        self.portal.accounts.log(
            who.user.name,
            who.origin,
            "simulation",
            league=req.league,
            month=period,
            detail={
                "simulation": sim_id,
                "policy": req.name,
                "variant_sha256": sha,
                "scale": scale,
                "fit_budget": req.fit,
                "runs": runs,
            },
        )
        return job

    def _finish(self, sim_id: str, state: str, error=None, totals=None, fit=None) -> None:
        with self.portal.accounts.transaction() as db:
            db.execute(
                "UPDATE simulations SET state = ?, error = ?, totals = ?, fit_multiplier = ?, "
                "finished_at = ? WHERE id = ?",
                (
                    state,
                    error,
                    json.dumps(totals) if totals else None,
                    fit,
                    now_utc().isoformat(timespec="seconds"),
                    sim_id,
                ),
            )

    # ------------------------------------------------------------------ reading

    def row(self, sim_id: str) -> dict | None:
        """One simulation as recorded, or None."""
        if not ID_RE.fullmatch(sim_id):
            return None
        rows = self.portal.accounts.rows("SELECT * FROM simulations WHERE id = ?", (sim_id,))
        return rows[0] if rows else None

    def list(self, league: str, limit: int = 100) -> list[dict]:
        """A 盟市's simulations, newest first."""
        rows = self.portal.accounts.rows(
            "SELECT * FROM simulations WHERE league_code = ? ORDER BY started_at DESC, id DESC "
            "LIMIT ?",
            (league, limit),
        )
        return [self.describe(r) for r in rows]

    def describe(self, row: dict) -> dict:
        """What the pages and the API show of a simulation (money in 分)."""
        job = self.jobs.get(row["id"])
        sim_id, state = row["id"], row["state"]
        out = {
            "simulation": sim_id,
            "league": row["league_code"],
            "from": row["first_month"],
            "to": row["last_month"],
            "policy": row["source"],
            "scale": json.loads(row["scale"]),
            "fit_budget": bool(row["fit_budget"]),
            "state": state,
            "state_text": STATE_TEXT[state],
            "requested_by": row["requested_by"],
            "started_at": local_text(row["started_at"]),
            "finished_at": local_text(row["finished_at"]) if row["finished_at"] else None,
            "error": row["error"],
            "totals": json.loads(row["totals"]) if row["totals"] else None,
            "fit_multiplier": row["fit_multiplier"],
            "progress": None,
            "files": {},
            "page_url": f"/simulations/{sim_id}",
        }
        out["described"] = described(out)
        if job is not None:
            out["progress"] = {
                "percent": 100 if state == "done" else job.percent,
                "replayed": job.replayed,
                "estimated": job.total,
                "messages": job.messages,
            }
        if state == "done":
            out["files"] = {
                name: f"/api/simulations/{sim_id}/{name}"
                for name in FILES
                if (self.root / sim_id / name).is_file()
            }
        return out

    def summary_part(self, sim_id: str) -> str:
        """The summary's HTML as the page shows it (written by simulate.summary, escaped)."""
        path = self.folder(sim_id) / PART
        return path.read_text(encoding="utf-8") if path.is_file() else ""

    def file(self, sim_id: str, name: str) -> Path:
        path = self.folder(sim_id) / name
        if name not in FILES or not path.is_file():
            raise NotFound(f"模拟 {sim_id} 没有文件 {name}")
        return path


def described(sim: dict) -> str:
    """What was simulated, in words: the policy, the factors, the budget fit."""
    parts = [sim["policy"]]
    parts += [f"{area_class_label(c)}基础费率 ×{f}" for c, f in sim["scale"].items()]
    if sim["fit_budget"]:
        fit = sim["fit_multiplier"]
        parts.append(f"拟合预算（结果：全部基础费率 ×{fit}）" if fit else "拟合预算")
    return "；".join(parts)


def _message(exc: BaseException) -> str:
    """A failure as the list shows it (the jobs log the traceback of an unexpected one)."""
    if isinstance(exc, SettlementError):
        return for_portal(str(exc))
    return f"内部错误：{type(exc).__name__}: {exc}（详细信息见服务器日志）"
