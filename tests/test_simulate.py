"""The policy simulator (`settle simulate`, SPEC §9): the current policy reproduces every ledger,
a variant agrees with the independent reference, refusals, --fit-budget and --scale by hand,
and the store is never written."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import shutil
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from click.testing import CliRunner
from conftest import V1B, V2, V_BORDER, make_config, policy_text
from reference import settle as reference_settle
from test_store import Office, p

from settlement import DEFAULT_CONFIG_DIR
from settlement.cli import main
from settlement.config import load_config
from settlement.engine import settle_month
from settlement.errors import ConfigError, UsageError
from settlement.money import scale_yuan
from settlement.period import Month
from settlement.sample import generate, write
from settlement.simulate import COMPARISON, cap_limit, load_variant, scale_policy, simulate

LEAGUE = "150700"


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(root: Path) -> dict[str, str]:
    """Every file under root with its SHA-256."""
    return {str(f.relative_to(root)): sha256(f) for f in sorted(root.rglob("*")) if f.is_file()}


# --------------------------------------------------------------------------- the current policy


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """Three months on one store (ytd budget 1.60 元, volume tiers): January settled, re-run
    (the first run superseded), February, January sealed and its late parcels settled in a
    supplementary run (volume tier and break-even over the whole month, budget prorated over
    two units because February was paid before it), March with the year's budget spent."""
    root = tmp_path_factory.mktemp("history")
    office = Office(root, rule="ytd", annual="1.60", tiers=True)
    jan = [
        p("A", "2025-01-05", cost="1.00", revenue="0.80"),
        p("B", "2025-01-06", km="5", village=V1B),
        p("B2", "2025-01-06", km="5", village=V1B),
        p("C", "2025-01-07", village=V2, company="YTO", cost="1.00", revenue="0.90"),
    ]
    office.settle("2025-01", *jan)
    office.settle("2025-01", *jan, p("D", "2025-01-08", km="3", village=V_BORDER), replace=True)
    office.settle(
        "2025-02",
        p("F1", "2025-02-05", km="5"),
        p("F2", "2025-02-06", km="5"),
        p("F3", "2025-02-07", village=V2, company="YTO"),
    )
    office.seal("2025-01")
    office.settle(
        "2025-01",
        p("L1", "2025-01-25", km="5", village=V1B, cost="1.00", revenue="0.90"),
        p("L2", "2025-01-26", village=V2, company="YTO", cost="1.00", revenue="0.80"),
        supplementary=True,
    )
    office.settle(
        "2025-03",
        p("M1", "2025-03-05"),
        p("M2", "2025-03-20", village=V_BORDER),
        p("M3", "2025-03-21", village=V2, company="YTO"),
        p("M4", "2025-03-22", km="4"),
    )
    before = tree(office.out)
    runs = office.sql("SELECT * FROM runs ORDER BY run_id")
    out = root / "simulation"
    result = simulate_cli(office, "--out", out, months=("2025-01", "2025-03"), quiet=False)
    return office, before, runs, out, result


def test_the_scenario_exercises_supplements_tiers_breakeven_and_the_budget(history):
    office, *_ = history
    # what the delta-0 test below would miss if the replay got them wrong
    assert office.sql(
        "SELECT waybill_no, rate_fen, village_volume, subsidy_fen FROM ledger "
        "WHERE waybill_no IN ('L1', 'L2') ORDER BY 1"
    ) == [("L1", 12, 3, 6), ("L2", 22, 2, 10)]  # L1: 3 parcels in V1B over the month → ×1.2
    assert office.sql(
        "SELECT unit_key, cap_fen, prior_paid_fen, after_breakeven_fen, subsidy_fen FROM units "
        "WHERE prior_paid_fen > 0 ORDER BY 1"
    ) == [("YTO|150783", 30, 10, 20, 10), ("ZTO|150702", 430, 52, 12, 6)]
    assert office.sql(
        "SELECT month, kind, status, subsidy_fen, budget_available_fen FROM runs "
        "ORDER BY finished_at"
    ) == [
        ("2025-01", "regular", "superseded", 62, 160),
        ("2025-01", "regular", "current", 92, 160),
        ("2025-02", "regular", "current", 52, 68),
        ("2025-01", "supplementary", "current", 16, 16),  # 160 − 52 (Feb) − 92 (Jan)
        ("2025-03", "regular", "current", 0, 0),
    ]


