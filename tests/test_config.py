"""Strict configuration loading (SPEC §3): every error names the file and the key."""

from __future__ import annotations

import pytest
from conftest import COMPANIES, make_config, policy_text

from settlement.config import load_config
from settlement.errors import ConfigError


def load_with(tmp_path, policy: str | None = None, companies: str = COMPANIES):
    return load_config(make_config(tmp_path / "config", policy, companies))


def expect_error(tmp_path, key: str, problem: str, policy=None, companies=COMPANIES):
    with pytest.raises(ConfigError) as err:
        load_with(tmp_path, policy, companies)
    assert err.value.key == key
    assert problem in err.value.problem
    assert err.value.path.endswith(".toml")
    return err.value


def test_shipped_configuration_loads(shipped):
    assert set(shipped.companies) >= {"EMS", "SF", "JD", "ZTO", "YTO", "STO", "YUNDA", "JT", "DBL"}
    assert len(shipped.policies) == 12
    assert set(shipped.policies) == set(shipped.leagues["code"])
    for policy in shipped.policies.values():
        for version in policy.versions:
            assert version.cap_yuan <= __import__("decimal").Decimal("0.30")
            assert "示例" in version.reference  # every reference says it is illustrative


def test_shipped_border_classes_are_the_20_border_banners(shipped):
    border = set()
    for policy in shipped.policies.values():
        for area in policy.versions[-1].areas:
            if area.name == "border":
                border.update(area.counties)
    assert len(border) == 20
    assert {"150781", "152501", "152923", "150929", "150223"} <= border


def test_shipped_divisions_match_the_registry(shipped):
    assert shipped.villages.height == 14592
    assert shipped.counties.height == 108


def test_message_names_file_and_key(tmp_path):
    err = expect_error(
        tmp_path,
        "version[0].cap_yuan",
        "超过每件 0.30 元的上限",
        policy_text().replace("cap_yuan = 0.30", "cap_yuan = 0.31"),
    )
    assert str(err).startswith("配置错误 ")
    assert "policies/150700.toml: version[0].cap_yuan" in str(err)


CASES = [
    # (what is wrong, edit of the test policy, key, problem)
    ("unknown top-level key", lambda p: "budgett = 1\n" + p, "budgett", "未知的配置项"),
    (
        "unknown nested key",
        lambda p: p.replace("require_proof", "require_prof"),
        "eligibility.require_prof",
        "未知的配置项",
    ),
    (
        "missing required key",
        lambda p: p.replace('scope = "company_county"\n', ""),
        "breakeven.scope",
        "缺少必填项",
    ),
    ("missing version id", lambda p: p.replace('id = "T-2"\n', ""), "version[1].id", "缺少必填项"),
    (
        "cap above 0.30",
        lambda p: p.replace("cap_yuan = 0.20", "cap_yuan = 0.300001"),
        "version[1].cap_yuan",
        "超过每件 0.30 元的上限",
    ),
    (
        "negative rate",
        lambda p: p.replace("rate_yuan = 0.12", "rate_yuan = -0.12"),
        "version[1].rate[0].rate_yuan",
        "不能为负数",
    ),
    (
        "negative budget",
        lambda p: p.replace("annual_yuan = 1000.00", "annual_yuan = -1"),
        "budget.annual_yuan",
        "不能为负数",
    ),
    (
        "budget not whole 分",
        lambda p: p.replace("annual_yuan = 1000.00", "annual_yuan = 1000.001"),
        "budget.annual_yuan",
        "精确到分",
    ),
    (
        "float for a string",
        lambda p: p.replace('league_name = "呼伦贝尔市"', "league_name = 1"),
        "league_name",
        "应为非空字符串",
    ),
    (
        "overlapping bands",
        lambda p: p.replace("distance_from_km = 10\n", "distance_from_km = 9\n"),
        "version[0].rate (class default)",
        "重叠",
    ),
    (
        "gapped bands",
        lambda p: p.replace("distance_from_km = 10\n", "distance_from_km = 11\n"),
        "version[0].rate (class default)",
        "缺口",
    ),
    (
        "bands not from 0",
        lambda p: p.replace(
            'class = "border"\n  distance_from_km = 0\n  rate_yuan = 0.25',
            'class = "border"\n  distance_from_km = 1\n  rate_yuan = 0.25',
        ),
        "version[0].rate (class border)",
        "应从 0 公里开始",
    ),
    (
        "closed last band",
        lambda p: p.replace(
            "distance_from_km = 0\n  rate_yuan = 0.22",
            "distance_from_km = 0\n  distance_to_km = 900\n  rate_yuan = 0.22",
        ),
        "version[1].rate (class border)",
        "应省略 distance_to_km",
    ),
    (
        "class with no rates",
        lambda p: p.replace(
            'class = "border"\n  distance_from_km = 0\n  rate_yuan = 0.22',
            'class = "default"\n  distance_from_km = 5\n  rate_yuan = 0.22',
        ),
        "version[1].rate (class border)",
        "没有费率",
    ),
    (
        "rate for an undefined class",
        lambda p: p.replace(
            'class = "border"\n  distance_from_km = 0\n  rate_yuan = 0.25',
            'class = "forest"\n  distance_from_km = 0\n  rate_yuan = 0.25',
        ),
        "version[0].rate[2].class",
        "未在 area 中定义",
    ),
    (
        "county in two classes",
        lambda p: p.replace(
            '  villages = ["150702100202"]\n',
            '  villages = ["150702100202"]\n\n  [[version.area]]\n  class = "pastoral"\n  counties = ["150727"]\n',
        ),
        "version[0].area[1].counties",
        "同时属于类别 border 和 pastoral",
    ),
    (
        "village in two classes",
        lambda p: p.replace(
            '  villages = ["150702100202"]\n',
            '  villages = ["150702100202"]\n\n  [[version.area]]\n  class = "pastoral"\n  villages = ["150702100202"]\n',
        ),
        "version[0].area[1].villages",
        "同时属于类别",
    ),
    (
        "county of another league",
        lambda p: p.replace(
            'counties = ["150727"]\n  villages', 'counties = ["150102"]\n  villages'
        ),
        "version[0].area[0].counties",
        "不属于盟市 150700",
    ),
    (
        "overlapping versions",
        lambda p: p.replace("effective_from = 2025-03-16", "effective_from = 2025-03-15"),
        "version[1].effective_from",
        "有效期重叠",
    ),
    (
        "open version before another",
        lambda p: p.replace("effective_to = 2025-03-15\n", ""),
        "version[1].effective_from",
        "有效期重叠",
    ),
    (
        "end before start",
        lambda p: p.replace("effective_to = 2025-03-15", "effective_to = 2024-03-15"),
        "version[0].effective_to",
        "早于生效日期",
    ),
    (
        "date as text",
        lambda p: p.replace("effective_from = 2025-03-16", 'effective_from = "2025-03-16"'),
        "version[1].effective_from",
        "应为日期",
    ),
    ("bad scope", lambda p: p.replace('"company_county"', '"township"'), "breakeven.scope", "应为"),
    (
        "bad budget rule",
        lambda p: p.replace('rule = "none"', 'rule = "quarterly"'),
        "budget.rule",
        "应为",
    ),
    (
        "budget year month 13",
        lambda p: p.replace("year_start_month = 1", "year_start_month = 13"),
        "budget.year_start_month",
        "1–12",
    ),
    (
        "cost share above 1",
        lambda p: p.replace("max_cost_share = 0.5", "max_cost_share = 1.5"),
        "version[0].max_cost_share",
        "不能大于 1",
    ),
    (
        "more than 6 decimals",
        lambda p: p.replace("rate_yuan = 0.12", "rate_yuan = 0.1200001"),
        "version[1].rate[0].rate_yuan",
        "最多6位小数",
    ),
    (
        "league code not in registry",
        lambda p: p.replace('league_code = "150700"', 'league_code = "150000"'),
        "league_code",
        "不是区划库中的盟市代码",
    ),
    (
        "urban-rural code not 3 digits",
        lambda p: p.replace("[eligibility]", '[eligibility]\nurban_rural_codes = ["22"]'),
        "eligibility.urban_rural_codes",
        "不是3位城乡分类代码",
    ),
]


