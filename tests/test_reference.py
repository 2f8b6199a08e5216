"""`settle run` against the independent reference (tests/reference.py), parcel by parcel.

The month has every reason code, a mid-month policy switch (and a two-day gap), the
cost-share and 0.30 caps, break-even and budget both binding, and GBK, UTF-8 and XLSX inputs;
and it still agrees when the same rows arrive shuffled and split differently.
"""

from __future__ import annotations

import json

import polars as pl
import pytest
from click.testing import CliRunner
from conftest import make_config, policy_text
from reference import settle as reference_settle

from settlement.cli import main
from settlement.config import load_config
from settlement.period import Month
from settlement.reasons import REASONS
from settlement.sample import FAULTS, generate, write

pytest.importorskip("openpyxl")


def reference_policy() -> str:
    # monthly budget 600 元: February (k=2) may pay 100 元, March (k=3) 150 元 less February's.
    # Version T-2 starts on 03-18, so 03-16 and 03-17 have no policy (NO_POLICY).
    text = policy_text(scope="company_county", rule="monthly", annual="600.00", tiers=True)
    text = text.replace("effective_from = 2025-03-16", "effective_from = 2025-03-18")
    return text.replace("require_proof = false", "require_proof = true")


def run(cfg_dir, out, month, files):
    args = [
        "run",
        "--league",
        "150700",
        "--month",
        month,
        "--config",
        str(cfg_dir),
        "--out",
        str(out),
        "-q",
        "--replace",  # several tests settle a month again on purpose
    ]
    for f in files:
        args += ["--logs", str(f)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    part = f"league=150700/month={month}"
    return (
        pl.read_parquet(out / "ledger" / part / "part-0.parquet"),
        pl.read_parquet(out / "rejects" / part / "part-0.parquet"),
        json.loads((out / "manifests" / "league=150700" / f"month={month}.json").read_text()),
    )


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    cfg_dir = make_config(root / "config", reference_policy())
    cfg = load_config(cfg_dir)
    feb = generate(cfg, "150700", Month.parse("2025-02"), 400, seed=5)
    write(feb, root / "feb.csv", "csv")
    faults = dict.fromkeys(FAULTS, 0.012)
    march = generate(
        cfg,
        "150700",
        Month.parse("2025-03"),
        3000,
        seed=6,
        faults=faults,
        reclaim=feb,
        reclaim_share=0.01,
    )
    # every third parcel is cheap to deliver, so some units earn more than they cost and the
    # break-even cap binds (fault rows keep their broken costs)
    cheap = (pl.int_range(pl.len()) % 3 == 0) & pl.col("cost_yuan").str.contains(r"^\d+\.\d+$")
    march = march.with_columns(
        pl.when(cheap).then(pl.lit("0.60")).otherwise("cost_yuan").alias("cost_yuan")
    )
    parts = [
        (march[:1200], "utf8.csv", "csv"),
        (march[1200:2200], "gbk.csv", "gbk"),
        (march[2200:], "x.xlsx", "xlsx"),
    ]
    files = []
    for df, name, fmt in parts:
        write(df, root / "march" / name, fmt)
        files.append(root / "march" / name)
    return root, cfg_dir, feb, march, files


def compare(ledger: pl.DataFrame, rejects: pl.DataFrame, ref: dict, with_source: bool) -> None:
    ours = {r["waybill_no"]: r for r in ledger.to_dicts()}
    assert set(ours) == set(ref["ledger"])
    for w, expected in ref["ledger"].items():
        got = ours[w]
        assert (
            got["rate_fen"],
            got["subsidy_fen"],
            got["unit_key"],
            got["policy_version"],
            got["area_class"],
        ) == (
            expected["rate_fen"],
            expected["subsidy_fen"],
            expected["unit_key"],
            expected["policy_version"],
            expected["area_class"],
        ), w
        if with_source:
            assert (got["source_file"], got["source_row"]) == expected["source"]
    if with_source:
        got_rejects = {
            (r["source_file"], r["source_row"]): r["reason_code"] for r in rejects.to_dicts()
        }
        assert got_rejects == ref["rejects"]
    else:
        assert sorted(rejects["reason_code"]) == sorted(ref["rejects"].values())


def test_engine_agrees_with_reference(scenario):
    root, cfg_dir, feb, march, files = scenario
    out = root / "out"
    feb_ledger, _, feb_manifest = run(cfg_dir, out, "2025-02", [root / "feb.csv"])
    ledger, rejects, manifest = run(cfg_dir, out, "2025-03", files)

    paid_feb = feb_manifest["totals"]["subsidy_fen"]
    ref = reference_settle(
        cfg_dir, "150700", "2025-03", files, set(feb_ledger["waybill_no"]), paid_feb
    )
    compare(ledger, rejects, ref, with_source=True)

    # the scenario really exercises what it claims
    assert set(rejects["reason_code"]) == set(REASONS)
    assert set(ledger["policy_version"]) == {"T-1", "T-2"}
    assert ledger.filter(pl.col("area_class") == "border").height > 0
    assert any(
        ref["after_breakeven"][k] < ref["gross"][k] for k in ref["gross"]
    )  # break-even binds
    assert sum(ref["after_breakeven"].values()) > ref["available"]  # budget binds
    assert manifest["budget"]["prorated"] is True
    assert manifest["totals"]["subsidy_fen"] == ref["available"] == 15000 - paid_feb
    assert ledger.filter(pl.col("rate_fen") == 30).height > 0  # 0.30 cap
    share_bound = ledger.filter(pl.col("policy_version") == "T-1").filter(
        pl.col("rate_fen") < (pl.col("base_rate_yuan") * pl.col("volume_multiplier") * 100).floor()
    )
    assert share_bound.height > 0  # cost-share cap


def test_reference_agrees_after_shuffle_and_resplit(scenario):
    root, cfg_dir, feb, march, files = scenario
    out = root / "out2"
    feb_ledger, _, feb_manifest = run(cfg_dir, out, "2025-02", [root / "feb.csv"])
    shuffled = march.sample(fraction=1.0, shuffle=True, seed=99)
    resplit = []
    for df, name, fmt in [
        (shuffled[:500], "a.xlsx", "xlsx"),
        (shuffled[500:2500], "b.csv", "gbk"),
        (shuffled[2500:], "c.csv", "csv"),
    ]:
        write(df, root / "march2" / name, fmt)
        resplit.append(root / "march2" / name)
    ledger, rejects, _ = run(cfg_dir, out, "2025-03", resplit)
    ref = reference_settle(
        cfg_dir,
        "150700",
        "2025-03",
        resplit,
        set(feb_ledger["waybill_no"]),
        feb_manifest["totals"]["subsidy_fen"],
    )
    compare(ledger, rejects, ref, with_source=True)
    first, _, _ = run(cfg_dir, root / "out", "2025-03", files)
    content = [
        "waybill_no",
        "company",
        "village_code",
        "delivered_at",
        "distance_km",
        "cost_yuan",
        "revenue_yuan",
        "rate_fen",
        "unit_key",
        "subsidy_fen",
    ]
    assert (
        ledger.select(content).sort("waybill_no").equals(first.select(content).sort("waybill_no"))
    )


def sequence(root, policy: str, months: list[tuple[str, list]], reruns: dict | None = None):
    """Settle months in order on one store; return {month: (ledger, rejects, manifest, files)}."""
    cfg_dir = make_config(root / "config", policy)
    out = root / "out"
    results = {}
    for month, files in months:
        results[month] = (*run(cfg_dir, out, month, files), files)
    for month, files in (reruns or {}).items():
        results[month] = (*run(cfg_dir, out, month, files), files)
    return cfg_dir, results


def test_two_month_sequence_with_reclaims_and_rerun(tmp_path):
    # ytd 120 元: February pays in full, March is prorated to what is left; some of February's
    # waybills are claimed again in March; March is then re-run with one more file.
    policy = policy_text(scope="company_county", rule="ytd", annual="120.00", tiers=True)
    cfg = load_config(make_config(tmp_path / "gen", policy))
    feb = generate(cfg, "150700", Month.parse("2025-02"), 300, seed=21)
    mar = generate(
        cfg,
        "150700",
        Month.parse("2025-03"),
        900,
        seed=22,
        faults={"duplicate": 0.02, "malformed": 0.01},
        reclaim=feb,
        reclaim_share=0.03,
    )
    late = generate(
        cfg, "150700", Month.parse("2025-03"), 200, seed=23, reclaim=feb, reclaim_share=0.05
    )
    write(feb, tmp_path / "feb.csv", "csv")
    write(mar, tmp_path / "mar.csv", "gbk")
    write(late, tmp_path / "late.xlsx", "xlsx")
    cfg_dir, res = sequence(
        tmp_path,
        policy,
        [("2025-02", [tmp_path / "feb.csv"]), ("2025-03", [tmp_path / "mar.csv"])],
        {"2025-03": [tmp_path / "mar.csv", tmp_path / "late.xlsx"]},
    )
    feb_ledger, feb_rejects, feb_manifest, feb_files = res["2025-02"]
    ref_feb = reference_settle(cfg_dir, "150700", "2025-02", feb_files, set(), 0)
    compare(feb_ledger, feb_rejects, ref_feb, with_source=True)
    ledger, rejects, manifest, files = res["2025-03"]
    ref = reference_settle(
        cfg_dir,
        "150700",
        "2025-03",
        files,
        set(feb_ledger["waybill_no"]),
        feb_manifest["totals"]["subsidy_fen"],
    )
    compare(ledger, rejects, ref, with_source=True)
    assert "ALREADY_SETTLED" in set(rejects["reason_code"])
    assert (
        manifest["budget"]["prorated"]
        and ref["available"] == 12000 - feb_manifest["totals"]["subsidy_fen"]
    )
    assert manifest["totals"]["subsidy_fen"] == ref["available"]


def test_county_scope_sequence_under_monthly_budget(tmp_path):
    policy = policy_text(scope="county", rule="monthly", annual="300.00")
    cfg = load_config(make_config(tmp_path / "gen", policy))
    months = []
    for i, month in enumerate(["2025-01", "2025-02", "2025-03"]):
        df = generate(
            cfg,
            "150700",
            Month.parse(month),
            250 + 150 * i,
            seed=30 + i,
            faults={"duplicate": 0.02, "bad_cost": 0.01},
        )
        write(df, tmp_path / f"{month}.csv", "csv")
        months.append((month, [tmp_path / f"{month}.csv"]))
    cfg_dir, res = sequence(tmp_path, policy, months)
    paid, settled, prorated = 0, set(), 0
    for month, _ in months:
        ledger, rejects, manifest, files = res[month]
        ref = reference_settle(cfg_dir, "150700", month, files, settled, paid)
        compare(ledger, rejects, ref, with_source=True)
        assert set(ledger["unit_key"]) <= {c for c in ledger["county_code"]}
        prorated += manifest["budget"]["prorated"]
        paid += manifest["totals"]["subsidy_fen"]
        settled |= set(ledger["waybill_no"])
    assert prorated >= 1  # the monthly allowance binds at least once