def test_current_policy_gives_delta_zero_in_every_row(history):
    office, _, _, out, result = history
    assert result.exit_code == 0, result.output
    comparison = pl.read_parquet(out / "comparison.parquet")
    assert comparison.columns == list(COMPARISON)
    assert comparison.rows() == [
        ("2025-01", "YTO", "150783", "default", 2, 20, 20, 0),
        ("2025-01", "ZTO", "150702", "default", 4, 58, 58, 0),
        ("2025-01", "ZTO", "150727", "border", 1, 30, 30, 0),
        ("2025-02", "YTO", "150783", "default", 1, 22, 22, 0),
        ("2025-02", "ZTO", "150702", "default", 2, 30, 30, 0),
        ("2025-03", "YTO", "150783", "default", 1, 0, 0, 0),
        ("2025-03", "ZTO", "150702", "default", 2, 0, 0, 0),
        ("2025-03", "ZTO", "150727", "border", 1, 0, 0, 0),
    ]
    assert office.sql("SELECT SUM(subsidy_fen) FROM runs WHERE status = 'current'") == [(160,)]
    lines = result.stdout.splitlines()
    assert lines[0] == "政策模拟  呼伦贝尔市（150700） 2025-01 至 2025-03"
    assert "  模拟政策：现行政策" in lines
    assert "  重放 4 个结算批次，已受理 14 件" in lines
    assert re.search(r"应付补贴 +1\.60 +1\.60 +0\.00", result.stdout)
    assert re.search(r"2025-01  补充结算1 +0\.16 +0\.16 +0\.16 +0\.16", result.stdout)
    progress = result.stderr.splitlines()
    assert progress[0] == "[settle] 模拟 150700 2025-01 至 2025-03：重放 4 个结算批次，共 14 件"
    assert progress[1:] == [
        "[settle] 重放 2025-01 月度结算（5 件）",
        "[settle] 重放 2025-02 月度结算（3 件）",
        "[settle] 重放 2025-01 补充结算1（2 件）",
        "[settle] 重放 2025-03 月度结算（4 件）",
    ]
    assert "  按企业：各企业的补贴均不变。" in lines
    assert f"  已写出 {out / 'summary.html'}" in lines


def test_simulation_writes_nothing_to_the_store(history):
    office, before, runs, out, _ = history
    assert tree(office.out) == before  # store, ledgers, statements, journal: byte for byte
    assert office.sql("SELECT * FROM runs ORDER BY run_id") == runs
    assert sorted(f.name for f in out.iterdir()) == [
        "comparison.parquet",
        "summary.html",
        "summary.xlsx",
    ]


