"""The `settle` command line: thin wrappers that parse options, call the library and print.

Exit codes (SPEC §5): 0 success; 2 bad arguments, configuration or unreadable input files
(one clear line on stderr, nothing written); 1 anything else.
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
from pathlib import Path

import click

from . import DEFAULT_CONFIG_DIR, SAMPLE_DATA_DIR
from .config import load_config
from .errors import SettlementError, UsageError
from .money import format_yuan
from .period import Month
from .reasons import REASONS
from .screen import join_lines, width, wrap
from .screen import pad as _pad


def _fail(message: str, code: int) -> None:
    click.echo(message, err=True)
    sys.exit(code)


def friendly(func):
    """Turn SettlementError into one line on stderr and its exit code; never a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except SettlementError as exc:
            click.echo(f"错误：{exc}", err=True)
            for line in exc.details:  # e.g. what a refused run would have changed
                click.echo(line, err=True)
            sys.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except BrokenPipeError:  # output piped into `head`: not an error
            sys.stderr.close()
            sys.exit(0)
        except Exception as exc:  # noqa: BLE001 - the last line of defence for users
            if os.environ.get("SETTLE_DEBUG"):
                traceback.print_exc()
            _fail(f"内部错误：{type(exc).__name__}: {exc}（设置 SETTLE_DEBUG=1 可查看详细信息）", 1)

    return wrapper


def _row(widths: tuple[int, ...], values: list[str]) -> str:
    """One line of a table on screen: a positive width pads left-aligned, a negative one right."""
    return "  " + "".join(_pad(v, abs(w), w < 0) for w, v in zip(widths, values, strict=True))


def _progress(quiet: bool):
    if quiet:
        return None
    return lambda message: click.echo(f"[settle] {message}", err=True)


def _month(_ctx, _param, value: str | None) -> Month | None:
    if value is None:
        return None
    try:
        return Month.parse(value)
    except UsageError as exc:
        raise click.BadParameter(str(exc)) from None


def _league(_ctx, _param, value: str | None) -> str | None:
    if value is not None and not (len(value) == 6 and value.isdigit()):
        raise click.BadParameter(f"盟市代码“{value}”应为6位数字，如 150700")
    return value


config_option = click.option(
    "--config",
    "config_dir",
    type=click.Path(path_type=Path),
    default=DEFAULT_CONFIG_DIR,
    show_default="随程序安装的 config/",
    help="配置目录：companies.toml、policies/、divisions/。",
)
league_option = click.option(
    "--league", required=True, callback=_league, help="盟市代码（6位），如 150700 呼伦贝尔市。"
)
month_option = click.option(
    "--month", required=True, callback=_month, help="结算月份 YYYY-MM，如 2025-03。"
)


def out_option(help_text: str):
    """--out: the output directory (default out/)."""
    return click.option(
        "--out",
        "out_dir",
        type=click.Path(path_type=Path),
        default=Path("out"),
        show_default=True,
        help=help_text,
    )


def store_path_option(help_text: str):
    """--store: the store file (default: <out>/settlement.duckdb, resolved by the command)."""
    return click.option("--store", type=click.Path(path_type=Path), default=None, help=help_text)


store_option = click.option(
    "--store",
    type=click.Path(path_type=Path),
    default=Path("out/settlement.duckdb"),
    show_default=True,
    help="结算库（DuckDB 文件；查询命令只读打开）。",
)


def _usage_message(exc: click.exceptions.UsageError) -> str:
    """Click's usage errors, in Chinese."""
    param = getattr(exc, "param", None)
    name = "/".join(param.opts) if param is not None and getattr(param, "opts", None) else None
    if isinstance(exc, click.exceptions.MissingParameter) and name:
        return f"缺少必需的参数 {name}"
    if isinstance(exc, click.exceptions.NoSuchOption):
        return f"没有选项 {exc.option_name}"
    if isinstance(exc, click.exceptions.BadParameter) and name:
        return f"参数 {name} 的值无效：{exc.message}"
    if exc.message.startswith("Got unexpected extra argument"):
        extra = exc.message.split("(", 1)[-1].rstrip(")")
        return f"多余的参数：{extra}（选项要写成 --名称 值，如 --param month=2025-03）"
    if exc.message.startswith("No such command"):
        return "没有这个命令：" + exc.message.split("'")[1] if "'" in exc.message else exc.message
    return exc.message


# Click's own words on a help page, in Chinese (the users read Chinese): the usage prefix and
# metavars, section headings, the help option and the [required]/[default: …] markers. Click
# has no catalogue for these but gettext, which follows the user's locale; a formatter
# (Context.formatter_class) and the commands' metavars are its supported hooks.
HEADINGS = {"Options": "选项", "Commands": "命令", "Positional arguments": "参数"}


def _markers(text: str) -> tuple[str, str]:
    """An option's help and click's trailing [required] / [default: …] marker, in Chinese."""
    head, sep, tail = text.rpartition("[")
    if not sep or not tail.endswith("]") or (head and not head.endswith("  ")):
        return text, ""
    items = []
    for item in tail[:-1].split("; "):
        if item == "required":
            item = "必填"
        elif item.startswith("default: "):
            value = item.removeprefix("default: ")
            if value.startswith("(") and value.endswith(")"):  # a show_default text
                value = value[1:-1]
            item = f"默认：{value}"
        items.append(item)
    return head.rstrip(), f"[{'；'.join(items)}]"


class ChineseHelpFormatter(click.HelpFormatter):
    """Click's help page in Chinese, wrapped by display width (a Chinese character takes two
    columns; click counts characters and breaks only at spaces)."""

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        super().write_usage(prog, args, "用法：" if prefix is None else prefix)

    def write_heading(self, heading: str) -> None:
        self.write(f"{'':>{self.current_indent}}{HEADINGS.get(heading, heading)}：\n")

    def write_text(self, text: str) -> None:
        indent = " " * self.current_indent
        paragraphs = _paragraphs(text, self.width - self.current_indent)
        self.write("\n\n".join("\n".join(indent + line for line in p) for p in paragraphs))
        self.write("\n")

    def write_dl(self, rows, col_max: int = 30, col_spacing: int = 2) -> None:
        rows = [(term, *_markers(text)) for term, text in rows]
        first = min(max((len(term) for term, *_ in rows), default=0), col_max) + col_spacing
        columns = max(self.width - first - self.current_indent, 20)
        for term, text, marker in rows:
            lines = wrap(text, columns)
            if marker and lines and width(f"{lines[-1]} {marker}") <= columns:
                lines[-1] += f" {marker}"
            elif marker:
                lines.append(marker)
            self.write(" " * self.current_indent + term)
            if not lines:
                self.write("\n")
                continue
            if len(term) + col_spacing > first:
                self.write("\n" + " " * (first + self.current_indent))
            else:
                self.write(" " * (first - len(term)))
            self.write(lines[0] + "\n")
            for line in lines[1:]:
                self.write(" " * (first + self.current_indent) + line + "\n")


def _paragraphs(text: str, columns: int) -> list[list[str]]:
    """Help text as paragraphs of lines: a paragraph after a \\b line as written, the others
    joined and wrapped to the columns."""
    out = []
    for block in text.strip("\n").split("\n\n"):
        lines = block.split("\n")
        if lines[0].strip() == "\b":
            out.append(lines[1:])
        else:
            out.append(wrap(join_lines(lines), columns))
    return out


class ChineseContext(click.Context):
    """A context whose help pages use ChineseHelpFormatter."""

    formatter_class = ChineseHelpFormatter


class ChineseHelp:
    """Mixin for commands and groups: the Chinese help page and help option."""

    context_class = ChineseContext

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("options_metavar", "[选项]")
        super().__init__(*args, **kwargs)

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)
        if option is not None:
            option.help = "显示本帮助并退出。"
        return option


class ChineseCommand(ChineseHelp, click.Command):
    """A command whose --help is all Chinese."""


class ChineseGroup(ChineseHelp, click.Group):
    """A group whose --help, and its commands' and subgroups', is all Chinese."""

    command_class = ChineseCommand
    group_class = type  # subgroups (user, pay) are ChineseGroups too

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("subcommand_metavar", "命令 [参数]...")
        super().__init__(*args, **kwargs)


