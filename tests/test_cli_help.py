"""Every `--help` page in Chinese: click's own words too, wrapped by display width."""

from __future__ import annotations

import re
from importlib.metadata import version

import click
import pytest
from click.testing import CliRunner

from settlement.cli import main
from settlement.screen import join_lines, width, wrap


def command_paths(group: click.Group = main, path: tuple[str, ...] = ()):
    """The path of every command and subcommand under `group`, the group itself first."""
    yield path
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from command_paths(command, (*path, name))
        else:
            yield (*path, name)


PATHS = list(command_paths())


def help_page(*path: str) -> str:
    result = CliRunner().invoke(main, [*path, "--help"], prog_name="settle", terminal_width=80)
    assert result.exit_code == 0, result.output
    return result.output


# A command line (`settle run --league …`, an SQL example) is not prose; four Latin words in a
# row are ("Show this message and exit.").
COMMAND = re.compile(r"`[^`]*`|settle(?: [!-~]+)*")
PROSE = re.compile(r"\b[A-Za-z][a-z]+[,.;:]?(?: [A-Za-z][a-z]*[,.;:]?){3,}")


def english_prose(text: str) -> list[str]:
    return PROSE.findall(COMMAND.sub("", text))


def test_the_detector_finds_english_prose():
    assert english_prose("  -h, --help  Show this message and exit.") == [
        "Show this message and exit."
    ]
    assert english_prose("Settle one 盟市-month: ledger, rejects, units and manifest") == [
        "month: ledger, rejects, units and manifest"
    ]
    assert english_prose('例：settle sql "SELECT company, sum(subsidy_fen) FROM ledger"') == []
    assert english_prose("（Authorization: Bearer 令牌）、INSERT/UPDATE/DELETE") == []


def test_the_walk_reaches_every_command():
    names = {" ".join(p) for p in PATHS}
    assert {"", "run", "seal", "user", "user add", "user password", "pay", "pay confirm"} <= names
    assert len(PATHS) == 1 + 19 + 1 + 7 + 1  # settle; its commands; user and its 7; pay confirm


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "settle")
def test_help_is_chinese_and_fits_80_columns(path):
    page = help_page(*path)
    assert english_prose(page) == []
    for word in ("Usage", "Options", "Commands", "required", "default", "Show "):
        assert word not in page
    assert page.startswith(f"用法：settle {' '.join(path)}".rstrip() + " [选项]")
    assert "  -h, --help" in page and "显示本帮助并退出。" in page
    assert max(width(line) for line in page.splitlines()) <= 80


def test_settle_help_first_lines_and_command_list():
    lines = help_page().splitlines()
    assert lines[:3] == [
        "用法：settle [选项] 命令 [参数]...",
        "",
        "  快递进村补贴结算引擎（内政办发〔2022〕39号 十四）。",
    ]
    assert "  --version   显示版本并退出。" in lines
    assert "命令：" in lines
    assert "  run         结算一个盟市一个月。" in lines
    assert "  seal        审核、公示、审批之后封存已结算的月份。" in lines
    assert "  sql         对结算库执行一条只读查询（审计用）。" in lines  # short_help
    listed = lines[lines.index("命令：") + 1 :]
    assert len(listed) == 20 and not any(line.endswith("...") for line in listed)


def test_run_help_first_lines_and_markers():
    lines = help_page("run").splitlines()
    assert lines[:5] == [
        "用法：settle run [选项]",
        "",
        "  结算一个盟市一个月。",
        "",
        "  例：settle run --league 150700 --month 2025-03 --logs logs/",
    ]
    assert "  --league TEXT        盟市代码（6位），如 150700 呼伦贝尔市。 [必填]" in lines
    assert "  --out PATH           输出目录。 [默认：out]" in lines
    assert "                       [默认：随程序安装的 config/]" in lines
    assert "  -h, --help           显示本帮助并退出。" in lines


def test_pay_confirm_help_first_lines():
    lines = help_page("pay", "confirm").splitlines()
    assert lines[:5] == [
        "用法：settle pay confirm [选项]",
        "",
        "  登记批次已转账：已生成 → 已拨付，只能登记一次。",
        "",
        "  生成批次的人不能确认该批次（经办与复核分离；操作人取 $SETTLE_USER，未设置时为",
    ]
    assert "  --batch TEXT    拨付批次号，如 pay-150700-0001。 [必填]" in lines


def test_version():
    result = CliRunner().invoke(main, ["--version"], prog_name="settle")
    assert result.exit_code == 0
    assert result.output == f"settle 版本 {version('village-courier-settlement')}\n"


def test_wrap_breaks_by_display_width_and_never_inside_a_latin_word():
    text = "超过一半的行不属于本盟市或本月（WRONG_LEAGUE、OUTSIDE_PERIOD）时仍然结算，见 out/simulations/<盟市>-<起>/。"
    assert wrap(text, 30) == [
        "超过一半的行不属于本盟市或本月",
        "（WRONG_LEAGUE、",
        "OUTSIDE_PERIOD）时仍然结算，见",
        "out/simulations/<盟市>-<起>/。",
    ]
    assert wrap("a b  c", 3) == ["a b", "c"]


def test_join_lines_spaces_latin_words_only():
    assert join_lines(["不加时照常计算并显示", "各企业应付的变化", "（原 → 新）"]) == (
        "不加时照常计算并显示各企业应付的变化（原 → 新）"
    )
    assert join_lines(["只有加 --replace", "才重新结算；COPY … TO、", "ATTACH"]) == (
        "只有加 --replace 才重新结算；COPY … TO、ATTACH"
    )


@pytest.mark.parametrize("path", [(), ("user",)], ids=["settle", "settle user"])
def test_a_group_without_a_command_shows_its_help_not_an_error(path):
    result = CliRunner().invoke(main, list(path), prog_name="settle")
    assert result.exit_code == 2  # as click: no command is a usage error
    assert result.stderr == help_page(*path)
    assert result.stdout == ""