def test_summary_workbook_and_page(history):
    _, _, _, out, _ = history
    wb = openpyxl.load_workbook(out / "summary.xlsx")
    assert wb.sheetnames == [
        "总览",
        "预算使用",
        "按企业",
        "按旗县",
        "按区域类别",
        "盈亏平衡单元",
        "费率对照",
    ]
    assert wb.defined_names["BASELINE_SUBSIDY_YUAN"].attr_text == "1.60"
    assert wb.defined_names["VARIANT_SUBSIDY_YUAN"].attr_text == "1.60"
    assert wb.defined_names["BUDGET_REDUCTION_YUAN"].attr_text == "0.82"  # 16 + 66 分
    budget = [[c.value for c in r] for r in wb["预算使用"].iter_rows(min_row=2)]
    assert [r[:4] + r[5:7] for r in budget] == [
        ["2025-01", "月度结算", 5, 1.6, 0.92, 0],
        ["2025-02", "月度结算", 3, 0.68, 0.52, 0],
        ["2025-01", "补充结算1", 2, 0.16, 0.16, 0.16],
        ["2025-03", "月度结算", 4, 0, 0, 0.66],
    ]
    assert len(wb["总览"]._charts) == 1  # a native Excel chart of each run's payouts
    assert not wb["按企业"]._charts  # no change, no chart of changes
    units = [[c.value for c in r] for r in wb["盈亏平衡单元"].iter_rows(min_row=2)]
    assert [r[:3] + r[6:] for r in units] == [
        ["2025-01", "月度结算", "YTO|150783", 0.22, 0.1, 0.1, 0.12, "是"],
        ["2025-01", "补充结算1", "YTO|150783", 0.22, 0.3, 0.2, 0.02, "是"],
    ]
    page = (out / "summary.html").read_text(encoding="utf-8")
    assert "<svg" in page and "预算使用（按批次，按实际结算顺序）" in page
    assert not re.search(r"(src|href)\s*=|<script|<link|@import|url\(", page)  # nothing fetched


# --------------------------------------------------------------------------- a variant, exactly


VARIANT_CHANGES = {
    # revenue for break-even where neither the log nor the company gives it (YTO has no default)
    "default_revenue_yuan = 0.50": "default_revenue_yuan = 1.20",
    # T-1: default 0.10 / 0.15, border 0.25 → 0.20 / 0.28, border 0.35 (× tiers: the 0.30 cap)
    "rate_yuan = 0.10": "rate_yuan = 0.20",
    "rate_yuan = 0.15": "rate_yuan = 0.28",
    "rate_yuan = 0.25": "rate_yuan = 0.35",
    # T-2: default 0.12 → 0.19, border 0.22 → 0.40 (the 0.20 cap)
    "rate_yuan = 0.12": "rate_yuan = 0.19",
    "rate_yuan = 0.22": "rate_yuan = 0.40",
}


def test_variant_agrees_with_the_reference_on_a_month_where_every_cap_binds(tmp_path):
    current = policy_text(rule="monthly", annual="60.00", tiers=True)
    variant = current
    for old, new in VARIANT_CHANGES.items():
        variant = variant.replace(old, new)
    cfg_dir = make_config(tmp_path / "config", current)
    cfg = load_config(cfg_dir)
    march = generate(cfg, LEAGUE, Month.parse("2025-03"), 1200, seed=6)
    cheap = pl.int_range(pl.len()) % 3 == 0  # these earn more than they cost: break-even binds
    march = march.with_columns(
        pl.when(cheap).then(pl.lit("0.30")).otherwise("cost_yuan").alias("cost_yuan")
    )
    write(march, tmp_path / "march.csv", "csv")
    out = tmp_path / "out"
    settle_month(cfg, LEAGUE, Month.parse("2025-03"), [tmp_path / "march.csv"], out)
    variant_dir = make_config(tmp_path / "variant", variant)
    sim = simulate(
        cfg,
        out / "settlement.duckdb",
        LEAGUE,
        Month.parse("2025-03"),
        Month.parse("2025-03"),
        variant_dir / "policies" / "150700.toml",
    )
    ref = reference_settle(variant_dir, LEAGUE, "2025-03", [tmp_path / "march.csv"], set(), 0)

    # every limit binds under the variant
    rates = [x["rate_fen"] for x in ref["ledger"].values()]
    assert 30 in rates and 20 in rates  # the two versions' caps
    assert any(ref["after_breakeven"][k] < ref["gross"][k] for k in ref["gross"])
    assert sum(ref["after_breakeven"].values()) > ref["available"] == 1500  # 60 元 × 3 / 12
    assert any(  # the cost share: cost 0.30 × 0.5 = 15 分 below the band's rate
        x["rate_fen"] == 15 and x["policy_version"] == "T-1" for x in ref["ledger"].values()
    )

    expected: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for parcel in ref["ledger"].values():
        company, county = parcel["unit_key"].split("|")
        key = ("2025-03", company, county, parcel["area_class"])
        expected[key][0] += 1
        expected[key][1] += parcel["subsidy_fen"]
    got = {
        (r["month"], r["company"], r["county_code"], r["area_class"]): [
            r["parcels"],
            r["variant_fen"],
        ]
        for r in sim.tables["comparison"].to_dicts()
    }
    assert got == dict(expected)
    units = {r["unit_key"]: r for r in sim.period.replays[0].units.to_pylist()}
    assert {k: (u["after_breakeven_fen"], u["subsidy_fen"]) for k, u in units.items()} == {
        k: (ref["after_breakeven"][k], ref["units"][k]) for k in ref["units"]
    }
    assert sim.totals["variant_fen"] == 1500
    assert sim.totals["delta_fen"] == 1500 - sim.totals["baseline_fen"]


