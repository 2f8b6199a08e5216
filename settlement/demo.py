"""`settle demo`: settle the bundled sample into a directory the demo owns, and nothing else.

The demo starts afresh each time, so it clears its output directory first. It clears only a
directory it made itself: one carrying its mark (MARKER, which lists the runs the demo recorded)
and holding nothing else — no run it did not record, no sealed month, no other file. Any other
non-empty directory (a real store, sealed months, anything) is refused, untouched (SPEC §8.7).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from .clock import local_text, now_utc
from .errors import SettlementError, UsageError
from .period import Month

MARKER = ".settle-demo.json"
#: what a run writes at the top of its --out directory (with the store beside it)
OUTPUTS = {
    "ledger",
    "rejects",
    "units",
    "manifests",
    "statements",
    "journal",
    "reconciliation",
    "voided",
    ".staging",
    "settlement.duckdb",
    "settlement.duckdb.lock",
    "settlement.duckdb.wal",
}
#: the query the demo suggests: 分 summed as integers, 元 shown exactly (分 × 0.01 is a DECIMAL)
QUERY = (
    "SELECT league, month, company, SUM(subsidy_fen) AS subsidy_fen, "
    "SUM(subsidy_fen) * 0.01 AS yuan FROM ledger GROUP BY ALL ORDER BY ALL"
)
ADVICE = "演示不会清空它；请用 --out 指定一个新目录或空目录"


def jobs(data_dir: Path) -> list[tuple[Month, str, Path]]:
    """(month, league, folder) of every sample_data/<league>/<YYYY-MM>/, in month order."""
    if not data_dir.is_dir():
        raise UsageError(f"样例数据目录 {data_dir} 不存在")
    found = sorted(
        (Month.parse(m.name), league_dir.name, m)
        for league_dir in sorted(data_dir.iterdir())
        if league_dir.is_dir()
        for m in sorted(league_dir.iterdir())
        if m.is_dir()
    )
    if not found:
        raise UsageError(f"{data_dir} 下没有 <盟市代码>/<YYYY-MM>/ 样例数据")
    return found


def prepare(out_dir: Path) -> None:
    """Make out_dir an empty directory carrying the demo's mark, clearing it only when the demo
    made everything in it; otherwise a UsageError saying what is there and what to do."""
    if out_dir.exists():
        if not out_dir.is_dir():
            raise UsageError(f"{out_dir} 是一个文件，不是目录；请用 --out 指定一个目录")
        if any(out_dir.iterdir()):
            _check_ours(out_dir)
            shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_marker(out_dir, [], local_text(now_utc()))


def record(out_dir: Path, run_id: str) -> None:
    """Add a run the demo made to its mark, so that the next demo may clear it."""
    note = _marker(out_dir)
    _write_marker(out_dir, [*note["runs"], run_id], note.get("created_at", ""))


def _write_marker(out_dir: Path, runs: list[str], created_at: str) -> None:
    note = {
        "made_by": "settle demo",
        "note": "此目录由 settle demo 建立；再次运行 settle demo 会清空它（只要其中都是演示生成的内容）",
        "created_at": created_at,
        "runs": runs,
    }
    (out_dir / MARKER).write_text(json.dumps(note, ensure_ascii=False, indent=1), encoding="utf-8")


def _marker(out_dir: Path) -> dict:
    try:
        note = json.loads((out_dir / MARKER).read_text(encoding="utf-8"))
        if note.get("made_by") == "settle demo" and isinstance(note.get("runs"), list):
            return note
    except (OSError, ValueError):
        pass
    raise UsageError(f"{out_dir / MARKER} 不是 settle demo 写下的标记文件；{ADVICE}")


def _check_ours(out_dir: Path) -> None:
    """Refuse unless out_dir holds only what the demo made: its mark, run outputs, and a store
    whose runs are all the demo's and none sealed."""
    if not (out_dir / MARKER).is_file():
        raise UsageError(
            f"{out_dir} 不是空目录，也不是 settle demo 建立的目录（其中有 {_contents(out_dir)}）；"
            f"{ADVICE}"
        )
    made = set(_marker(out_dir)["runs"])
    strangers = sorted(p.name for p in out_dir.iterdir() if p.name not in OUTPUTS | {MARKER})
    runs = _runs(out_dir / "settlement.duckdb")
    foreign = [r["run_id"] for r in runs if r["run_id"] not in made]
    sealed = sorted({f"{r['league_code']} {r['month']}" for r in runs if r["sealed"]})
    found = []
    if strangers:
        found.append(f"不是演示输出的文件 {_names(strangers)}")
    if foreign:
        found.append(f"不是演示产生的结算批次 {_names(foreign)}")
    if sealed:
        found.append(f"已封存的月份 {_names(sealed)}")
    if found:
        raise UsageError(f"{out_dir} 由 settle demo 建立，但其中又有{'、'.join(found)}；{ADVICE}")


def _runs(store: Path) -> list[dict]:
    from .store import list_runs

    if not store.exists():
        return []
    try:
        return list_runs(store)
    except SettlementError:
        raise UsageError(f"无法读取 {store}，不能确认其中都是演示生成的结算；{ADVICE}") from None


def _contents(out_dir: Path) -> str:
    """What a directory holds, for people: a few names, and what its store records."""
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in out_dir.iterdir())
    text = _names(names)
    store = out_dir / "settlement.duckdb"
    if store.is_file():
        try:
            from .store import list_runs

            runs = list_runs(store)
        except SettlementError:
            return text + "；其中的结算库无法读取"
        sealed = {(r["league_code"], r["month"]) for r in runs if r["sealed"]}
        text += f"；结算库 settlement.duckdb 中有 {len(runs)} 个结算批次"
        if sealed:
            text += f"，{len(sealed)} 个已封存的月份"
    return text


def _names(names: list[str], shown: int = 4) -> str:
    text = "、".join(names[:shown])
    return text + (f" 等 {len(names)} 项" if len(names) > shown else "")