class OneLineGroup(ChineseGroup):
    """A click group whose usage errors are one line on stderr with exit 2 (SPEC §5)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:  # `settle`, `settle user`: the help
            click.echo(exc.ctx.get_help(), err=True)
            sys.exit(2)
        except click.exceptions.UsageError as exc:
            hint = f"（用 {exc.ctx.command_path} --help 查看用法）" if exc.ctx else ""
            click.echo(f"错误：{_usage_message(exc)}{hint}", err=True)
            sys.exit(2)
        except click.exceptions.Abort:
            click.echo("已中止", err=True)
            sys.exit(1)
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


@click.group(
    cls=OneLineGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(
    package_name="village-courier-settlement",
    message="%(prog)s 版本 %(version)s",
    help="显示版本并退出。",
)
def main() -> None:
    """快递进村补贴结算引擎（内政办发〔2022〕39号 十四）。

    \b
    结算一个盟市一个月：
      settle run --league 150700 --month 2025-03 --logs logs/
    企业预检提交文件：
      settle validate logs/*.csv --league 150700 --month 2025-03
    生成示例数据：
      settle sample --league 150700 --month 2025-03 --rows 10000 -o x.csv
    在自带样例上演示：
      settle demo
    政策模拟测算：
      settle simulate --league 150700 --from 2025-01 --to 2025-12 --policy v.toml

    各命令的用法：settle 命令 --help，如 settle run --help。
    """


@main.command()
@league_option
@month_option
@click.option(
    "--logs",
    "logs",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="投递日志文件或目录（CSV/Parquet/XLSX），可重复指定。",
)
@config_option
@out_option("输出目录。")
@store_path_option("结算库（DuckDB 文件），默认 <out>/settlement.duckdb。")
@click.option(
    "--memory-limit",
    default=None,
    help="DuckDB 内存上限，如 2GB（默认 1536MB，超出部分暂存磁盘）。",
)
@click.option(
    "--supplementary",
    is_flag=True,
    help="补充结算：已封存月份迟到的投递；应付金额计入下一个未封存月份的结算单。",
)
@click.option(
    "--replace",
    is_flag=True,
    help="替换该月已有的有效结算（没有此项时只显示各企业应付的变化，不作更改）。",
)
@click.option(
    "--force",
    is_flag=True,
    help="结算尚未结束的月份，或超过一半的行不属于本盟市或本月（WRONG_LEAGUE、OUTSIDE_PERIOD）时仍然结算。",
)
@click.option("-q", "--quiet", is_flag=True, help="不在 stderr 显示进度。")
@friendly
def run(
    league,
    month,
    logs,
    config_dir,
    out_dir,
    store,
    memory_limit,
    supplementary,
    replace,
    force,
    quiet,
) -> None:
    """结算一个盟市一个月。

    \b
    例：settle run --league 150700 --month 2025-03 --logs logs/

    在 --out 下写出台账 ledger/、剔除明细 rejects/、结算单元 units/ 和清单 manifests/。

    该月已有有效结算时，只有加 --replace 才重新结算；不加时照常计算并显示各企业应付的变化
    （原 → 新），但不作任何更改（退出码 2）。

    该月尚未结束，或输入中超过一半的行是 WRONG_LEAGUE 或 OUTSIDE_PERIOD 时拒绝结算
    （退出码 2，并显示行数）；确需结算时加 --force。

    替换某月后，此前以该月为由把运单剔除为 ALREADY_SETTLED 的月份都变为“需重算”，
    会逐一列出；这些月份须重新结算后才能封存。

    已封存的月份不能重新结算；其迟到的投递用 --supplementary 补充结算，盈亏平衡和预算按该月
    原有的和迟到的投递合并计算。
    """
    from .engine import settle_month

    cfg = load_config(config_dir)
    result = settle_month(
        cfg,
        league,
        month,
        logs,
        out_dir,
        store,
        _progress(quiet),
        memory_limit,
        supplementary,
        replace=replace,
        force=force,
    )
    _print_run(result)


def _print_stale(stale: list[dict]) -> None:
    """Months a replacement or void made stale (SPEC §8.5)."""
    if stale:
        from .months import stale_text

        click.echo(
            f"  注意：{stale_text(stale)} 以原批次已结算为由剔除了这些运单，现需重新结算"
            "（settle status 显示“需重算”）；重新结算前不能封存"
        )


def _print_run(result) -> None:
    m = result.manifest
    c, t, b = m["counts"], m["totals"], m["budget"]
    click.echo(
        f"结算完成  {m['league_name']}（{m['league_code']}） {m['month']}  批次 {m['run_id']}"
    )
    if result.new_store is not None:
        click.echo(f"  新建结算库 {result.new_store}（此前没有结算记录）")
    click.echo(f"  输入 {c['rows_in']:,} 行：受理 {c['parcels']:,} 件，剔除 {c['rejects']:,} 行")
    for skipped in m.get("skipped_files", []):
        click.echo(f"  未读取 {skipped['path']}：{skipped['reason']}")
    for code in REASONS:
        if code not in c["by_reason"]:
            continue
        n = c["by_reason"][code]
        click.echo(f"    {code:<16}{_pad(REASONS[code], 44)}{n:>8,}")
    from .engine import cross_company_warnings

    for warning in cross_company_warnings(m):
        click.echo(f"  {warning}")
    click.echo(
        f"  基础补贴 {format_yuan(t['gross_fen'])} 元  盈亏平衡核减 "
        f"{format_yuan(t['breakeven_reduction_fen'])} 元  预算调减 "
        f"{format_yuan(t['budget_reduction_fen'])} 元"
    )
    avail = "不限" if b["available_fen"] is None else f"{format_yuan(b['available_fen'])} 元"
    click.echo(
        f"  应付补贴 {format_yuan(t['subsidy_fen'])} 元（{t['subsidy_fen']:,} 分）  本月可用预算 {avail}"
    )
    if result.superseded:
        click.echo(f"  已取代此前批次 {result.superseded}，各企业应付的变化：")
        from .engine import change_lines

        for line in change_lines(result.changes):
            click.echo(line)
    _print_stale(result.stale)
    if m.get("kind") == "supplementary":
        click.echo(
            f"  补充结算：应付 {format_yuan(t['subsidy_fen'])} 元计入 {m['payable_in_month']} 结算单的调整项"
        )
        if t.get("breakeven_excess_fen"):
            click.echo(
                f"  注意：迟到投递使盈亏平衡上限降低，此前已付超出 {format_yuan(t['breakeven_excess_fen'])} 元（未自动追回；如需追回，请用 settle clawback 登记追缴）"
            )
    click.echo(f"  清单 {result.manifest_path}")


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@league_option
@month_option
@config_option
@store_path_option("结算库：给出时同时检查已在其他月份结算的运单（ALREADY_SETTLED）。")
@click.option(
    "--examples",
    default=5,
    show_default=True,
    type=click.IntRange(0, 1000),
    help="每种原因显示的前几行。",
)
@click.option(
    "--rejects-out",
    type=click.Path(path_type=Path),
    default=None,
    help="把全部剔除行写到此文件（.csv、.xlsx 或 .parquet）；默认不写任何文件。",
)
@friendly
def validate(files, league, month, config_dir, store, examples, rejects_out) -> None:
    """企业预检：与正式结算相同的校验，不写任何文件。

    \b
    例：settle validate logs/*.csv --league 150700 --month 2025-03

    对 FILES 逐个文件显示受理和剔除的行数、各剔除原因的行数，以及每种原因的前几行
    （出错的列和值）。给出 --rejects-out 时把全部剔除行写到该文件。

    有行被剔除时退出码仍为 0。
    """
    from .engine import validate_logs

    cfg = load_config(config_dir)
    report = validate_logs(cfg, league, month, files, store, examples)
    click.echo(
        f"预检 {league} {month}：共 {report.rows:,} 行，可受理 {report.accepted:,} 行，"
        f"将剔除 {report.rows - report.accepted:,} 行"
    )
    if report.mode != "new":
        click.echo(f"  {VALIDATE_MODE[report.mode]}")
    for warning in report.warnings:
        click.echo(f"  注意：{warning}")
    for f in report.inputs:
        enc = f" {f['encoding']}" if f["encoding"] else ""
        sheet = f" 工作表“{f['sheet']}”，表头在第 {f['header_line']} 行" if "sheet" in f else ""
        click.echo(
            f"  {f['path']}（{f['format']}{enc}{sheet}）：{f['rows']:,} 行，受理 {f['accepted']:,}，"
            f"剔除 {f['rejected']:,}"
        )
    for s in report.skipped:
        click.echo(f"  跳过 {s.path}（{s.reason}）")
    if report.by_file_reason:
        click.echo("剔除原因（按文件）：")
        for r in report.by_file_reason:
            click.echo(f"  {r['source_file']}  {r['reason_code']:<16}{r['reason']}  {r['rows']:,}")
    for code in REASONS:
        rows = report.examples.get(code)
        if not rows:
            continue
        click.echo(
            f"{code} {REASONS[code]}（共 {report.by_reason[code]:,} 行），前 {len(rows)} 行："
        )
        for row in rows:
            click.echo(
                f"  {row['source_file']} 第 {row['source_line']} 行  运单号 "
                f"{row['waybill_no'] or '（空）'}：{row['detail']}"
            )
    if rejects_out is not None:
        _write_table(report.rejects, rejects_out)
        click.echo(f"剔除明细已写入 {rejects_out}")


VALIDATE_MODE = {
    "replace": "该月已有有效结算：按替换该月结算（settle run --replace）预检，该月原有的运单不算重复",
    "supplementary": "该月已封存：按补充结算（settle run --supplementary）预检，该月已结算的运单均为 ALREADY_SETTLED",
}


def _write_table(table, path: Path) -> None:
    import polars as pl

    df = pl.from_arrow(table)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        df.write_parquet(path)
    elif suffix == ".xlsx":
        df.write_excel(path, autofit=True)
    elif suffix == ".csv":
        from .statements import excel_safe_frame

        # text from logs is untrusted: a cell starting = + - @ would be a formula in Excel
        df = excel_safe_frame(df)
        path.write_bytes(b"\xef\xbb\xbf" + df.write_csv().encode("utf-8"))  # BOM: Excel opens it
    else:
        raise UsageError(f"不支持的输出格式 {path.name}（应为 .csv、.xlsx 或 .parquet）")


def _fault(_ctx, _param, values: tuple[str, ...]) -> dict[str, float]:
    from .sample import FAULTS

    out: dict[str, float] = {}
    for value in values:
        kind, _, share = value.partition("=")
        if kind not in FAULTS:
            raise click.BadParameter(f"未知的错误类型 {kind}，可选：{', '.join(FAULTS)}")
        try:
            out[kind] = float(share)
        except ValueError:
            raise click.BadParameter(f"“{value}”应为 KIND=SHARE，如 duplicate=0.01") from None
    return out


@main.command()
@league_option
@month_option
@click.option("--company", default=None, help="只重新生成该企业的结算单。")
@click.option(
    "--with-detail",
    is_flag=True,
    help="未附在企业结算单工作簿中的剔除明细和投递量明细另存为结算单旁的 CSV"
    "（Excel 单表上限以内）。",
)
@click.option(
    "--detail-csv",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="只导出该企业（--company）的投递量明细到此 CSV 文件（不限行数），不重新生成结算单。",
)
@click.option(
    "--rejects-csv",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="只导出剔除明细到此 CSV 文件（给出 --company 时只导出该企业的，不限行数），"
    "不重新生成结算单。",
)
@out_option("输出目录（结算单写入 statements/ 下）。")
@store_path_option("结算库，默认 <out>/settlement.duckdb（用于补充结算调整项和封存信息）。")
@config_option
@friendly
def statement(
    league, month, company, with_detail, detail_csv, rejects_csv, out_dir, store, config_dir
) -> None:
    """重新生成已结算月份的结算单和公示名单。

    在 statements/league=L/month=M/ 下写出各企业的 <企业编码>.xlsx 和 .html、汇总
    summary.xlsx 和 .html、公示名单 public_notice.html 和 .csv，以及 statements.json
    （各文件的哈希和合计）；已封存月份的结算单显示封存信息。

    企业的明细（剔除明细、投递量明细）较短时是其工作簿中的工作表（每张不超过 5,000 行，
    且在该月可列出的总行数以内）；加 --with-detail 时其余的另存为结算单旁的
    <企业编码>.rejects.csv 和 <企业编码>.detail.csv。--detail-csv 和 --rejects-csv
    只导出一份明细（不限行数），不重新生成结算单。
    """
    from .lock import store_lock
    from .statements import export_detail, export_rejects, rerender, statements_dir

    cfg = load_config(config_dir)
    if company is not None:
        cfg.check_company(company)
    if detail_csv is not None and rejects_csv is not None:
        raise click.UsageError("--detail-csv 与 --rejects-csv 不能同时使用")
    if detail_csv is not None or rejects_csv is not None:
        option = "--detail-csv" if detail_csv is not None else "--rejects-csv"
        if detail_csv is not None and company is None:
            raise click.UsageError("--detail-csv 需要同时指定 --company")
        if with_detail:
            raise click.UsageError(f"{option} 与 --with-detail 不能同时使用")
        if detail_csv is not None:
            count = export_detail(out_dir, cfg, league, month, company, detail_csv)
            click.echo(f"{detail_csv}  投递量明细 {count:,} 件")
        else:
            count = export_rejects(out_dir, cfg, league, month, company, rejects_csv)
            click.echo(f"{rejects_csv}  剔除明细 {count:,} 行")
        return
    lock_on = store if store is not None else out_dir / "settlement.duckdb"
    with store_lock(lock_on, say=lambda m: click.echo(m, err=True)):
        manifest = rerender(
            out_dir,
            cfg,
            league,
            month,
            store or out_dir / "settlement.duckdb",
            company=company,
            with_detail=with_detail,
        )
    directory = statements_dir(out_dir, league, str(month))
    for name, entry in sorted(manifest["files"].items()):
        if company is None or entry["company"] == company:
            due = entry.get("due_fen", entry["subsidy_fen"])
            paid = "" if due == entry["subsidy_fen"] else f"，本期实付 {format_yuan(due)} 元"
            click.echo(f"{directory / name}  应付补贴 {format_yuan(entry['subsidy_fen'])} 元{paid}")


@main.command()
@league_option
@month_option
@click.option("--company", required=True, help="企业编码，如 ZTO。")
@click.option(
    "--claim",
    "claim_file",
    required=True,
    type=click.Path(path_type=Path),
    help="申报文件（CSV/XLSX/Parquet）：运单号(waybill_no)，可选 申报金额(claimed_yuan)。",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="结算输出目录，对账结果写入其下 reconciliation/；默认 out/，给出 --store 时为结算库记录的输出目录。",
)
@store_path_option("结算库：给出时从库中该月有效批次的记录找到结算输出目录。")
@config_option
@friendly
def reconcile(league, month, company, claim_file, out_dir, store, config_dir) -> None:
    """逐行核对企业的申报与已结算的月份。

    \b
    例：settle reconcile --league 150700 --month 2025-03 --company ZTO
          --claim 申报.xlsx

    在 reconciliation/league=L/month=M/ 下写出 <企业编码>.parquet 和 .xlsx，申报文件的
    每行一行（claim_line 是 Excel 中显示的行号），状态为：

    \b
      PAID           已支付给本企业
      REJECTED       本企业的该行已剔除（附 reason_code）
      OTHER_COMPANY  已支付给其他企业
      NOT_SUBMITTED  未在本月日志中提交（或只在其他企业的日志中被剔除）
      REPEATED       运单号在前面的申报行已出现
      BAD_AMOUNT     申报金额不是数字
      NO_WAYBILL     运单号为空
    最后是 NOT_CLAIMED：已支付但未申报的运单。

    difference_fen = 申报金额 − 实付金额；差额不为 0 的行另行计数并合计。
    """
    from .reconcile import STATUS_TEXT, difference_note
    from .reconcile import reconcile as run_reconcile

    cfg = load_config(config_dir)
    cfg.check_company(company)
    data_dir = out_dir = out_dir if out_dir is not None else (None if store else Path("out"))
    if store is not None:
        from .store import list_runs, require_store, resolve_out

        require_store(store)
        current = [r for r in list_runs(store, league, month) if r["status"] == "current"]
        if not current:
            raise UsageError(f"结算库 {store} 中没有盟市 {league} {month} 的有效结算批次")
        data_dir = resolve_out(store, current[0]["out_dir"])
        out_dir = out_dir or data_dir  # the report goes beside the month's outputs
    result = run_reconcile(
        data_dir, league, str(month), company, claim_file, set(cfg.companies), out_dir
    )
    click.echo(f"对账 盟市 {league} {month} 企业 {company}（申报文件 {claim_file}）")
    widths = (16, 28, -10, -16, -16, -16)
    click.echo(_row(widths, ["状态", "说明", "行数", "申报金额(元)", "实付金额(元)", "差额(元)"]))
    for s in [*result.summary, result.total]:
        click.echo(
            _row(
                widths,
                [
                    s["status"] or "合计",
                    STATUS_TEXT[s["status"]] if s["status"] else "",
                    f"{s['lines']:,}",
                    format_yuan(s["claimed_fen"]),
                    format_yuan(s["paid_fen"]),
                    format_yuan(s["difference_fen"]) if result.compares(s["status"]) else "—",
                ],
            )
        )
    click.echo(f"  {difference_note(result)}")
    for status in ("NO_WAYBILL", "BAD_AMOUNT", "REPEATED"):
        lines = result.lines_with(status)
        if not lines:
            continue
        count = next(s["lines"] for s in result.summary if s["status"] == status)
        shown = "、".join(
            f"第 {r['claim_line']} 行"
            + (f"（“{r['claimed_text']}”）" if status == "BAD_AMOUNT" else "")
            for r in lines
        )
        more = f" 等 {count:,} 行" if count > len(lines) else ""
        click.echo(f"  {STATUS_TEXT[status]}：{shown}{more}")
    click.echo(f"  明细：{result.parquet}  {result.xlsx}")


format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json", "parquet"]),
    default="table",
    show_default=True,
    help="输出格式；parquet 需要 --output。",
)
output_option = click.option(
    "--output", type=click.Path(path_type=Path), default=None, help="写入文件而不是屏幕。"
)
limits = [
    click.option(
        "--max-rows",
        type=click.IntRange(1),
        default=100_000,
        show_default=True,
        help="结果行数上限，超过则报错而不输出。",
    ),
    click.option(
        "--timeout",
        type=click.FloatRange(0.1),
        default=60.0,
        show_default=True,
        help="查询时间上限（秒）。",
    ),
]


def _limits(func):
    for option in reversed(limits):
        func = option(func)
    return func


def _emit(frame, fmt, output) -> None:
    from .audit import write_result

    text = write_result(frame, fmt, output)
    if text is not None:
        click.echo(text, nl=False)
    else:
        click.echo(f"已写入 {output}（{frame.height:,} 行）", err=True)


@main.command("sql", short_help="对结算库执行一条只读查询（审计用）。")
@click.argument("query")
@store_option
@format_option
@output_option
@_limits
@friendly
def sql_command(query, store, fmt, output, max_rows, timeout) -> None:
    """对结算库执行一条只读的 SELECT 或 EXPLAIN（视图 ledger、rejects、units、runs 等）。

    \b
    例：settle sql "SELECT company, sum(subsidy_fen) FROM ledger GROUP BY 1"

    任何写入或访问外部的语句——INSERT/UPDATE/DELETE、CREATE/DROP/ALTER、COPY … TO、
    ATTACH、INSTALL/LOAD、SET/PRAGMA、EXPORT、读取输出目录以外的文件——一律拒绝
    （退出码 2），结算库不变。
    """
    from .audit import open_readonly, run_readonly

    con = open_readonly(store)
    try:
        frame = run_readonly(con, query, None, max_rows, timeout)
    finally:
        con.close()
    _emit(frame, fmt, output)


def _params(_ctx, _param, values):
    out = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"“{value}”应为 key=value，如 league=150700")
        out[key] = val
    return out


@main.command()
@click.argument("name", required=False)
@click.option("--list", "list_", is_flag=True, help="列出全部预置查询。")
@click.option("--param", "params", multiple=True, callback=_params, help="参数 key=value，可重复。")
@store_option
@format_option
@output_option
@_limits
@friendly
def query(name, list_, params, store, fmt, output, max_rows, timeout) -> None:
    """预置审计查询（sql/queries/）：列出全部，或按名称执行。

    \b
    例：settle query --list
        settle query budget_use_by_month --param league=150700 --param year=2025
    """
    from .audit import bind_params, load_queries, open_readonly, run_readonly

    queries = load_queries()
    if list_ or name is None:
        for q in queries.values():
            click.echo(f"{q.name}\n    问题：{q.question}")
            for p, text in q.params.items():
                click.echo(f"    --param {p}=…  {text}")
            click.echo(f"    列：{q.columns}")
        return
    if name not in queries:
        raise UsageError(f"没有名为 {name} 的预置查询；可用：{', '.join(queries)}")
    q = queries[name]
    bound = bind_params(q, params)
    con = open_readonly(store)
    try:
        frame = run_readonly(con, q.sql, bound, max_rows, timeout)
    finally:
        con.close()
    _emit(frame, fmt, output)


@main.command()
@out_option("输出目录。")
@store_path_option("结算库，默认 <out>/settlement.duckdb。")
@click.option("--league", default=None, callback=_league, help="只校验该盟市。")
@click.option("--month", default=None, callback=_month, help="只校验该月份。")
@friendly
def verify(out_dir, store, league, month) -> None:
    """重新校验全部结果：哈希、运行日志链、审计规则和合计。

    逐一核对：各文件的 SHA-256 与清单一致，运行日志的哈希链完整，sql/audits/ 的审计规则
    全部成立，台账、结算单元、结算单和清单的合计分毫不差。

    全部成立时退出码 0；否则退出码 1，并列出每个不通过的文件和规则。
    """
    from .audit import verify as run_verify
    from .lock import store_lock
    from .outputs import recover
    from .store import committed_runs

    store = store if store is not None else out_dir / "settlement.duckdb"
    if not store.exists():
        raise UsageError(f"结算库 {store} 不存在")
    with store_lock(store, say=lambda m: click.echo(m, err=True)):
        for message in recover(out_dir, committed_runs(store)):
            click.echo(f"提示：{message}")
        report = run_verify(out_dir, store, league, month and str(month))
    for note in report.notes:
        click.echo(f"提示：{note}")
    if report.problems:
        for p in report.problems:
            click.echo(f"不通过  {p.file}  [{p.rule}]  {p.detail}")
        click.echo(f"校验不通过：{len(report.problems)} 处问题（{report.runs} 个有效批次）")
        sys.exit(1)
    click.echo(
        f"校验通过：{report.runs} 个有效批次，{report.files} 个文件的 SHA-256、运行日志链、"
        "审计规则和合计全部一致"
    )


@main.command()
@click.argument("waybill")
@out_option("输出目录（结算库默认在其下）。")
@store_path_option("结算库，默认 <out>/settlement.duckdb。")
@friendly
def explain(waybill, out_dir, store) -> None:
    """显示一个运单的完整计算过程。

    受理的运单：校验、政策版本、区域类别、距离档、业务量档、各项上限、rate_fen、
    所在结算单元的盈亏平衡和预算，以及最终的 subsidy_fen。被剔除的行：剔除原因和来源
    （文件、行号）。
    """
    from .audit.explain import explain as run_explain

    for line in run_explain(store or out_dir / "settlement.duckdb", waybill):
        click.echo(line)


def _date(_ctx, _param, value: str):
    import datetime as dt

    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"“{value}”应为日期 YYYY-MM-DD") from None


@main.command()
@league_option
@month_option
@store_option
@click.option("--reviewed-by", required=True, help="审核人（不能为空）。")
@click.option("--notice-start", required=True, callback=_date, help="公示开始日期 YYYY-MM-DD。")
@click.option(
    "--notice-end",
    required=True,
    callback=_date,
    help="公示结束日期 YYYY-MM-DD（含），须早于今天。",
)
@click.option("--approved-by", required=True, help="审批人（不能为空）。")
@click.option("--approval-ref", required=True, help="审批文号，如 呼邮管〔2025〕12号（不能为空）。")
@config_option
@friendly
def seal(
    league,
    month,
    store,
    reviewed_by,
    notice_start,
    notice_end,
    approved_by,
    approval_ref,
    config_dir,
):
    """审核、公示、审批之后封存已结算的月份。

    \b
    例：settle seal --league 150700 --month 2025-03 --reviewed-by 张三
          --notice-start 2025-04-01 --notice-end 2025-04-10
          --approved-by 李四 --approval-ref 呼邮管〔2025〕12号

    封存后重新生成该月的结算单，显示封存信息（审核人、公示期、审批人、审批文号）。
    已封存的月份不能重新结算，其运单保持已支付；迟到的投递用 settle run --supplementary
    补充结算。

    以下情况拒绝封存（退出码 2）：姓名或文号为空；公示期在今天（北京时间）之前尚未结束；
    该月未结算、已封存或需重算；审核人或封存操作人（$SETTLE_USER，未设置时即审核人）就是
    运行该月结算的人（须由另一人审核封存）。公示开始早于本月结算完成的日期时照常封存，并给出
    提示。
    """
    from .events import Actor
    from .lock import store_lock
    from .months import seal_month
    from .statements import details_written, rerender
    from .store import recorded_out, require_store

    require_store(store)
    cfg = load_config(config_dir)
    approval = {
        "reviewed_by": reviewed_by,
        "notice_start": notice_start,
        "notice_end": notice_end,
        "approved_by": approved_by,
        "approval_ref": approval_ref,
    }
    with store_lock(store, say=lambda m: click.echo(m, err=True)):
        # the person sealing: $SETTLE_USER, else the reviewer named (see seal_month)
        sealer = Actor.cli(default=reviewed_by.strip() or None)
        row = seal_month(store, league, month, approval, sealer)
        out_dir = recorded_out(store)
        keep = details_written(out_dir, league, month)
        rerender(out_dir, cfg, league, month, store, sealer, "seal", with_detail=keep)
    click.echo(
        f"已封存 盟市 {league} {month}（批次 {row['run_id']}，审核人 {row['reviewed_by']}，"
        f"审批人 {row['approved_by']}，审批文号 {row['approval_ref']}，公示 {notice_start} 至 "
        f"{notice_end}）；结算单已重新生成并显示封存信息"
    )
    for warning in row["warnings"]:
        click.echo(f"  注意：{warning}")


@main.command()
@league_option
@month_option
@click.option("--reason", required=True, help="作废原因（不能为空），记入运行日志。")
@store_option
@config_option
@click.option(
    "--force",
    is_flag=True,
    help="即使已封存的月份以本月结算为由剔除了运单，仍然作废。",
)
@click.option("-q", "--quiet", is_flag=True, help="不在 stderr 显示进度。")
@friendly
def void(league, month, reason, store, config_dir, force, quiet) -> None:
    """作废未封存月份的有效结算批次。

    该批次的运单随即释放（可在其他批次中结算），其输出移至输出目录下的 voided/<run_id>/，
    结算单标记“作废”；运行日志和事件记录谁作废、为何作废。

    此前以该月为由把运单剔除为 ALREADY_SETTLED 的月份变为“需重算”，会逐一列出。
    已封存的月份不能作废（多付的款项用 settle clawback 追缴）。
    """
    from .months import void_month

    cfg = load_config(config_dir)
    result = void_month(cfg, store, league, month, reason, force=force, say=_progress(quiet))
    click.echo(
        f"已作废 盟市 {league} {month} 的结算批次 {result.run_id}（原因：{reason.strip()}）；"
        f"该批次的运单已释放，原输出移至 {result.archive}，结算单已标记作废"
    )
    _print_stale(result.stale)


RUN_STATE = {"current": "有效", "superseded": "已被取代", "voided": "已作废"}


@main.command()
@click.option("--league", default=None, callback=_league, help="只列出该盟市。")
@click.option("--month", default=None, callback=_month, help="只列出该月份。")
@store_option
@friendly
def runs(league, month, store) -> None:
    """列出结算批次及其状态。

    每个批次：有效、已被取代或已作废；月度结算或补充结算；是否已封存、需重算；
    由谁在何时结算（北京时间）。
    """
    from .clock import local_text
    from .store import list_runs, require_store, stale_months

    require_store(store)
    rows = list_runs(store, league, month)
    if not rows:
        click.echo("结算库中没有结算批次" + ("（按所给条件）" if league or month else ""))
        return
    stale = {s["run_id"] for s in stale_months(store)}
    for r in rows:
        kind = "补充结算" if r["kind"] == "supplementary" else "月度结算"
        extra = f"，被 {r['superseded_by']} 取代" if r["superseded_by"] else ""
        if r["kind"] == "supplementary":
            extra += f"，计入 {r['payable_in_month']}"
        if r["void_reason"]:
            extra += f"，作废原因：{r['void_reason']}"
        flags = ("  已封存" if r["sealed"] else "") + ("  需重算" if r["run_id"] in stale else "")
        click.echo(
            f"{r['run_id']}  {r['league_code']} {r['month']}  {kind}  {RUN_STATE[r['status']]}"
            f"{flags}  受理 {r['parcels']:,} 件  补贴 {format_yuan(r['subsidy_fen'])} 元"
            f"  {local_text(r['finished_at'], seconds=False)}  {r['run_by'] or ''}{extra}"
        )


@main.command()
@league_option
@click.option(
    "--year",
    required=True,
    type=click.IntRange(2000, 2100),
    help="预算年度（从该年的预算起始月开始）。",
)
@store_option
@friendly
def status(league, year, store) -> None:
    """按月显示一个预算年度的结算、预算和拨付情况。

    每月：状态（已结算、已封存、需重算、未结算）、受理件数、月度和补充结算金额、累计已用预算和
    预算余额——按结算库记录的、结算时适用的预算。

    随后是资金拨付：每月的本期实付、其中的追缴、拨付批次（已生成/已拨付）和未拨付金额，
    以及待从下一批次扣回的结转。
    """
    from .store import budget_year, require_store

    require_store(store)
    year_ = budget_year(store, league, year)
    click.echo(
        f"{year_['league_name']}（{league}）预算年度 {year_['start']} 至 {year_['end']}："
        f"年度预算 {format_yuan(year_['annual_fen'])} 元，规则 {year_['rule']}（结算时记录）"
    )
    widths = (9, 10, -12, -16, -14, -16, -16)
    click.echo(
        _row(
            widths,
            [
                "月份",
                "状态",
                "受理件数",
                "月度结算(元)",
                "补充结算(元)",
                "累计已用(元)",
                "预算余额(元)",
            ],
        )
    )
    for m in year_["months"]:
        if m["state"] is None:
            click.echo(_row((9,), [m["month"]]) + "未结算")
            continue
        click.echo(
            _row(
                widths,
                [
                    m["month"],
                    m["state"],
                    f"{m['parcels']:,}",
                    format_yuan(m["regular_fen"]),
                    format_yuan(m["supplementary_fen"]),
                    format_yuan(m["used_fen"]),
                    format_yuan(m["left_fen"]),
                ],
            )
        )
    click.echo(
        f"合计已用 {format_yuan(year_['used_fen'])} 元，预算余额 {format_yuan(year_['left_fen'])} 元"
    )
    if year_["stale"]:
        click.echo(
            "需重算的月份：以已被取代或作废的批次为由剔除了运单，请用 settle run --replace 重新结算"
        )
    _print_cash(store, league, year)


def _print_cash(store: Path, league: str, year: int) -> None:
    """`settle status`'s cash view: per month what the statements made due, which batch pays
    it (已生成/已拨付), what is outstanding; the carries to recover."""
    from .payout.batches import STATE_TEXT
    from .payout.cash import cash_view

    cash = cash_view(store, league, year)
    click.echo("资金拨付（本期实付 = 应付补贴 + 计入该月的补充结算调整和追缴）：")
    widths = (9, -16, -14, -16, 30, -14)
    click.echo(
        _row(
            widths,
            ["月份", "本期实付(元)", "其中追缴(元)", "已拨付(元)", "  拨付批次", "未拨付(元)"],
        )
    )
    for m in cash["months"]:
        if not m["any_due"] and not m["batch_id"]:
            continue
        batch = "  —"
        if m["batch_id"]:
            batch = f"  {m['batch_id']}（{STATE_TEXT[m['batch_state']]}）"
        click.echo(
            _row(
                widths,
                [
                    m["month"],
                    format_yuan(m["due_fen"]),
                    format_yuan(m["clawback_fen"]),
                    format_yuan(m["paid_fen"]),
                    batch,
                    format_yuan(m["outstanding_fen"]),
                ],
            )
        )
    due = sum(m["due_fen"] for m in cash["months"])
    paid = sum(m["paid_fen"] for m in cash["months"])
    click.echo(
        f"合计本期实付 {format_yuan(due)} 元，已拨付 {format_yuan(paid)} 元，"
        f"未拨付 {format_yuan(sum(m['outstanding_fen'] for m in cash['months']))} 元"
    )
    for c in cash["carries"]:
        click.echo(
            f"结转待抵扣：{c['company']} {format_yuan(c['carried_fen'])} 元"
            f"（批次 {c['batch_id']} 应付为负，从下一批次扣回）"
        )


@main.command()
@league_option
@month_option
@click.option("--rows", type=click.IntRange(1), default=10_000, show_default=True, help="行数。")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="输出文件：.csv、.parquet 或 .xlsx。",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "gbk", "parquet", "xlsx"]),
    default=None,
    help="csv（UTF-8，英文表头）、gbk（GBK 编码，中文表头，扩展名 .csv）、parquet（带类型）、xlsx（中文表头）；"
    "默认按扩展名，须与扩展名相符。",
)
@click.option(
    "--seed", type=int, default=1, show_default=True, help="随机种子：相同参数生成相同文件。"
)
@click.option(
    "--faults",
    "fault_share",
    type=click.FloatRange(0, 0.08),
    default=0.0,
    show_default=True,
    help="每种错误的比例（各类相同），如 0.005。",
)
@click.option(
    "--fault",
    "fault_overrides",
    multiple=True,
    callback=_fault,
    help="单独设置某类错误的比例 KIND=SHARE，可重复，如 --fault duplicate=0.02。",
)
@click.option("--companies", default=None, help="只生成这些企业，逗号分隔，如 ZTO,YTO。")
@click.option(
    "--reclaim",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="从此前月份的日志中重复申报部分运单号（产生 ALREADY_SETTLED）。",
)
@click.option(
    "--reclaim-share",
    type=click.FloatRange(0, 0.5),
    default=0.01,
    show_default=True,
    help="给出 --reclaim 时重复申报的行所占比例。",
)
@click.option(
    "--urban",
    type=click.FloatRange(0, 0.9),
    default=0.0,
    show_default=True,
    help="投递到本盟市城镇（非补贴范围，NOT_RURAL）的行的比例，如 0.3：企业导出全部投递时的样子。",
)
@config_option
@friendly
def sample(
    league,
    month,
    rows,
    output,
    fmt,
    seed,
    fault_share,
    fault_overrides,
    companies,
    reclaim,
    reclaim_share,
    urban,
    config_dir,
) -> None:
    """按真实的村级名录生成一个盟市一个月的模拟投递日志。

    \b
    例：settle sample --league 150700 --month 2025-03 --rows 10000 -o x.csv

    可按比例加入各类错误（--faults、--fault），供测试和演示使用；参数和 --seed 相同时
    生成相同的文件。
    """
    from .ingest import read_log_file
    from .sample import FAULTS, generate, output_format, write

    fmt = output_format(output, fmt)
    cfg = load_config(config_dir)
    faults = {k: fault_share for k in FAULTS if fault_share} | fault_overrides
    previous = read_log_file(reclaim)[0] if reclaim else None
    df = generate(
        cfg,
        league,
        month,
        rows,
        seed,
        faults,
        companies.split(",") if companies else None,
        previous,
        reclaim_share if reclaim else 0.0,
        urban,
    )
    write(df, output, fmt)
    click.echo(f"已生成 {output}（{fmt}，{df.height:,} 行）")


@main.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=Path("out/demo"),
    show_default=True,
    help="输出目录：不存在或为空时建立；只有演示自己建立、其中都是演示结果的目录才会被清空重建，"
    "其他非空目录（真实结算库、已封存月份等）一律拒绝。",
)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path),
    default=SAMPLE_DATA_DIR,
    show_default="随程序安装的 sample_data/",
    help="样例数据：<盟市代码>/<YYYY-MM>/ 下的日志。",
)
@config_option
@click.option("-q", "--quiet", is_flag=True, help="不在 stderr 显示进度。")
@friendly
def demo(out_dir, data_dir, config_dir, quiet) -> None:
    """在自带样例上完整结算一遍，按企业和旗县显示应付补贴。

    演示会给它建立的目录加上标记（.settle-demo.json）；再次运行时只清空带此标记、
    且只有演示结果的目录。它从不删除结算库、结算批次或不是它生成的文件：遇到时拒绝
    （退出码 2），并说明目录里有什么。
    """
    import shlex

    from . import demo as sample_demo
    from .engine import settle_month

    cfg = load_config(config_dir)
    jobs = sample_demo.jobs(Path(data_dir))
    sample_demo.prepare(out_dir)
    counties = cfg.county_names()
    grand = 0
    for month, league, path in jobs:
        result = settle_month(cfg, league, month, [path], out_dir, None, _progress(quiet))
        sample_demo.record(out_dir, result.manifest["run_id"])
        _print_run(result)
        widths = (8, 30, -8, -16)
        click.echo(_row(widths, ["企业", "旗县", "件数", "应付补贴(元)"]))
        for p in result.payouts:
            name = f"{p['county_code']} {counties.get(p['county_code'], '')}"
            click.echo(
                _row(
                    widths, [p["company"], name, f"{p['parcels']:,}", format_yuan(p["subsidy_fen"])]
                )
            )
        grand += result.manifest["totals"]["subsidy_fen"]
        click.echo("")
    store = shlex.quote(str(out_dir / "settlement.duckdb"))
    click.echo(f"样例结算合计应付补贴 {format_yuan(grand)} 元；输出在 {out_dir}/")
    click.echo(f'审计查询（只读）：settle sql "{sample_demo.QUERY}" --store {store}')
    click.echo("预置查询：settle query --list")


def _scale(_ctx, _param, values: tuple[str, ...]) -> dict:
    from .simulate import parse_factor

    factors = {}
    for value in values:
        cls, sep, factor = value.partition("=")
        if not sep or not cls.strip():
            raise click.BadParameter(f"“{value}”应为 类别=系数，如 border=1.2")
        if cls.strip() in factors:
            raise click.BadParameter(f"区域类别 {cls.strip()} 指定了两次")
        try:
            factors[cls.strip()] = parse_factor(factor)
        except UsageError as exc:
            raise click.BadParameter(str(exc)) from None
    return factors


# Policy simulation, SPEC §9.
@main.command(short_help="政策模拟：按模拟政策重算一段时期并比较。")
@league_option
@click.option("--from", "first", required=True, callback=_month, help="起始月份 YYYY-MM。")
@click.option("--to", "last", required=True, callback=_month, help="结束月份 YYYY-MM（含）。")
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(path_type=Path),
    default=None,
    help="模拟政策文件，格式同 config/policies/<盟市代码>.toml（同一盟市、受理条件相同）；"
    "省略时模拟现行政策。",
)
@click.option(
    "--scale",
    multiple=True,
    callback=_scale,
    help="CLASS=FACTOR：把该区域类别的全部基础费率乘以系数（可重复），如 --scale border=1.2；"
    "不必另写政策文件。",
)
@click.option(
    "--fit-budget",
    is_flag=True,
    help="求全部基础费率的最大系数（步长 0.0001），使全期无需预算调减；每步完整重新结算全期。",
)
@config_option
@store_option
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="输出目录（comparison.parquet、summary.xlsx、summary.html），"
    "默认 out/simulations/<盟市>-<起>-<止>/。",
)
@click.option("--memory-limit", default=None, help="DuckDB 内存上限，如 2GB（默认 1536MB）。")
@click.option("-q", "--quiet", is_flag=True, help="不在 stderr 显示进度。")
@friendly
def simulate(
    league,
    first,
    last,
    policy_file,
    scale,
    fit_budget,
    config_dir,
    store,
    out_dir,
    memory_limit,
    quiet,
) -> None:
    """政策模拟：按模拟政策重新结算一段时期已受理的投递，与实际结算比较。

    \b
    例：settle simulate --league 150700 --from 2025-01 --to 2025-12
          --scale border=1.2

    按与 settle run 相同的规则，重放 --from 至 --to 各月的全部有效结算批次（含补充结算，
    按记录的顺序），采用 --policy 政策文件和/或 --scale 系数，并与已结算的台账比较。
    结算库只读，不改变任何结算。

    在 --out 下写出 comparison.parquet（月份 × 企业 × 旗县 × 区域类别）和中文汇总
    summary.xlsx、summary.html。
    """
    from .simulate import default_out
    from .simulate import simulate as run_simulation

    cfg = load_config(config_dir)
    out_dir = out_dir or default_out(league, first, last)
    sim = run_simulation(
        cfg,
        store,
        league,
        first,
        last,
        policy_file,
        scale,
        fit_budget,
        out_dir,
        _progress(quiet),
        memory_limit,
    )
    _print_simulation(sim)


def _print_simulation(sim) -> None:
    from .simulate.summary import Names, findings, overview_rows, signed_yuan, variant_text

    t = sim.totals
    click.echo(f"政策模拟  {sim.league_name}（{sim.league}） {sim.first} 至 {sim.last}")
    click.echo(f"  模拟政策：{variant_text(sim)}")
    click.echo(
        f"  重放 {len(sim.the_plan.runs)} 个结算批次，已受理 {t['parcels']:,} 件"
        + (f"；未结算月份 {'、'.join(sim.the_plan.missing)}" if sim.the_plan.missing else "")
    )
    widths = (14, -18, -18, -16)
    click.echo(_row(widths, ["", "现行政策(元)", "模拟政策(元)", "差额(元)"]))
    for label, base, variant, delta, _ in overview_rows(sim)[1:]:
        click.echo(
            _row(widths, [label, format_yuan(base), format_yuan(variant), signed_yuan(delta)])
        )
    widths = (9, 12, -16, -16, -14, -16)
    click.echo(
        _row(
            widths, ["月份", "批次", "可用预算(元)", "模拟应付(元)", "预算调减(元)", "现行实付(元)"]
        )
    )
    for r in sim.tables["budget"].to_dicts():
        available = "不限" if r["available_fen"] is None else format_yuan(r["available_fen"])
        click.echo(
            _row(
                widths,
                [
                    r["month"],
                    r["label"],
                    available,
                    format_yuan(r["variant_fen"]),
                    format_yuan(r["budget_reduction_fen"]),
                    format_yuan(r["baseline_fen"]),
                ],
            )
        )
    for sentence in findings(sim, Names(sim.cfg)):
        click.echo(f"  {sentence}")
    for path in sim.files:
        click.echo(f"  已写出 {path}")


# --------------------------------------------------------------------------- the portal (SPEC §11)


@main.command()
@out_option("输出目录：结算输出，以及企业在门户提交的日志（submissions/）。")
@store_path_option(
    "结算库，默认 <out>/settlement.duckdb；门户的账户、会话和提交记录在其旁的 <store>.portal.sqlite。"
)
@config_option
@click.option("--host", default="127.0.0.1", show_default=True, help="监听地址。")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="监听端口。"
)
@click.option(
    "--upload-limit-mb",
    default=200,
    show_default=True,
    type=click.IntRange(1),
    help="一次上传的文件大小上限（MB）。",
)
@click.option(
    "--forwarded-allow-ips",
    default="127.0.0.1",
    show_default=True,
    help="信任其 X-Forwarded-For / X-Forwarded-Proto 的反向代理地址（逗号分隔）。",
)
@friendly
def serve(out_dir, store, config_dir, host, port, upload_limit_mb, forwarded_allow_ips) -> None:
    """启动网页门户。

    企业提交投递日志、下载本企业的结算单；盟市邮政管理部门结算和封存月份；审计人员查询
    ——都在浏览器中完成，各自只能看到自己范围内的数据。另有 JSON API，说明页在 /docs。

    第一个账户用 settle user add 创建。
    """
    import uvicorn

    from .web.app import check_listen, create_app
    from .web.portal import Settings

    check_listen(host, port)
    store = store if store is not None else out_dir / "settlement.duckdb"
    settings = Settings(out_dir, store, config_dir, upload_limit=upload_limit_mb * 1024 * 1024)
    app = create_app(settings)
    if not app.state.portal.accounts.users():
        click.echo(
            "提示：还没有任何账户，请先用 settle user add NAME --role admin --league L 创建管理员",
            err=True,
        )
    click.echo(f"门户已启动：http://{host}:{port}/（按 Ctrl+C 停止）", err=True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        log_level="info",
    )


@main.group(short_help="门户账户：创建、令牌、列出、停用等。")
def user() -> None:
    """门户账户（settle serve）：add、token、list、revoke、disable、enable、password。

    账户保存在结算库旁的 <store>.portal.sqlite 中；密码以 argon2 哈希保存；API 令牌
    只保存哈希，生成时只显示一次。
    """


def _accounts(store: Path):
    from .web.accounts import Accounts, portal_db

    return Accounts(portal_db(store))


def _password(confirm: bool = True) -> str:
    """The password: asked twice on a terminal, else the first line of standard input."""
    if sys.stdin.isatty():
        return click.prompt("密码", hide_input=True, confirmation_prompt=confirm and "再次输入密码")
    line = sys.stdin.readline()
    if not line:
        raise UsageError(
            "没有从标准输入读到密码（例如：printf '%s\\n' \"$PW\" | settle user add …）"
        )
    return line.rstrip("\r\n")


def _leagues(_ctx, _param, values: tuple[str, ...]) -> tuple[str, ...]:
    for value in values:
        _league(_ctx, _param, value)
    return values


@user.command("add")
@click.argument("name")
@click.option(
    "--role", required=True, type=click.Choice(["admin", "company", "auditor"]), help="角色。"
)
@click.option(
    "--league",
    "leagues",
    multiple=True,
    callback=_leagues,
    help="管理员、审计人员管辖的盟市（可重复）。",
)
@click.option("--company", default=None, help="企业用户的企业编码，如 ZTO。")
@store_option
@config_option
@friendly
def user_add(name, role, leagues, company, store, config_dir) -> None:
    """创建门户账户；密码从标准输入读取（在终端上输入两次）。

    \b
    例：settle user add 张三 --role admin --league 150700
    """
    cfg = load_config(config_dir)
    if company is not None:
        cfg.check_company(company)
    for league in leagues:
        cfg.policy(league)
    accounts = _accounts(store)
    created = accounts.add_user(
        name, role, _password(), tuple(leagues), company, actor=_cli_actor()
    )
    scope = f"企业 {created.company}" if created.company else f"盟市 {'、'.join(created.leagues)}"
    click.echo(f"已创建用户 {created.name}（{created.role_text}，{scope}）")


def _cli_actor() -> str:
    from .events import Actor

    return Actor.cli().name


@user.command("token", short_help="为用户生成新的 API 令牌。")
@click.argument("name")
@store_option
@friendly
def user_token(name, store) -> None:
    """为用户 NAME 生成新的 API 令牌，供企业系统使用（Authorization: Bearer 令牌）。

    令牌单独显示在最后一行。只保存其哈希，以后无法再次显示。
    """
    accounts = _accounts(store)
    token = accounts.new_token(name, actor=_cli_actor())
    number = accounts.tokens(name)[-1]["id"]
    click.echo(f"已为用户 {name} 生成 API 令牌（编号 {number}，只显示这一次，请妥善保存）：")
    click.echo(token)


@user.command("list")
@store_option
@friendly
def user_list(store) -> None:
    """列出全部账户及其 API 令牌。

    令牌显示编号、开头几个字符、生成时间、是否已吊销和最近使用时间。
    """
    import json

    from .clock import local_text
    from .web.accounts import ROLES

    accounts = _accounts(store)
    users = accounts.users()
    if not users:
        click.echo("还没有任何账户")
        return
    for u in users:
        scope = u["company"] or "、".join(json.loads(u["leagues"]))
        state = "" if u["active"] else "  已停用"
        click.echo(f"{u['name']}  {ROLES[u['role']]}  {scope}{state}")
        for t in accounts.tokens(u["name"]):
            revoked = f"已吊销 {local_text(t['revoked_at'])}" if t["revoked_at"] else "有效"
            used = local_text(t["last_used_at"]) if t["last_used_at"] else "未使用"
            click.echo(
                f"    令牌 {t['id']}  {t['prefix']}…  生成 {local_text(t['created_at'])}  {revoked}  最近使用 {used}"
            )


@user.command("revoke")
@click.argument("token_id", type=int)
@store_option
@friendly
def user_revoke(token_id, store) -> None:
    """吊销一个 API 令牌，立即失效。

    TOKEN_ID 是令牌编号，见 settle user list。
    """
    result = _accounts(store).revoke_token(token_id, actor=_cli_actor())
    click.echo(
        f"令牌 {token_id}（用户 {result['user']}）"
        + ("此前已吊销" if result["already"] else "已吊销，立即失效")
    )


@user.command("disable")
@click.argument("name")
@store_option
@friendly
def user_disable(name, store) -> None:
    """停用账户：其会话立即结束，API 令牌立即失效。"""
    _accounts(store).set_active(name, False, actor=_cli_actor())
    click.echo(f"已停用用户 {name}；其会话和 API 令牌立即失效")


@user.command("enable")
@click.argument("name")
@store_option
@friendly
def user_enable(name, store) -> None:
    """重新启用已停用的账户。"""
    _accounts(store).set_active(name, True, actor=_cli_actor())
    click.echo(f"已启用用户 {name}")


@user.command("password")
@click.argument("name")
@store_option
@friendly
def user_password(name, store) -> None:
    """为用户设置新密码；其已登录的会话随即结束。

    密码从标准输入读取（在终端上输入两次）。
    """
    _accounts(store).set_password(name, _password(), actor=_cli_actor())
    click.echo(f"已为用户 {name} 设置新密码；其已登录的会话已结束")


if __name__ == "__main__":
    main()


# --------------------------------------------------------------------------- paying out (SPEC §10)


@main.group(invoke_without_command=True)
@click.option("--league", default=None, callback=_league, help="盟市代码（6位），如 150700。")
@click.option(
    "--month",
    "months",
    multiple=True,
    callback=lambda ctx, param, values: [_month(ctx, param, v) for v in values],
    help="已封存的结算月份 YYYY-MM，可重复：--month 2025-01 --month 2025-02。",
)
@config_option
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="输出目录（拨付文件写入其下 payments/league=L/），默认结算库所在的输出目录；"
    "给出时须与结算库记录的一致。",
)
@store_path_option("结算库，默认 <out>/settlement.duckdb（未给 --out 时 out/settlement.duckdb）。")
@click.option("-q", "--quiet", is_flag=True, help="不在 stderr 显示进度。")
@click.pass_context
@friendly
def pay(ctx, league, months, config_dir, out_dir, store, quiet) -> None:
    """为已封存、尚未拨付的月份生成拨付批次（已生成）。

    \b
    例：settle pay --league 150700 --month 2025-01 --month 2025-02
        settle pay confirm --batch pay-150700-0001 --paid-on 2025-07-15
          --voucher 财付〔2025〕88号

    在 payments/league=L/ 下写出 <batch_id>.xlsx（供签字的拨付清单，含大写金额）、.csv
    （UTF-8 带 BOM，供财务系统转账）和 .parquet（batch_id、company、payee_name、
    credit_code、bank、account、amount_fen、months）。

    每个企业拨付其各月已封存结算单的本期实付（含计入其中的补充结算和追缴），减去其上一批次
    未能扣回的金额；拨付金额不会为负，不足部分结转到该企业的下一批次，单列一行。

    以下情况拒绝（退出码 2）：月份未封存、需重算或已在某个批次中；要拨付的企业在
    companies.toml 中的收款信息不全（列出企业和缺少的项）。
    """
    if ctx.invoked_subcommand is not None:
        return
    from .payout.batches import STATE_TEXT, create_batch
    from .store import check_out_dir, require_store

    if league is None or not months:
        raise UsageError("settle pay 需要 --league 和至少一个 --month（或子命令 confirm）")
    store = store if store is not None else (out_dir or Path("out")) / "settlement.duckdb"
    cfg = load_config(config_dir)
    require_store(store)
    if out_dir is not None:
        check_out_dir(store, out_dir)
    batch = create_batch(cfg, store, league, months, say=_progress(quiet))
    click.echo(
        f"已生成拨付批次 {batch['batch_id']}（{STATE_TEXT['created']}）：盟市 {league} "
        f"{batch['months'].replace(',', '、')}，拨付合计 {format_yuan(batch['amount_fen'])} 元"
    )
    widths = (8, -14, -14, -14, 0)
    click.echo(_row(widths[:4], ["企业", "本批应付(元)", "上批结转(元)", "拨付金额(元)"]))
    for line in batch["lines"]:
        note = ""
        if line["carried_forward_fen"]:
            note = f"  结转下一批次 {format_yuan(line['carried_forward_fen'])} 元"
        click.echo(
            _row(
                widths[:4],
                [
                    line["company"],
                    format_yuan(line["due_fen"]),
                    format_yuan(line["carried_in_fen"]),
                    format_yuan(line["amount_fen"]),
                ],
            )
            + note
        )
    for name in batch["files"]:
        click.echo(f"  {batch['folder'] / name}")
    click.echo(
        f"拨付后由另一人确认：settle pay confirm --batch {batch['batch_id']} --paid-on 日期 "
        "--voucher 凭证号"
    )


@pay.command("confirm")
@click.option("--batch", "batch_id", required=True, help="拨付批次号，如 pay-150700-0001。")
@click.option(
    "--paid-on", required=True, callback=_date, help="拨付日期 YYYY-MM-DD（不晚于今天）。"
)
@click.option("--voucher", required=True, help="付款凭证号（不能为空）。")
@store_option
@friendly
def pay_confirm(batch_id, paid_on, voucher, store) -> None:
    """登记批次已转账：已生成 → 已拨付，只能登记一次。

    生成批次的人不能确认该批次（经办与复核分离；操作人取 $SETTLE_USER，未设置时为登录名）。

    以下情况拒绝（退出码 2）：批次不存在、已确认过、凭证号为空、拨付日期晚于今天或早于批次生成
    的日期（或所付月份结束之前）。凭证号已用于其他批次时照常登记，并给出提示。
    """
    from .payout.batches import confirm_batch

    batch = confirm_batch(store, batch_id, paid_on, voucher)
    click.echo(
        f"已登记拨付：批次 {batch_id} 于 {paid_on} 拨付 {format_yuan(batch['amount_fen'])} 元"
        f"（凭证号 {batch['voucher']}，确认人 {batch['confirmed_by']}，经办人 {batch['created_by']}）"
    )
    for warning in batch["warnings"]:
        click.echo(f"  注意：{warning}")


@main.command()
@league_option
@month_option
@click.option(
    "--waybills",
    "waybills_file",
    required=True,
    type=click.Path(path_type=Path),
    help="追缴清单（CSV/XLSX/Parquet）：运单号，可选 金额（元；缺省为该运单尚未追缴的全部补贴）。",
)
@click.option("--reason", required=True, help="追缴原因（不能为空），显示在结算单和公示名单上。")
@store_option
@config_option
@click.option("-q", "--quiet", is_flag=True, help="不在 stderr 显示进度。")
@friendly
def clawback(league, month, waybills_file, reason, store, config_dir, quiet) -> None:
    """对已封存月份已支付的运单登记追缴。

    \b
    例：settle clawback --league 150700 --month 2025-03 --waybills 追缴.xlsx
          --reason 虚报

    追缴金额作为负数调整项计入下一个开放月份（其后第一个既未封存、所在年度也未关账的月份），
    该月的结算单和公示名单列出这些运单、追缴原因和登记人。

    以下情况整批拒绝（退出码 2，逐一列出运单和原因）：运单不是该月已支付的、同一运单出现
    两次、追缴金额超过已支付金额减去此前的追缴。
    """
    from .payout.clawbacks import clawback as book

    cfg = load_config(config_dir)
    result = book(cfg, store, league, month, waybills_file, reason, say=_progress(quiet))
    companies: dict[str, list[int]] = {}
    for line in result.lines:
        companies.setdefault(line["company"], []).append(line["amount_fen"])
    click.echo(
        f"已登记追缴 {result.clawback_id}：{len(result.lines):,} 个运单，合计 "
        f"{format_yuan(result.total_fen)} 元，计入 {result.booked_in_month} 结算单"
    )
    for code, amounts in sorted(companies.items()):
        click.echo(f"  {code}  {len(amounts):,} 个运单  {format_yuan(sum(amounts))} 元")


@main.command("close-year")
@league_option
@click.option("--year", required=True, type=click.IntRange(2000, 2100), help="预算年度。")
@store_option
@config_option
@click.option("-q", "--quiet", is_flag=True, help="不在 stderr 显示进度。")
@friendly
def close_year(league, year, store, config_dir, quiet) -> None:
    """年度关账：关闭一个预算年度，只能一次。

    该年度有月份已结算未封存、需重算或尚未结束时拒绝（退出码 2）；没有结算批次的月份是空月，
    不影响关账，但整个年度没有任何已结算的月份时拒绝（多半是 --year 或 --league 写错）。

    在 annual/league=L/year=Y/ 下写出各企业和全盟市的年度结算表（*.xlsx、*.html、
    annual.json）。

    政策中设置 [breakeven] annual_true_up = true 时，每个盈亏平衡单元全年的补贴以
    floor(100 × max(0, Σ cost − Σ revenue)) 为上限，超出部分按最大余数法分摊到运单，
    作为追缴计入下一年度第一个开放月份。

    关账后对该年度的更改作为调整项计入下一年度。
    """
    from .payout.annual import close_year as close

    cfg = load_config(config_dir)
    result = close(cfg, store, league, year, say=_progress(quiet))
    data = result.data
    t = data.totals(None)
    click.echo(
        f"已关账 {data.league_name}（{league}）{year} 预算年度（{data.start} 至 {data.end}）："
        f"应付 {format_yuan(t['due_fen'])} 元，已拨付 {format_yuan(t['paid_fen'])} 元，"
        f"未拨付 {format_yuan(t['outstanding_fen'])} 元"
    )
    if data.annual_true_up:
        if result.clawbacks:
            click.echo(
                f"年度盈亏平衡清算：{len(data.true_up_units)} 个结算单元超出全年上限，追缴 "
                f"{format_yuan(-result.true_up_fen)} 元（{result.clawbacks:,} 个运单），计入 "
                f"{result.booked_in_month}"
            )
        else:
            click.echo("年度盈亏平衡清算：没有结算单元超出全年上限")
    click.echo(f"年度结算表：{result.folder}")