def test_variant_as_text_for_a_web_route(tmp_path, fit_office):
    text = (fit_office.root / "config" / "policies" / "150700.toml").read_text(encoding="utf-8")
    text = text.replace("rate_yuan = 0.15", "rate_yuan = 0.16")
    sim = simulate(
        fit_office.cfg,
        fit_office.store,
        LEAGUE,
        Month.parse("2025-01"),
        Month.parse("2025-01"),
        text,
        variant_name="上传的政策.toml",
    )
    assert sim.source == "上传的政策.toml"
    assert sim.tables["comparison"].rows() == [
        ("2025-01", "ZTO", "150702", "default", 2, 30, 32, 2)
    ]
    bad = text.replace("cap_yuan = 0.30", "cap_yuan = 0.35")
    with pytest.raises(ConfigError, match="^配置错误 上传的政策.toml: version\\[0\\].cap_yuan: "):
        simulate(
            fit_office.cfg,
            fit_office.store,
            LEAGUE,
            Month.parse("2025-01"),
            Month.parse("2025-01"),
            bad,
            variant_name="上传的政策.toml",
        )


# --------------------------------------------------------------------------- refusals


@pytest.fixture(scope="module")
def fit_office(tmp_path_factory):
    """ytd budget 0.50 元. January: J1, J2 at 12 km (15 分 each) = 30 分. February: F1–F3 at
    5 km (10 分 each) ask 30 分 with 20 left: prorated to 20."""
    office = Office(tmp_path_factory.mktemp("fit"), rule="ytd", annual="0.50")
    office.settle("2025-01", p("J1", "2025-01-05"), p("J2", "2025-01-06"))
    office.settle(
        "2025-02",
        p("F1", "2025-02-05", km="5"),
        p("F2", "2025-02-06", km="5"),
        p("F3", "2025-02-07", km="5"),
    )
    return office


def simulate_cli(office, *extra, months=("2025-01", "2025-02"), quiet=True, store=None):
    """`settle simulate` on an office's store (or `store`) and configuration."""
    return cli(
        "simulate",
        "--league",
        LEAGUE,
        "--from",
        months[0],
        "--to",
        months[1],
        "--config",
        office.root / "config",
        "--store",
        store or office.store,
        *(["-q"] if quiet else []),
        *extra,
    )


def variant_file(office, name: str, old: str, new: str) -> Path:
    text = (office.root / "config" / "policies" / "150700.toml").read_text(encoding="utf-8")
    assert old in text
    path = office.root / name
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def test_a_variant_above_the_030_ceiling_is_refused_like_any_policy(fit_office, tmp_path):
    path = variant_file(fit_office, "too_high.toml", "cap_yuan = 0.30", "cap_yuan = 0.31")
    result = simulate_cli(fit_office, "--policy", path, "--out", tmp_path / "x")
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"错误：配置错误 {path}: version[0].cap_yuan: 0.31 元超过每件 0.30 元的上限"
    )
    assert not (tmp_path / "x").exists()


