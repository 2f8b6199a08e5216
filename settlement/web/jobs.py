"""Settling a month from the portal: a background thread whose progress the page polls.

The settlement itself runs in a child process (`settle_in_child`): its memory is its own, and
the portal's pages keep reading the store meanwhile (DuckDB admits one configuration per file
and process; across processes, readers and the run's brief final write wait for each other —
`store.connect_file`). One run at a time per store. A run of a month that already has a current run stops at the
comparison (ReplaceRefused, state `confirm`) until the administrator confirms the replacement;
a month not yet ended, or logs that mostly belong elsewhere, stop at `refused` with `forceable`.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from ..clock import local_text, now_utc
from ..errors import RefusedError, ReplaceRefused, SettlementError
from .messages import for_portal

log = logging.getLogger("settlement.web")


@dataclass
class Job:
    id: str
    league: str
    month: str
    user: str
    replace: bool
    force: bool
    state: str = "running"  # running | done | confirm | refused | failed
    messages: list[dict] = field(default_factory=list)
    result: dict | None = None
    error: str | None = None
    forceable: bool = False
    confirm_missing: bool = False  # run although companies of earlier months have not submitted
    supplementary: bool = False  # 补充结算 of a sealed month's late submissions
    changes: list[dict] = field(default_factory=list)
    started_at: str = field(default_factory=lambda: local_text(now_utc()))
    finished_at: str | None = None
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def what(self) -> str:
        return "补充结算" if self.supplementary else "结算"

    def say(self, text: str) -> None:
        self.messages.append({"at": local_text(now_utc()), "text": text})

    def public(self) -> dict:
        """What the page and the API show."""
        return {
            "job": self.id,
            "league": self.league,
            "month": self.month,
            "user": self.user,
            "replace": self.replace,
            "force": self.force,
            "confirm_missing": self.confirm_missing,
            "supplementary": self.supplementary,
            "state": self.state,
            "messages": self.messages,
            "result": self.result,
            "error": self.error,
            "forceable": self.forceable,
            "changes": self.changes,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


class Jobs:
    """The runs started from the portal since it started (kept in memory; the store records
    every run that was published)."""

    def __init__(self, what: str = "结算") -> None:
        self.what = what  # what a job does, in the busy message: 结算, 模拟测算
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def running(self) -> Job | None:
        return next((j for j in self._jobs.values() if j.state == "running"), None)

    def start(self, job: Job, work: Callable[[Job], dict]) -> Job:
        """Run `work(job)` in a thread; refused while another run is in progress."""
        with self._lock:
            busy = self.running()
            if busy is not None:
                raise RefusedError(
                    f"{busy.user} 于 {busy.started_at} 开始的{self.what}（盟市 {busy.league} "
                    f"{busy.month}）尚未结束；同一时间只能进行一个{self.what}，请稍后再试"
                )
            self._jobs[job.id] = job
        thread = threading.Thread(
            target=self._run, args=(job, work), name=f"settle-{job.id}", daemon=True
        )
        thread.start()
        return job

    @staticmethod
    def _run(job: Job, work: Callable[[Job], dict]) -> None:
        try:
            job.result = work(job)
            job.state = "done"
        except ReplaceRefused as exc:
            job.state = "confirm"
            job.error = for_portal(str(exc))
            job.changes = exc.changes
        except RefusedError as exc:
            job.state = "refused"
            job.forceable = "--force" in str(exc) and not job.force
            job.error = for_portal(str(exc))
        except SettlementError as exc:
            job.state = "failed"
            job.error = for_portal(str(exc))
        except Exception as exc:  # noqa: BLE001 - shown on the page, logged in full
            log.exception("run %s failed", job.id)
            job.state = "failed"
            job.error = f"内部错误：{type(exc).__name__}: {exc}（详细信息见服务器日志）"
        finally:
            job.finished_at = local_text(now_utc())
            job.done.set()


def new_job_id() -> str:
    return secrets.token_hex(8)


# --------------------------------------------------------------------------- the child process


def _child(queue, request: dict) -> None:
    """In the child: settle the month, sending ("say", text) while it works and one final
    message: ("done", summary), ("confirm", message, changes), ("refused", message) or
    ("failed", message)."""
    try:
        from ..config import load_config
        from ..engine import settle_month
        from ..events import Actor
        from ..period import Month

        if request.get("cwd"):  # the files are named relative to it
            import os

            os.chdir(request["cwd"])
        cfg = load_config(request["config_dir"])
        result = settle_month(
            cfg,
            request["league"],
            Month.parse(request["month"]),
            request["files"],
            request["out"],
            request["store"],
            lambda text: queue.put(("say", text)),
            replace=request["replace"],
            force=request["force"],
            supplementary=request.get("supplementary", False),
            actor=Actor(*request["actor"]),
        )
        queue.put(("done", summary(result)))
    except ReplaceRefused as exc:
        queue.put(("confirm", str(exc), exc.changes))
    except RefusedError as exc:
        queue.put(("refused", str(exc)))
    except SettlementError as exc:
        queue.put(("failed", str(exc)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which logs it
        import traceback

        queue.put(("error", f"{type(exc).__name__}: {exc}", traceback.format_exc()))


def summary(result) -> dict:
    """What the page and the API show of a finished run."""
    from ..engine import cross_company_warnings

    m = result.manifest
    return {
        "run_id": result.run_id,
        "kind": m.get("kind", "regular"),
        "payable_in_month": m.get("payable_in_month"),  # a supplement: paid in this month
        "breakeven_excess_fen": m["totals"].get("breakeven_excess_fen", 0),
        "superseded": result.superseded,
        "rows_in": m["counts"]["rows_in"],
        "parcels": m["counts"]["parcels"],
        "rejects": m["counts"]["rejects"],
        "by_reason": m["counts"]["by_reason"],
        "gross_fen": m["totals"]["gross_fen"],
        "breakeven_reduction_fen": m["totals"]["breakeven_reduction_fen"],
        "budget_reduction_fen": m["totals"]["budget_reduction_fen"],
        "subsidy_fen": m["totals"]["subsidy_fen"],
        "budget_available_fen": m["budget"]["available_fen"],
        "changes": result.changes,
        "warnings": cross_company_warnings(m),
        "stale": [
            {"league": s["league_code"], "month": s["month"], "waybills": s["waybills"]}
            for s in result.stale
        ],
    }


def settle_in_child(request: dict, say: Callable[[str], None]) -> dict:
    """Run `engine.settle_month` in a child process (spawned, not forked: the portal has
    threads); relay its progress to `say`; return its summary or raise what it raised."""
    import multiprocessing
    import queue as queues

    context = multiprocessing.get_context("spawn")
    channel = context.Queue()
    child = context.Process(target=_child, args=(channel, request), name="settle-run", daemon=True)
    child.start()
    try:
        while True:
            try:
                message = channel.get(timeout=0.5)
            except queues.Empty:
                if not child.is_alive():
                    raise SettlementError(
                        f"结算进程意外退出（退出码 {child.exitcode}），未发布任何结果；请查看服务器日志"
                    ) from None
                continue
            kind = message[0]
            if kind == "say":
                say(message[1])
            elif kind == "done":
                return message[1]
            elif kind == "confirm":
                raise ReplaceRefused(message[1], message[2], [])
            elif kind == "refused":
                raise RefusedError(message[1])
            elif kind == "failed":
                raise SettlementError(message[1])
            else:
                log.error("run failed in the child process:\n%s", message[2])
                raise SettlementError(f"内部错误：{message[1]}（详细信息见服务器日志）")
    finally:
        child.join(timeout=30)