@pytest.mark.parametrize(("what", "edit", "key", "problem"), CASES, ids=[c[0] for c in CASES])
def test_policy_errors(tmp_path, what, edit, key, problem):
    policy = edit(policy_text())
    assert policy != policy_text(), f"the edit for {what!r} changed nothing"
    expect_error(tmp_path, key, problem, policy)


def test_duplicate_volume_tier(tmp_path):
    policy = policy_text(tiers=True).replace("up_to = 3", "up_to = 2")
    expect_error(tmp_path, "version[0].volume_tier[1].up_to", "重复", policy)


def test_league_code_must_match_file_name(tmp_path):
    root = make_config(tmp_path / "config")
    (root / "policies" / "150700.toml").rename(root / "policies" / "150800.toml")
    with pytest.raises(ConfigError) as err:
        load_config(root)
    assert err.value.key == "league_code" and "不一致" in err.value.problem


def test_toml_syntax_error(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_with(tmp_path, policy_text() + "\n[budget\n")
    assert "TOML 语法错误" in err.value.problem


COMPANY_CASES = [
    (
        "code with lower case",
        COMPANIES.replace('code = "YTO"', 'code = "yto"'),
        "company[1].code",
        "大写字母",
    ),
    (
        "code with a path",
        COMPANIES.replace('code = "YTO"', 'code = "../X"'),
        "company[1].code",
        "大写字母",
    ),
    (
        "code too long",
        COMPANIES.replace('code = "YTO"', 'code = "ABCDEFGHIJKLMNOPQ"'),
        "company[1].code",
        "1–16位",
    ),
    (
        "duplicate code",
        COMPANIES.replace('code = "YTO"', 'code = "ZTO"'),
        "company[1].code",
        "重复",
    ),
    (
        "negative default revenue",
        COMPANIES.replace("0.85", "-0.85"),
        "company[0].default_revenue_yuan",
        "不能为负数",
    ),
    (
        "unknown key",
        COMPANIES.replace('name = "圆通速递"', 'name = "圆通速递"\nphone = "95554"'),
        "company[1].phone",
        "未知的配置项",
    ),
    ("missing name", COMPANIES.replace('name = "圆通速递"\n', ""), "company[1].name", "缺少必填项"),
    ("no companies", "", "company", "缺少必填项"),
]


@pytest.mark.parametrize(
    ("what", "text", "key", "problem"), COMPANY_CASES, ids=[c[0] for c in COMPANY_CASES]
)
def test_company_errors(tmp_path, what, text, key, problem):
    expect_error(tmp_path, key, problem, companies=text)


def test_missing_divisions_file(tmp_path):
    root = make_config(tmp_path / "config")
    (root / "divisions" / "villages.csv").unlink()
    with pytest.raises(ConfigError) as err:
        load_config(root)
    assert err.value.path.endswith("villages.csv") and "不存在" in err.value.problem


def test_missing_config_directory(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "nowhere")
    assert "配置目录不存在" in str(err.value)


def test_policy_for_unknown_league(tiny):
    with pytest.raises(ConfigError) as err:
        tiny.policy("150800")
    assert err.value.path.endswith("150800.toml")