def test_a_variant_with_other_eligibility_is_refused(fit_office, tmp_path):
    path = variant_file(fit_office, "wider.toml", "max_distance_km = 500", "max_distance_km = 600")
    result = simulate_cli(fit_office, "--policy", path, "--out", tmp_path / "x")
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"错误：配置错误 {path}: eligibility.max_distance_km: 与现行政策 "
        f"{fit_office.root / 'config' / 'policies' / '150700.toml'} 不同（600，现行 500）；"
        "模拟只重新计算已受理包裹的补贴，受理条件必须与现行政策相同"
    )
    proof = variant_file(fit_office, "proof.toml", "require_proof = false", "require_proof = true")
    result = simulate_cli(fit_office, "--policy", proof)
    assert result.exit_code == 2 and "eligibility.require_proof: 与现行政策" in result.output
    assert "（true，现行 false）" in result.output


def test_a_variant_of_another_league_and_bad_arguments_are_refused(fit_office, tiny, tmp_path):
    other = DEFAULT_CONFIG_DIR / "policies" / "150100.toml"
    result = simulate_cli(fit_office, "--policy", other)
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"错误：配置错误 {other}: league_code: 变体政策属于盟市 150100，模拟的是盟市 150700"
    )
    result = simulate_cli(fit_office, "--policy", tmp_path / "none.toml")
    assert result.output.strip() == f"错误：配置错误 {tmp_path / 'none.toml'}: 文件不存在"
    result = simulate_cli(fit_office, "--scale", "forest=1.5")
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"错误：--scale：区域类别 forest 不在政策 "
        f"{fit_office.root / 'config' / 'policies' / '150700.toml'} 中（有 border、default）"
    )
    result = simulate_cli(fit_office, "--scale", "border=x")
    assert result.exit_code == 2 and "系数“x”不是数字" in result.output
    result = simulate_cli(fit_office, "--scale", "border")
    assert result.exit_code == 2 and "应为 类别=系数" in result.output
    result = simulate_cli(fit_office, months=("2025-03", "2025-02"))
    assert result.exit_code == 2
    assert result.output.strip() == "错误：起始月份 2025-03 晚于结束月份 2025-02"
    result = simulate_cli(fit_office, months=("2025-05", "2025-06"))
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"错误：结算库 {fit_office.store} 中没有盟市 150700 2025-05 至 2025-06 的有效结算批次，"
        "无可模拟"
    )
    missing = tmp_path / "none.duckdb"
    result = simulate_cli(fit_office, store=missing)
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"错误：结算库 {missing} 不存在；请用 --store 指定已有的结算库，或先运行 settle run"
    )
    with pytest.raises(UsageError, match="的预算规则为 none（不限额），没有可拟合的预算"):
        simulate(
            tiny, fit_office.store, LEAGUE, Month.parse("2025-01"), Month.parse("2025-02"), fit=True
        )


# --------------------------------------------------------------------------- --scale, --fit-budget


def test_scale_one_class_by_hand(fit_office, tmp_path):
    # default ×0.5: January 0.15 → 0.075 → 7 分 each = 14; February 0.10 → 0.05 → 5 分 each =
    # 15, within the 50 − 14 = 36 left. 29 分 against the 30 + 20 paid.
    result = simulate_cli(fit_office, "--scale", "default=0.5", "--out", tmp_path / "s")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # -q: no progress
    assert "  模拟政策：现行政策；区域类别 default 的基础费率 ×0.5" in result.output
    assert pl.read_parquet(tmp_path / "s" / "comparison.parquet").rows() == [
        ("2025-01", "ZTO", "150702", "default", 2, 30, 14, -16),
        ("2025-02", "ZTO", "150702", "default", 3, 20, 15, -5),
    ]
    assert "  按企业：减少 1 家，合计 -0.21 元；减少最多：ZTO 中通快递 -0.21 元。" in result.output
    assert len(openpyxl.load_workbook(tmp_path / "s" / "summary.xlsx")["按企业"]._charts) == 1
    page = (tmp_path / "s" / "summary.html").read_text(encoding="utf-8")
    assert page.count("<svg") == 3  # payouts by run, changes by company and by 旗县


