"""What the portal does, in terms of the library: the pages and the API call these; they hold no
settlement rule and no SQL (the auditors' sandbox excepted, which is `audit.run_readonly`).

The DuckDB store admits, within one process, only one connection configuration at a time (a
read-write connection and a read-only one on the same file conflict, and so do two read-only
ones with different settings). So every use of the store from the portal process goes through
`store_access()`, one at a time, and a page that cannot have it within a few seconds says the
store is busy (503) instead of waiting. A run is settled in a child process (`jobs`), so pages
keep working meanwhile; across processes DuckDB's own file lock decides, and a connection waits
briefly for the other side (`store.connect_file`).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import polars as pl

from .. import audit, journal, lock, months, reconcile, statements
from ..audit import explain
from ..clock import local_text, now_utc
from ..config import load_config
from ..engine import cross_company_warnings, validate_logs
from ..errors import InputFileError, RefusedError, SettlementError, UsageError
from ..events import Actor
from ..outputs import partition
from ..period import Month
from ..store import (
    budget_year,
    list_events,
    list_runs,
    month_state,
    stale_months,
)
from . import submissions as sub
from .accounts import Accounts, User, portal_db
from .jobs import Job, Jobs, new_job_id, settle_in_child
from .messages import for_portal

DEFAULT_UPLOAD_MB = 200


@dataclass
class Settings:
    out_dir: Path
    store: Path
    config_dir: Path
    upload_limit: int = DEFAULT_UPLOAD_MB * 1024 * 1024
    sql_max_rows: int = 10_000
    sql_timeout: float = 30.0
    busy_wait: float = 5.0  # seconds a request waits for the store before saying it is busy
    lock_wait: float = 30.0  # seconds a seal or verify waits for another process's lock


class Busy(SettlementError):
    """The store is in use by a run (503)."""

    def __init__(self) -> None:
        super().__init__("结算库正被其他操作占用，暂时不能读取；请稍候片刻再刷新本页")


class NotFound(SettlementError):
    """No such month, file or job (404)."""


class MissingCompanies(RefusedError):
    """A run of a month that companies of earlier months have not submitted for (409), until
    the administrator confirms: `missing` lists them."""

    def __init__(self, month: str, missing: list[dict]) -> None:
        names = "、".join(
            f"{m['name']}（{m['company']}，最近提交 {m['last_month']}）" for m in missing
        )
        super().__init__(
            f"以下企业在此前月份提交过投递日志，但还没有提交 {month} 的：{names}；"
            "现在结算，这些企业本月的投递不会得到补贴。确认仍要结算，请勾选"
            "“本月缺少以上企业，仍然结算”（API：confirm_missing 设为 true）"
        )
        self.missing = missing


@dataclass(frozen=True)
class Who:
    """Who is acting, and from where: the user and the client's address."""

    user: User
    origin: str

    @property
    def actor(self) -> Actor:
        return Actor(self.user.name, f"portal@{self.origin}")


