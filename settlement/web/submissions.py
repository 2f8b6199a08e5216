"""A company's monthly logs, uploaded through the portal: stored by content hash, checked, and
validated exactly as `settle validate` does.

Files go to `<out>/submissions/league=L/month=M/<COMPANY>/<sha256>.<ext>`. The uploaded name is
kept only as metadata (shown escaped), never used as a path; every path part is checked (league
six digits, a month, the company's code, the hash, a known suffix), so no upload can land outside
its folder. A file holding a row of another registered company is refused whole, naming the
rows; a row naming an unknown code (`zto`, a typo) is the engine's UNKNOWN_COMPANY, in the
report like `settle validate` shows it.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from pathlib import Path
from typing import BinaryIO

import polars as pl

from ..errors import InputFileError, RefusedError, UsageError
from ..ingest import LogStream
from ..period import Month
from ..reasons import REASONS
from .messages import for_portal

#: The suffixes a log may have (SPEC §2); the stored file keeps the one it was uploaded with.
SUFFIXES = {".csv": "csv", ".xlsx": "xlsx", ".parquet": "parquet"}
COMPANY_RE = re.compile(r"[A-Z0-9_]{1,16}")
CHUNK = 1 << 20
#: Rows of another company named in a refusal (the count is always given).
FOREIGN_SHOWN = 20


class TooLarge(RefusedError):
    """An upload over the size limit (413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"上传的文件超过大小上限 {limit / 1024 / 1024:,.0f} MB，未保存；"
            "请按旗县或日期拆分为几个较小的文件分别提交，或联系管理员"
        )


class ForeignRows(RefusedError):
    """A file with rows of another company (422): refused whole."""

    def __init__(self, company: str, rows: list[dict], count: int) -> None:
        shown = "、".join(f"第 {r['line']} 行（{r['company']}）" for r in rows[:5])
        more = f" 等共 {count:,} 行" if count > 5 else ""
        super().__init__(
            f"文件中有 {count:,} 行的快递企业是其他已登记企业，不是本企业（{company}）：{shown}{more}。"
            "每家企业只能提交本企业的投递记录；请删除这些行后重新上传，文件未保存"
        )
        self.rows = rows
        self.count = count


def submission_dir(out_dir: Path, league: str, month: Month, company: str) -> Path:
    """The folder of one company's submissions for a 盟市-month (every part checked)."""
    if not (len(league) == 6 and league.isdigit()):
        raise UsageError(f"盟市代码“{league}”应为6位数字")
    if not COMPANY_RE.fullmatch(company):
        raise UsageError(f"企业编码“{company}”无效")
    root = (out_dir / "submissions").resolve()
    folder = (root / f"league={league}" / f"month={month}" / company).resolve()
    if not folder.is_relative_to(root):  # cannot happen with the checks above; never trust it
        raise UsageError("提交文件的保存位置无效")
    return folder


def suffix_of(original_name: str) -> str:
    """The stored suffix for an uploaded name, or a refusal naming what is accepted."""
    suffix = Path(original_name.replace("\\", "/")).suffix.lower()
    if suffix not in SUFFIXES:
        raise UsageError(
            f"不支持的文件类型“{suffix or '无扩展名'}”：请上传 CSV（UTF-8 或 GBK）、XLSX 或 Parquet 文件"
        )
    return suffix


def store_upload(
    source: BinaryIO, folder: Path, original_name: str, limit: int
) -> tuple[Path, str, int]:
    """Copy an upload into `folder` under a temporary name, hashing and counting it; refuse one
    over `limit` bytes (removing what was written). Returns (temporary path, sha256, size)."""
    suffix = suffix_of(original_name)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".upload-{secrets.token_hex(8)}{suffix}"
    digest = hashlib.sha256()
    size = 0
    try:
        with tmp.open("xb") as fh:
            while chunk := source.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise TooLarge(limit)
                digest.update(chunk)
                fh.write(chunk)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if size == 0:
        tmp.unlink()
        raise UsageError("上传的文件是空的（0 字节），未保存")
    return tmp, digest.hexdigest(), size


def keep(tmp: Path, sha256: str) -> Path:
    """Move a checked upload to its final name, `<sha256><suffix>` (same content: same file)."""
    final = tmp.with_name(sha256 + tmp.suffix)
    if final.exists():
        tmp.unlink()
    else:
        os.replace(tmp, final)
    return final


def foreign_rows(path: Path, company: str, registered: set[str]) -> tuple[list[dict], int]:
    """Rows naming another registered company than `company`: the first FOREIGN_SHOWN (line as
    Excel shows it, company as written) and their count. A blank company is the run's
    MALFORMED, an unregistered code its UNKNOWN_COMPANY: not another company's row."""
    others = sorted(registered - {company})
    stream = LogStream([path])
    header_line = stream.header_lines[0]
    shown: list[dict] = []
    count = 0
    for frame in stream.frames():
        written = pl.col("company").cast(pl.String).str.strip_chars()
        hits = frame.filter(written.is_in(others))
        count += hits.height
        for r in hits.head(FOREIGN_SHOWN - len(shown)).iter_rows(named=True):
            shown.append({"line": r["source_row"] + header_line, "company": r["company"].strip()})
    return shown, count


def report_dict(report, stored_name: str, original_name: str) -> dict:
    """A ValidationReport as JSON for the page and the API, the stored path shown as the
    uploaded name."""

    def name(path: str) -> str:
        return original_name if path == stored_name else path

    by_reason = [
        {"reason_code": code, "reason": REASONS[code], "rows": report.by_reason[code]}
        for code in REASONS
        if report.by_reason.get(code)
    ]
    examples = [
        {
            "reason_code": code,
            "line": r["source_line"],
            "waybill_no": r["waybill_no"],
            "detail": (r["detail"] or "").replace(stored_name, original_name),
        }
        for code in REASONS
        for r in report.examples.get(code, [])
    ]
    inputs = [
        {
            "file": name(f["path"]),
            "format": f["format"],
            "encoding": f["encoding"],
            "sheet": f.get("sheet"),
            "header_line": f["header_line"],
            "rows": f["rows"],
            "accepted": f["accepted"],
            "rejected": f["rejected"],
        }
        for f in report.inputs
    ]
    return {
        "rows": report.rows,
        "accepted": report.accepted,
        "rejected": report.rows - report.accepted,
        "mode": report.mode,
        "warnings": [for_portal(w.replace(stored_name, original_name)) for w in report.warnings],
        "inputs": inputs,
        "by_reason": by_reason,
        "examples": examples,
    }


def unreadable(exc: InputFileError, original_name: str) -> UsageError:
    """An unreadable upload's message naming the file as the company knows it."""
    return UsageError(f"无法读取上传的文件“{original_name}”：{exc.problem}；文件未保存")