def test_a_variant_that_leaves_parcels_without_a_policy_version(fit_office, tmp_path):
    # T-1 from 2025-01-10: January's parcels (05, 06) have no version; February asks 30 of 50.
    path = variant_file(
        fit_office, "later.toml", "effective_from = 2025-01-01", "effective_from = 2025-01-10"
    )
    result = simulate_cli(fit_office, "--policy", path, "--out", tmp_path / "v")
    assert result.exit_code == 0, result.output
    assert pl.read_parquet(tmp_path / "v" / "comparison.parquet").rows() == [
        ("2025-01", "ZTO", "150702", "default", 2, 30, 0, -30),
        ("2025-02", "ZTO", "150702", "default", 3, 20, 30, 10),
    ]
    assert (
        "  模拟政策下有 2 件已受理包裹不予受理（签收当日无有效补贴政策 2 件），现行政策曾付 0.30 元。"
        in result.output
    )


def test_fit_budget_by_hand(fit_office, tmp_path):
    # February alone, after January's 30 分: 3 parcels × floor(100 × 0.10 × m) ≤ 50 − 30 = 20,
    # so floor(10m) ≤ 6: m = 0.6999 (6 分 each, 18 分); at 0.7000 7 分 each ask 21 > 20.
    out = tmp_path / "fit"
    result = simulate_cli(fit_office, "--fit-budget", "--out", out, months=("2025-02", "2025-02"))
    assert result.exit_code == 0, result.output
    assert "全部基础费率 ×0.6999（预算拟合结果）" in result.output
    assert (
        "  预算拟合：全部基础费率乘以 0.6999 时全期无需预算调减，应付 0.18 元；乘以 0.7000 时 "
        "1 个批次需调减 0.01 元（二分法试算 15 次，每次完整重新结算全期）。"
    ) in result.output
    assert pl.read_parquet(out / "comparison.parquet").rows() == [
        ("2025-02", "ZTO", "150702", "default", 3, 20, 18, -2)
    ]
    book = openpyxl.load_workbook(out / "summary.xlsx")
    steps = [[c.value for c in r] for r in book["预算拟合"].iter_rows(min_row=2, max_row=16)]
    # halving [0, 30003): from 3.0002 on every rate is at the 0.30 cap, so 3.0003 would pay
    # what 3.0002 pays
    assert [(s[1], round(s[2] * 100), round(s[3] * 100)) for s in steps] == [
        ("1.5001", 45, 20),
        ("0.7500", 21, 20),
        ("0.3750", 9, 9),
        ("0.5625", 15, 15),
        ("0.6562", 18, 18),
        ("0.7031", 21, 20),
        ("0.6796", 18, 18),
        ("0.6913", 18, 18),
        ("0.6972", 18, 18),
        ("0.7001", 21, 20),
        ("0.6986", 18, 18),
        ("0.6993", 18, 18),
        ("0.6997", 18, 18),
        ("0.6999", 18, 18),
        ("0.7000", 21, 20),
    ]
    assert steps[0][5] == "1 个批次需调减" and steps[2][5] == "无需调减"
    rates = [[c.value for c in r] for r in book["费率对照"].iter_rows()]
    assert rates[1][2:6] == ["边境旗市（border）", "0–∞ 公里", "0.25", "0.174975"]  # 0.25 × 0.6999


def test_cap_limit_and_scaling_are_exact(tiny):
    policy = tiny.policy(LEAGUE)
    # smallest rate 0.10, largest cap 0.30: 10000 × 0.300001 / 0.10 = 30000.1 → 30001, + 1
    assert cap_limit(policy) == 30002
    assert scale_yuan(Decimal("0.15"), Decimal("1.2345")) == Decimal("0.185175")
    assert scale_yuan(Decimal("0.123457"), Decimal("0.5")) == Decimal("0.061728")  # floored
    scaled = scale_policy(policy, {"border": Decimal("1.1")}, Decimal("2"))
    assert [(b.area_class, b.rate_yuan) for b in scaled.versions[0].rates] == [
        ("default", Decimal("0.20")),
        ("default", Decimal("0.30")),
        ("border", Decimal("0.550")),
    ]