class Portal:
    """The portal's view of one output folder, its store and configuration."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.out = settings.out_dir.resolve()
        self.store = settings.store.resolve()
        self.cfg = load_config(settings.config_dir)
        self.accounts = Accounts(portal_db(self.store))
        self.jobs = Jobs()
        self._store = threading.Lock()

    # ------------------------------------------------------------------ the store, one at a time

    @contextmanager
    def store_access(self, wait: float | None = None) -> Iterator[None]:
        if not self._store.acquire(timeout=self.settings.busy_wait if wait is None else wait):
            raise Busy()
        try:
            yield
        finally:
            self._store.release()

    def has_store(self) -> bool:
        return self.store.is_file()

    # ------------------------------------------------------------------ names

    def leagues(self) -> list[dict]:
        """Every 盟市 with a policy: code and name."""
        return [
            {"code": code, "name": policy.league_name}
            for code, policy in sorted(self.cfg.policies.items())
        ]

    def league_name(self, league: str) -> str:
        return self.cfg.policies[league].league_name if league in self.cfg.policies else ""

    def company_name(self, company: str) -> str:
        c = self.cfg.companies.get(company)
        return c.name if c else company

    def check_league(self, league: str) -> str:
        if league not in self.cfg.policies:
            raise NotFound(f"没有盟市 {league}（配置中没有该盟市的补贴政策）")
        return league

    @staticmethod
    def check_year(year: int) -> int:
        """A budget year as the CLI takes it (2000–2100)."""
        if not 2000 <= year <= 2100:
            raise UsageError(f"预算年度 {year} 无效：应为 2000 至 2100 之间的年份")
        return year

    @staticmethod
    def month(text: str) -> Month:
        return Month.parse(text)

    # ------------------------------------------------------------------ months

    def _runs(self, league: str) -> list[dict]:
        if not self.has_store():
            return []
        with self.store_access():
            runs = list_runs(self.store, league)
            stale = {s["run_id"] for s in stale_months(self.store)}
        for r in runs:
            r["stale"] = r["run_id"] in stale
        return runs

    def _statements(self, league: str, month: str) -> dict:
        path = statements.statements_dir(self.out, league, month) / "statements.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"files": {}}

    def months(self, who: Who, league: str) -> list[dict]:
        """A 盟市's months with state, parcels and payable: the whole month for the office and
        the auditors, the company's own figures for a company (SPEC §11)."""
        self.check_league(league)
        runs = self._runs(league)
        by_month: dict[str, dict] = {}
        for r in runs:
            m = by_month.setdefault(r["month"], {"month": r["month"], "runs": []})
            m["runs"].append(r)
        subs = self.submissions(league)
        for s in subs:
            by_month.setdefault(s["month"], {"month": s["month"], "runs": []})
        out = []
        for month in sorted(by_month, reverse=True):
            current = [r for r in by_month[month]["runs"] if r["status"] == "current"]
            regular = next((r for r in current if r["kind"] == "regular"), None)
            voided = any(r["status"] == "voided" for r in by_month[month]["runs"])
            if regular is None:
                state = "已作废" if voided else "未结算"
            elif regular["stale"]:
                state = "需重算"
            else:
                state = "已封存" if regular["sealed"] else "已结算"
            row = {
                "month": month,
                "state": state,
                "run_id": regular["run_id"] if regular else None,
                "run_by": regular["run_by"] if regular else None,
                "finished_at": local_text(regular["finished_at"]) if regular else None,
            }
            month_subs = [s for s in subs if s["month"] == month]
            if who.user.role == "company":
                mine = self._statements(league, month)["files"].get(f"{who.user.company}.xlsx")
                own = [s for s in month_subs if s["company"] == who.user.company]
                if not own and mine is None:
                    continue
                regular_own = [s for s in own if not s["late"]]
                row |= {
                    "company": who.user.company,
                    "submitted": regular_own[0]["uploaded_at"] if regular_own else None,
                    "late": [s for s in own if s["late"]],
                    "parcels": mine["parcels"] if mine and regular else None,
                    "payable_fen": mine["subsidy_fen"] if mine and regular else None,
                }
            else:
                row |= {
                    "submissions": sum(1 for s in month_subs if not s["late"]),
                    "late_pending": sum(1 for s in month_subs if s["late"] and not s["settled_in"]),
                    "parcels": sum(r["parcels"] for r in current) if current else None,
                    "payable_fen": sum(r["subsidy_fen"] for r in current) if current else None,
                    "supplements": sum(1 for r in current if r["kind"] == "supplementary"),
                }
            out.append(row)
        return out

    def month_detail(self, who: Who, league: str, month: Month) -> dict:
        """One month as a page shows it: state, runs, statements present, submissions."""
        rows = {m["month"]: m for m in self.months(who, league)}
        row = rows.get(str(month)) or {"month": str(month), "state": "未结算", "run_id": None}
        files = self._statements(league, str(month))["files"]
        row["statement_files"] = sorted(files)
        row["runs"] = [
            r
            | {
                "status_text": audit.STATUS_TEXT[r["status"]],
                "finished": local_text(r["finished_at"]),
            }
            for r in self._runs(league)
            if r["month"] == str(month)
        ]
        row["warnings"] = self._run_warnings(row["runs"])
        if who.user.role == "company":
            row["runs"] = []  # other companies' totals are in the runs
            row["warnings"] = []  # they name other companies
            row["statement_files"] = [
                f for f in files if f.startswith(f"{who.user.company}.") or f.startswith("public_")
            ]
        seal = None
        if row["run_id"] and self.has_store():
            with self.store_access():
                seal = month_state(self.store, league, month).seal
        row["seal"] = (
            {
                k: str(v)
                for k, v in seal.items()
                if k in ("reviewed_by", "approved_by", "approval_ref", "notice_start", "notice_end")
            }
            | {"sealed_at": local_text(seal["sealed_at"])}
            if seal
            else None
        )
        return row

    def _run_warnings(self, runs: list[dict]) -> list[str]:
        """The office's warnings of the month's current runs, from their manifests (waybills
        that several companies logged)."""
        out = []
        for r in runs:
            entry = self.out / journal.entry_rel(r["run_id"])
            if r["status"] == "current" and entry.is_file():
                out += cross_company_warnings(json.loads(entry.read_text(encoding="utf-8")))
        return out

    # ------------------------------------------------------------------ submissions

    def submissions(
        self, league: str, month: str | None = None, company: str | None = None, all_=False
    ) -> list[dict]:
        """Submissions of a 盟市 (a month, a company), current ones unless `all_`, newest first."""
        rows = self.accounts.rows(
            "SELECT id, league_code, month, company, sha256, original_name, size_bytes, rows, "
            "accepted, status, uploaded_by, uploaded_at, late, settled_in FROM submissions "
            "WHERE league_code = ? AND (? IS NULL OR month = ?) AND (? IS NULL OR company = ?) "
            "AND (? OR status = 'current') ORDER BY id DESC",
            (league, month, month, company, company, int(all_)),
        )
        for r in rows:
            r["uploaded_at"] = local_text(r["uploaded_at"])
        return rows

    def last_league(self, company: str) -> str | None:
        """The 盟市 a company last submitted to."""
        rows = self.accounts.rows(
            "SELECT league_code FROM submissions WHERE company = ? ORDER BY id DESC LIMIT 1",
            (company,),
        )
        return rows[0]["league_code"] if rows else None

    def file_names(self, league: str, month: str, company: str | None = None) -> dict[str, str]:
        """Stored submission path -> the name it was uploaded with (for messages and listings:
        a company knows its file by its own name, not by a hash)."""
        rows = self.accounts.rows(
            "SELECT path, company, original_name FROM submissions WHERE league_code = ? "
            "AND month = ? AND (? IS NULL OR company = ?)",
            (league, month, company, company),
        )
        shown = [
            r["original_name"] if company else f"{r['company']}：{r['original_name']}" for r in rows
        ]
        # runs before portal runs recorded paths relative to the output folder named the
        # absolute path: replaced first, so that the relative one is not found inside it
        return {str(self.out / r["path"]): name for r, name in zip(rows, shown, strict=True)} | {
            r["path"]: name for r, name in zip(rows, shown, strict=True)
        }

    def submission_report(self, submission_id: int) -> dict | None:
        if not 0 < submission_id < 2**63:  # SQLite's integers: any other id is no submission
            return None
        rows = self.accounts.rows("SELECT * FROM submissions WHERE id = ?", (submission_id,))
        if not rows:
            return None
        row = rows[0]
        row["report"] = json.loads(row["report"])
        row["uploaded_at"] = local_text(row["uploaded_at"])
        return row

    def _is_late(self, league: str, month: Month) -> bool:
        """Whether a submission now is late (补报: the month is sealed, so it waits for a
        supplementary run); refused while the month is run but not sealed."""
        if not self.has_store():
            return False
        with self.store_access():
            state = month_state(self.store, league, month)
        if state.seal is not None:
            return True
        if state.run_id is not None:
            raise RefusedError(
                f"盟市 {league} {month} 已于结算批次 {state.run_id} 结算，提交已锁定，不能再提交或替换；"
                "如需更正，请联系盟市邮政管理局（作废该月结算后可重新提交）；封存后迟到的投递可作为补报提交"
            )
        return False

    def submit(
        self, who: Who, league: str, month: Month, source: BinaryIO, original_name: str
    ) -> dict:
        """Store a company's log for a 盟市-month and validate it as `settle validate` does.

        Refused: a month run but not sealed, a file over the limit, of another type, that
        cannot be read, or that holds rows of another company. Otherwise it becomes the
        company's current submission for the month (replacing the previous one, which is kept);
        for a sealed month it is a late one (补报), replacing only a late one not yet settled,
        for the office's supplementary run."""
        company = who.user.company
        self.check_league(league)
        original_name = (original_name or "").strip() or "（未命名）"
        late = self._is_late(league, month)
        folder = sub.submission_dir(self.out, league, month, company)
        tmp, sha, size = sub.store_upload(source, folder, original_name, self.settings.upload_limit)
        try:
            try:
                shown, count = sub.foreign_rows(tmp, company, set(self.cfg.companies))
            except InputFileError as exc:
                raise sub.unreadable(exc, original_name) from None
            if count:
                raise sub.ForeignRows(company, shown, count)
            final = sub.keep(tmp, sha)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        try:
            with self.store_access(wait=60):
                report = validate_logs(
                    self.cfg, league, month, [final], self.store if self.has_store() else None
                )
        except InputFileError as exc:
            raise sub.unreadable(exc, original_name) from None
        shown_report = sub.report_dict(report, str(final), original_name)
        # a late submission replaces only a late one still waiting for its supplementary run
        replaceable = (
            "league_code = ? AND month = ? AND company = ? AND status = 'current' AND late = ? "
            "AND settled_in IS NULL"
        )
        key = (league, str(month), company, int(late))
        with self.accounts.transaction() as db:
            previous = db.execute(
                f"SELECT id, original_name FROM submissions WHERE {replaceable}", key
            ).fetchall()
            db.execute(f"UPDATE submissions SET status = 'replaced' WHERE {replaceable}", key)
            cur = db.execute(
                "INSERT INTO submissions (league_code, month, company, sha256, path, "
                "original_name, size_bytes, rows, accepted, report, status, uploaded_by, origin, "
                "uploaded_at, late) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'current', ?, ?, ?, ?)",
                (
                    league,
                    str(month),
                    company,
                    sha,
                    final.relative_to(self.out).as_posix(),
                    original_name,
                    size,
                    report.rows,
                    report.accepted,
                    json.dumps(shown_report, ensure_ascii=False),
                    who.user.name,
                    who.origin,
                    now_utc().isoformat(timespec="seconds"),
                    int(late),
                ),
            )
            self.accounts.record(
                db,
                who.user.name,
                who.origin,
                ("late_" if late else "") + ("submission_replace" if previous else "submission"),
                league,
                str(month),
                {
                    "company": company,
                    "sha256": sha,
                    "original_name": original_name,
                    "rows": report.rows,
                    "accepted": report.accepted,
                    "replaces": [p[0] for p in previous],
                },
            )
        return {
            "submission_id": cur.lastrowid,
            "league": league,
            "month": str(month),
            "company": company,
            "sha256": sha,
            "original_name": original_name,
            "size_bytes": size,
            "late": late,
            "replaced": [{"submission_id": p[0], "original_name": p[1]} for p in previous],
            "report": shown_report,
        }

    # ------------------------------------------------------------------ runs

    def missing_companies(self, league: str, month: Month) -> list[dict]:
        """Companies that submitted for an earlier month of the 盟市 but have no current
        submission for this one: code, name and the last month they submitted."""
        rows = self.accounts.rows(
            "SELECT company, MAX(month) AS last_month FROM submissions "
            "WHERE league_code = ? AND month < ? AND company NOT IN "
            "(SELECT company FROM submissions WHERE league_code = ? AND month = ? "
            " AND status = 'current') GROUP BY company ORDER BY company",
            (league, str(month), league, str(month)),
        )
        return [r | {"name": self.company_name(r["company"])} for r in rows]

    def late_submissions(self, league: str, month: str) -> list[dict]:
        """A sealed month's late submissions (补报) not yet settled: what a supplementary run
        of the month settles."""
        return [s for s in self.submissions(league, month) if s["late"] and not s["settled_in"]]

    def start_run(
        self,
        who: Who,
        league: str,
        month: Month,
        replace: bool = False,
        force: bool = False,
        confirm_missing: bool = False,
        supplementary: bool = False,
    ) -> Job:
        """Settle a 盟市-month from the current submission of every company, in the background;
        or (`supplementary`) a sealed month's late submissions, as `settle run --supplementary`.

        Refused (MissingCompanies) while a company of earlier months has not submitted for this
        one, unless `confirm_missing`."""
        self.check_league(league)
        if supplementary:
            chosen = self.late_submissions(league, str(month))
            if not chosen:
                raise RefusedError(f"盟市 {league} {month} 没有待补充结算的补报，无需补充结算")
            missing: list[dict] = []
        else:
            chosen = self.accounts.rows(
                "SELECT id, path FROM submissions WHERE league_code = ? AND month = ? "
                "AND status = 'current' AND late = 0 ORDER BY company",
                (league, str(month)),
            )
            if not chosen:
                raise RefusedError(f"盟市 {league} {month} 还没有任何企业提交投递日志，无法结算")
            missing = self.missing_companies(league, month)
            if missing and not confirm_missing:
                raise MissingCompanies(str(month), missing)
        ids = [r["id"] for r in chosen]
        # relative to the output folder (the child works there): the ledger, the rejects and
        # the statements record these, and a company's documents name no server path
        files = [
            r["path"]
            for r in self.accounts.rows(
                f"SELECT path FROM submissions WHERE id IN ({','.join('?' * len(ids))}) "
                "ORDER BY company",
                tuple(ids),
            )
        ]
        job = Job(new_job_id(), league, str(month), who.user.name, replace, force)
        job.confirm_missing = confirm_missing
        job.supplementary = supplementary
        names = self.file_names(league, str(month))

        def say(text: str) -> None:
            for path, name in names.items():
                text = text.replace(path, name)
            job.say(text)

        def work(job: Job) -> dict:
            what = "补报" if supplementary else "提交"
            say(f"开始{job.what}（共 {len(files)} 个企业的{what}）")
            request = {
                "config_dir": str(Path(self.settings.config_dir).resolve()),
                "league": league,
                "month": str(month),
                "files": files,
                "cwd": str(self.out),
                "out": self.out,
                "store": self.store,
                "replace": replace,
                "force": force,
                "supplementary": supplementary,
                "actor": (who.actor.name, who.actor.origin),
            }
            result = settle_in_child(request, say)
            if supplementary:
                with self.accounts.transaction() as db:
                    db.execute(
                        f"UPDATE submissions SET settled_in = ? WHERE id IN "
                        f"({','.join('?' * len(ids))})",
                        (result["run_id"], *ids),
                    )
            return result

        self.accounts.log(
            who.user.name,
            who.origin,
            "run_request",
            league=league,
            month=str(month),
            detail={
                "job": job.id,
                "replace": replace,
                "force": force,
                "supplementary": supplementary,
                "files": len(files),
                "missing": [m["company"] for m in missing],
            },
        )
        return self.jobs.start(job, work)

    # ------------------------------------------------------------------ seal and void

    def seal(self, who: Who, league: str, month: Month, approval: dict) -> dict:
        """Seal a month: the reviewer is the logged-in user, who must not be the one who ran it
        (maker-checker, SPEC §11). The statements are rendered again showing the seal."""
        self.check_league(league)
        approval = {**approval, "reviewed_by": who.user.name}
        with (
            self.store_access(),
            lock.store_lock(self.store, timeout=self.settings.lock_wait),
        ):
            row = months.seal_month(self.store, league, month, approval, who.actor)
            statements.rerender(
                self.out,
                self.cfg,
                league,
                month,
                self.store,
                who.actor,
                "seal",
                with_detail=statements.details_written(self.out, league, month),
            )
        return {k: (v if k == "warnings" else str(v)) for k, v in row.items()}

    def void(self, who: Who, league: str, month: Month, reason: str) -> dict:
        """Withdraw a month's current run (作废); its companies may submit again."""
        self.check_league(league)
        with self.store_access():
            result = months.void_month(self.cfg, self.store, league, month, reason, who.actor)
        return {
            "run_id": result.run_id,
            "voided_at": local_text(result.voided_at),
            "stale": [
                {"league": s["league_code"], "month": s["month"], "waybills": s["waybills"]}
                for s in result.stale
            ],
        }

    def status(self, league: str, year: int) -> dict:
        """The budget year (as `settle status`)."""
        self.check_league(league)
        self.check_year(year)
        if not self.has_store():
            raise NotFound("还没有任何结算")
        with self.store_access():
            return budget_year(self.store, league, year)

    # ------------------------------------------------------------------ statements and files

    def statement_file(self, league: str, month: Month, name: str) -> Path:
        """A published statement, notice or listing of a month (404 when there is none)."""
        self.check_league(league)
        path = statements.statements_dir(self.out, league, str(month)) / name
        if "/" in name or name.startswith(".") or not path.is_file():
            raise NotFound(
                f"盟市 {league} {month} 没有文件 {name}（该月尚未结算，或该企业当月没有结算单）"
            )
        return path

    def detail_csv(self, league: str, month: Month, company: str) -> Path:
        """A company's parcel detail of a settled month, as a temporary CSV (caller removes)."""
        self.check_league(league)
        folder = Path(tempfile.mkdtemp(prefix="settle-detail-"))
        path = folder / f"{company}.detail.csv"
        try:
            statements.export_detail(self.out, self.cfg, league, month, company, path)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return path

    def rejects(self, league: str, month: Month, company: str) -> pl.DataFrame:
        """A company's rejected rows of a settled month: rows naming the company, and every row
        of its submitted files (a row with a blank company is still its own)."""
        self.check_league(league)
        files = sorted((self.out / partition("rejects", league, str(month))).glob("*.parquet"))
        if not files:
            raise NotFound(f"盟市 {league} {month} 尚未结算，没有剔除清单")
        names = self.file_names(league, str(month), company)
        frame = pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed")
        mine = frame.filter(
            (pl.col("company").cast(pl.String).str.strip_chars() == company)
            | pl.col("source_file").cast(pl.String).is_in(list(names))
        )
        detail = pl.col("detail").cast(pl.String)
        for path, name in names.items():
            detail = detail.str.replace_all(path, name, literal=True)
        return mine.with_columns(
            pl.col("source_file").cast(pl.String).replace(names).alias("source_file"),
            detail.alias("detail"),
        ).drop("run_id", strict=False)

    def reconcile(
        self, who: Who, league: str, month: Month, source: BinaryIO, original_name: str
    ) -> dict:
        """A company's claim against the settled month, line by line (as `settle reconcile`)."""
        self.check_league(league)
        company = who.user.company
        suffix = sub.suffix_of(original_name or "")
        folder = Path(tempfile.mkdtemp(prefix="settle-claim-"))
        try:
            claim, _sha, _size = sub.store_upload(
                source, folder, original_name, self.settings.upload_limit
            )
            claim = claim.rename(folder / f"申报文件{suffix}")
            try:
                result = reconcile.reconcile(
                    self.out, league, str(month), company, claim, set(self.cfg.companies), self.out
                )
            except InputFileError as exc:
                raise sub.unreadable(exc, original_name) from None
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        self.accounts.log(
            who.user.name,
            who.origin,
            "reconcile",
            league=league,
            month=str(month),
            detail={"company": company, "claim": original_name, "lines": result.total["lines"]},
        )
        return {
            "league": league,
            "month": str(month),
            "company": company,
            "has_amounts": result.has_amounts,
            "summary": [
                s
                | {
                    "text": reconcile.STATUS_TEXT[s["status"]],
                    "compares": result.compares(s["status"]),
                }
                for s in result.summary
            ],
            "total": result.total,
            "note": reconcile.difference_note(result),
            "lines": {
                status: [r["claim_line"] for r in result.lines_with(status)]
                for status in ("NO_WAYBILL", "BAD_AMOUNT", "REPEATED")
            },
        }

    def reconciliation_file(self, league: str, month: Month, company: str) -> Path:
        self.check_league(league)
        path = self.out / partition("reconciliation", league, str(month)) / f"{company}.xlsx"
        if not path.is_file():
            raise NotFound(f"企业 {company} 在盟市 {league} {month} 还没有对账结果")
        return path

    # ------------------------------------------------------------------ auditors

    def _require_store(self) -> None:
        if not self.has_store():
            raise NotFound("还没有任何结算（结算库不存在）")

    def sql(self, query: str) -> pl.DataFrame:
        """One read-only query in the auditors' sandbox (`settle sql`), with its limits."""
        self._require_store()
        with self.store_access():
            con = audit.open_readonly(self.store)
            try:
                return audit.run_readonly(
                    con, query, None, self.settings.sql_max_rows, self.settings.sql_timeout
                )
            except SettlementError as exc:
                raise UsageError(for_portal(str(exc))) from None
            finally:
                con.close()

    def queries(self) -> dict[str, audit.Query]:
        return audit.load_queries()

    def query_leagues(self, name: str, params: dict[str, str]) -> list[str]:
        """The 盟市 a canned query's league parameters name: an auditor may read only its own
        (outside the SQL console, which reads the whole store by design)."""
        queries = audit.load_queries()
        if name not in queries:
            raise NotFound(f"没有名为 {name} 的预置查询")
        kinds = queries[name].kinds
        return [
            str(value).strip()
            for param, value in params.items()
            if kinds.get(param) == "league" and str(value).strip()
        ]

    def run_query(self, name: str, params: dict[str, str]) -> pl.DataFrame:
        """A canned query (`settle query NAME --param …`)."""
        self._require_store()
        queries = audit.load_queries()
        if name not in queries:
            raise NotFound(f"没有名为 {name} 的预置查询")
        bound = audit.bind_params(queries[name], params)
        with self.store_access():
            con = audit.open_readonly(self.store)
            try:
                return audit.run_readonly(
                    con,
                    queries[name].sql,
                    bound,
                    self.settings.sql_max_rows,
                    self.settings.sql_timeout,
                )
            finally:
                con.close()

    def verify(self, who: Who) -> dict:
        """`settle verify`: hashes, the journal's chain, the audits and the totals."""
        self._require_store()
        with (
            self.store_access(wait=60),
            lock.store_lock(self.store, timeout=self.settings.lock_wait),
        ):
            report = audit.verify(self.out, self.store)
        self.accounts.log(
            who.user.name, who.origin, "verify", detail={"problems": len(report.problems)}
        )
        return {
            "ok": not report.problems,
            "runs": report.runs,
            "files": report.files,
            "problems": [p.__dict__ | {"detail": for_portal(p.detail)} for p in report.problems],
            "notes": [for_portal(n) for n in report.notes],
        }

    def explain(self, who: Who, waybill: str) -> list[str]:
        """`settle explain`: one waybill's computation, or a rejected row's reason — in the
        user's 盟市 only; a waybill of another 盟市 is as unknown as one of none (404)."""
        self._require_store()
        waybill = waybill.strip()
        if not waybill:
            raise UsageError("请输入运单号")
        with self.store_access():
            try:
                return explain.explain(self.store, waybill, who.user.leagues)
            except RefusedError as exc:
                raise NotFound(str(exc)) from None

    def events(self, limit: int = 500) -> dict:
        """Both logs: the store's state changes and the portal's (logins, uploads, accounts)."""
        store_events: list[dict] = []
        if self.has_store():
            with self.store_access():
                store_events = list_events(self.store, limit)
        for e in store_events:
            e["occurred_at"] = local_text(e["occurred_at"])
        portal_events = self.accounts.events(limit)
        for e in portal_events:
            e["occurred_at"] = local_text(e["occurred_at"])
        return {"store": store_events, "portal": portal_events}