def test_a_missing_ledger_stops_the_simulation(fit_office, tmp_path):
    ledger = fit_office.out / "ledger" / "league=150700" / "month=2025-02" / "part-0.parquet"
    aside = tmp_path / "part-0.parquet"
    ledger.rename(aside)
    try:
        result = simulate_cli(fit_office, "--out", tmp_path / "x")
    finally:
        aside.rename(ledger)
    assert result.exit_code == 1
    run_id = fit_office.sql("SELECT run_id FROM runs WHERE month = '2025-02'")[0][0]
    assert result.output.strip() == (
        f"错误：结算库 {fit_office.store} 记录批次 {run_id}（150700 2025-02）受理 3 件，但明细账 "
        f"{ledger.parent} 中有 0 件：无法按已结算的包裹模拟，请先恢复明细账文件"
        "（settle verify 可列出问题）"
    )


def test_the_readme_variant_is_a_valid_variant(shipped):
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Policy simulation") :]
    text = section[
        section.index("```toml\n") + 8 : section.index("```\n", section.index("```toml"))
    ]
    variant = load_variant(shipped, LEAGUE, text, "README 示例.toml")
    assert variant.budget_rule == "monthly"
    assert [b.rate_yuan for b in variant.versions[0].rates] == [
        Decimal("0.08"),
        Decimal("0.14"),
        Decimal("0.20"),
    ]


def test_fit_search_when_the_budget_never_binds_or_always_does(tiny, monkeypatch):
    """The search alone (each step's settlement stood in for by a rule on the multiplier):
    the answer is the cap limit when even every rate at its cap needs no reduction, and 0
    when even 0.0001 does."""
    from settlement import simulate as sim_module

    policy = scale_policy(tiny.policy(LEAGUE))
    policy = dataclasses.replace(policy, budget_rule="ytd")
    base = policy.versions[0].rates[0].rate_yuan  # 0.10

    def settle_with(reduce_above: Decimal | None):
        def fake(cfg, the_plan, scaled, *args, **kwargs):
            k = scaled.versions[0].rates[0].rate_yuan / base
            asked = 2 if reduce_above is not None and k > reduce_above else 1
            budget = {"available_fen": 1, "requested_fen": asked, "paid_fen": 1}
            return sim_module.Period(scaled, [sim_module.Replay(None, budget, None, None, None)])

        return fake

    monkeypatch.setattr(sim_module, "settle_period", settle_with(None))
    fit, _ = sim_module.fit_budget(tiny, None, policy)
    assert (fit.k, fit.limit, fit.unbounded, len(fit.steps)) == (30002, 30002, True, 15)
    monkeypatch.setattr(sim_module, "settle_period", settle_with(Decimal("0")))
    fit, period = sim_module.fit_budget(tiny, None, policy)
    assert (
        fit.k,
        fit.unbounded,
        fit.steps[-1].k,
        fit.above.policy.versions[0].rates[0].rate_yuan,
    ) == (
        0,
        False,
        0,
        Decimal("0.000010"),
    )
    assert period.policy.versions[0].rates[0].rate_yuan == 0


def test_a_moved_output_directory_is_simulated_from_where_it_now_is(fit_office, tmp_path):
    moved = tmp_path / "moved"
    shutil.copytree(fit_office.out, moved)
    away = fit_office.out.with_name("out-away")
    fit_office.out.rename(away)  # the old place is gone while the copy is simulated
    try:
        result = simulate_cli(
            fit_office, "--out", tmp_path / "sim", store=moved / "settlement.duckdb"
        )
    finally:
        away.rename(fit_office.out)
    assert result.exit_code == 0, result.output
    assert pl.read_parquet(tmp_path / "sim" / "comparison.parquet").rows() == [
        ("2025-01", "ZTO", "150702", "default", 2, 30, 30, 0),
        ("2025-02", "ZTO", "150702", "default", 3, 20, 20, 0),
    ]
