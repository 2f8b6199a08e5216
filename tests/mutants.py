"""Mutation check of sql/: change a rounding, a boundary or a tie-break, and a test must fail.

A developer tool, not collected by pytest (tests/test_mutants.py checks that the table below
still applies to the SQL):

    .venv/bin/python tests/mutants.py                 # every mutant, two at a time
    .venv/bin/python tests/mutants.py -k cap -j 1     # those whose name contains "cap"
    .venv/bin/python tests/mutants.py --list          # the table, without running it
    .venv/bin/python tests/mutants.py --equivalent    # the equivalent ones (they must survive)

Each mutant is one small textual change to one file of sql/. It is applied to a private copy of
the project (the checkout itself is never edited), then the tests named for it run there
(`pytest -x -q`); the mutant is killed when they fail. The unmutated copy must pass the same
tests first. Exit status: 0 when every mutant is killed, 1 when one survives, 2 when the table
no longer applies (an original text is not found exactly once) or the baseline fails.
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str  # relative to sql/
    original: str  # must occur exactly once in the file
    mutant: str
    tests: tuple[str, ...]  # pytest node ids, relative to the project root


def m(name: str, file: str, original: str, mutant: str, *tests: str) -> Mutant:
    return Mutant(name, file, original, mutant, tests)


B = "tests/test_boundaries.py::"
A = "tests/test_audit_boundaries.py::"
R = "tests/test_rules.py::"
S = "tests/test_store.py::"

MUTANTS = [
    # 05_types.sql — policy version dates (inclusive both ends) and the days of the month
    m("version-first-day-excluded", "05_types.sql",
      "BETWEEN pv.effective_from AND", "BETWEEN pv.effective_from + 1 AND",
      R + "test_rate_per_parcel"),
    m("version-last-day-excluded", "05_types.sql",
      "AND pv.effective_to;", "AND pv.effective_to - 1;",
      R + "test_rate_per_parcel"),
    m("month-first-day-missing", "05_types.sql",
      "range(r.month_start, r.month_end,", "range(r.month_start + INTERVAL 1 DAY, r.month_end,",
      B + "test_validation_at_its_limits"),
    m("month-last-day-missing", "05_types.sql",
      "range(r.month_start, r.month_end,", "range(r.month_start, r.month_end - INTERVAL 1 DAY,",
      B + "test_validation_at_its_limits"),
    # 10_parse.sql — amounts and distances are exact to 0.000001, finer digits rounded half up
    m("distance-5-decimals", "10_parse.sql",
      "TRY_CAST(s.distance_km  AS DECIMAL(18, 6))", "TRY_CAST(s.distance_km  AS DECIMAL(18, 5))",
      R + "test_rate_per_parcel"),
    m("distance-7-decimals", "10_parse.sql",
      "TRY_CAST(s.distance_km  AS DECIMAL(18, 6))", "TRY_CAST(s.distance_km  AS DECIMAL(18, 7))",
      B + "test_rate_rounding"),
    m("cost-5-decimals", "10_parse.sql",
      "TRY_CAST(s.cost_yuan    AS DECIMAL(18, 6))", "TRY_CAST(s.cost_yuan    AS DECIMAL(18, 5))",
      B + "test_breakeven_cap_floors_costs_below_the_fen"),
    m("revenue-5-decimals", "10_parse.sql",
      "TRY_CAST(s.revenue_yuan AS DECIMAL(18, 6))", "TRY_CAST(s.revenue_yuan AS DECIMAL(18, 5))",
      B + "test_breakeven_cap_floors_costs_below_the_fen"),
    m("waybill-64-rejected", "10_parse.sql",
      "length(waybill_no) > 64", "length(waybill_no) >= 64",
      B + "test_validation_at_its_limits"),
    m("waybill-65-accepted", "10_parse.sql",
      "length(waybill_no) > 64", "length(waybill_no) > 65",
      B + "test_validation_at_its_limits"),
    m("village-11-digits", "10_parse.sql",
      "'[0-9]{12}'", "'[0-9]{11,12}'",
      R + "test_reason_codes"),
    # 20_validate.sql — the month is [start, end); limits are inclusive; 0 is allowed
    m("month-start-exclusive", "20_validate.sql",
      "j.delivered_at < r.month_start", "j.delivered_at <= r.month_start",
      B + "test_validation_at_its_limits"),
    m("month-end-inclusive", "20_validate.sql",
      "j.delivered_at >= r.month_end", "j.delivered_at > r.month_end",
      R + "test_reason_codes"),
    m("distance-zero-rejected", "20_validate.sql",
      "j.distance_km < 0", "j.distance_km <= 0",
      R + "test_rate_per_parcel"),
    m("max-distance-exclusive", "20_validate.sql",
      "j.distance_km > r.max_distance_km", "j.distance_km >= r.max_distance_km",
      R + "test_limits_are_inclusive"),
    m("cost-zero-rejected", "20_validate.sql",
      "j.cost_yuan < 0", "j.cost_yuan <= 0",
      B + "test_validation_at_its_limits"),
    m("max-cost-exclusive", "20_validate.sql",
      "j.cost_yuan > r.max_cost_yuan", "j.cost_yuan >= r.max_cost_yuan",
      R + "test_limits_are_inclusive"),
    m("revenue-zero-rejected", "20_validate.sql",
      "j.revenue_yuan < 0", "j.revenue_yuan <= 0",
      R + "test_rate_per_parcel"),
    # 22_repeats.sql — which row of a waybill is kept: delivered_at, company, village_code,
    # distance_km, cost_yuan, then revenue (blank first), proof (blank first), file, row
    m("duplicate-candidates-thrice", "22_repeats.sql",
      "GROUP BY h HAVING COUNT(*) > 1", "GROUP BY h HAVING COUNT(*) > 2",
      R + "test_duplicate_keeps_the_earliest_delivery"),
    m("duplicate-rank-first-rejected", "22_repeats.sql",
      "WHERE waybill_rank > 1", "WHERE waybill_rank >= 1",
      R + "test_duplicate_keeps_the_earliest_delivery"),
    m("duplicate-latest-delivery", "22_repeats.sql",
      "ORDER BY p.delivered_at,", "ORDER BY p.delivered_at DESC,",
      R + "test_duplicate_keeps_the_earliest_delivery"),
    m("duplicate-company-desc", "22_repeats.sql",
      "CAST(p.company AS VARCHAR),", "CAST(p.company AS VARCHAR) DESC,",
      R + "test_duplicate_ties_broken_by_company_then_village"),
    m("duplicate-village-desc", "22_repeats.sql",
      "CAST(p.village AS VARCHAR),", "CAST(p.village AS VARCHAR) DESC,",
      R + "test_duplicate_ties_broken_by_company_then_village"),
    m("duplicate-distance-desc", "22_repeats.sql",
      "p.distance_km,", "p.distance_km DESC,",
      B + "test_duplicate_tie_breaks_after_village"),
    m("duplicate-cost-desc", "22_repeats.sql",
      "p.cost_yuan, p.revenue_yuan", "p.cost_yuan DESC, p.revenue_yuan",
      B + "test_duplicate_tie_breaks_after_village"),
    m("duplicate-revenue-blank-last", "22_repeats.sql",
      "p.revenue_yuan NULLS FIRST", "p.revenue_yuan NULLS LAST",
      B + "test_duplicate_tie_breaks_after_village"),
    m("duplicate-revenue-desc", "22_repeats.sql",
      "p.revenue_yuan NULLS FIRST", "p.revenue_yuan DESC NULLS FIRST",
      B + "test_duplicate_tie_breaks_after_village"),
    m("duplicate-proof-blank-last", "22_repeats.sql",
      "p.proof NULLS FIRST", "p.proof NULLS LAST",
      B + "test_duplicate_tie_breaks_after_village"),
    m("duplicate-proof-desc", "22_repeats.sql",
      "p.proof NULLS FIRST", "p.proof DESC NULLS FIRST",
      B + "test_duplicate_tie_breaks_after_village"),
    m("duplicate-file-desc", "22_repeats.sql",
      "CAST(f.source_file AS VARCHAR), p.source_row", "CAST(f.source_file AS VARCHAR) DESC, p.source_row",
      B + "test_duplicate_tie_breaks_after_village"),
    m("duplicate-row-desc", "22_repeats.sql",
      "p.source_row\n", "p.source_row DESC\n",
      B + "test_duplicate_tie_breaks_after_village"),
    # 30_rate.sql — tiers, bands [from, to), floor to the fen, the caps, cost share in millionths
    m("tier-up-to-exclusive", "30_rate.sql",
      "t.up_to >= vv.village_volume", "t.up_to > vv.village_volume",
      R + "test_volume_tiers_count_all_companies_in_the_village"),
    m("tier-largest-up-to", "30_rate.sql",
      "arg_min(t.multiplier, t.up_to)", "arg_max(t.multiplier, t.up_to)",
      R + "test_volume_tiers_count_all_companies_in_the_village"),
    m("band-rate-ceil", "30_rate.sql",
      "CAST(FLOOR(100 * LEAST(", "CAST(CEIL(100 * LEAST(",
      B + "test_rate_rounding"),
    m("band-rate-round", "30_rate.sql",
      "CAST(FLOOR(100 * LEAST(", "CAST(ROUND(100 * LEAST(",
      B + "test_rate_rounding"),
    m("band-rate-cast-rounds", "30_rate.sql",
      "CAST(FLOOR(100 * LEAST(", "CAST((100 * LEAST(",
      B + "test_rate_rounding"),
    m("band-rate-2-decimals", "30_rate.sql",
      "CAST(b.rate_yuan AS DECIMAL(38, 6))", "CAST(b.rate_yuan AS DECIMAL(38, 2))",
      B + "test_rate_rounding"),
    m("rate-cap-ignored", "30_rate.sql",
      "LEAST(CAST(b.rate_yuan", "GREATEST(CAST(b.rate_yuan",
      R + "test_rate_per_parcel"),
    m("share-2-decimals", "30_rate.sql",
      "CAST(k.max_cost_share * 1000000 AS BIGINT)", "CAST(k.max_cost_share * 100 AS BIGINT) * 10000",
      B + "test_rate_rounding"),
    m("share-cost-to-the-fen", "30_rate.sql",
      "CAST(a.cost_yuan * 1000000 AS BIGINT)", "CAST(a.cost_yuan * 100 AS BIGINT) * 10000",
      B + "test_rate_rounding"),
    m("share-divides-and-rounds", "30_rate.sql",
      "// 10000000000", "/ 10000000000",
      B + "test_rate_rounding"),
    m("share-cap-ignored", "30_rate.sql",
      "ELSE LEAST(vb.band_rate_fen,", "ELSE GREATEST(vb.band_rate_fen,",
      R + "test_rate_per_parcel"),
    m("band-from-exclusive", "30_rate.sql",
      "a.distance_km >= vb.band_from_km", "a.distance_km > vb.band_from_km",
      R + "test_rate_per_parcel"),
    m("band-to-inclusive", "30_rate.sql",
      "a.distance_km < vb.band_to_km", "a.distance_km <= vb.band_to_km",
      B + "test_a_parcel_on_a_band_edge_is_in_the_upper_band_only"),
    # 40_units.sql — cap_fen = floor(100 × max(0, Σ cost − Σ revenue)); min with gross
    m("cap-ceil", "40_units.sql",
      "CAST(FLOOR(100 * GREATEST(0,", "CAST(CEIL(100 * GREATEST(0,",
      B + "test_breakeven_cap_floors_costs_below_the_fen"),
    m("cap-round", "40_units.sql",
      "CAST(FLOOR(100 * GREATEST(0,", "CAST(ROUND(100 * GREATEST(0,",
      B + "test_breakeven_cap_floors_costs_below_the_fen"),
    m("cap-cast-rounds", "40_units.sql",
      "CAST(FLOOR(100 * GREATEST(0,", "CAST((100 * GREATEST(0,",
      B + "test_breakeven_cap_floors_costs_below_the_fen"),
    m("cap-below-zero", "40_units.sql",
      "GREATEST(0, s.cost_yuan", "(0 + s.cost_yuan",
      B + "test_breakeven_cap_floors_costs_below_the_fen"),
    m("cap-not-binding", "40_units.sql",
      "LEAST(gross_fen, GREATEST(0, cap_fen - prior_paid_fen))",
      "GREATEST(gross_fen, GREATEST(0, cap_fen - prior_paid_fen))",
      R + "test_breakeven_scopes"),
    m("cap-less-prior-below-zero", "40_units.sql",
      "LEAST(gross_fen, GREATEST(0, cap_fen - prior_paid_fen))",
      "LEAST(gross_fen, (0 + cap_fen - prior_paid_fen))",
      S + "test_breakeven_excess_is_reported_not_clawed_back"),
    m("excess-below-zero", "40_units.sql",
      "GREATEST(0, prior_paid_fen - COALESCE(cap_fen, prior_paid_fen))",
      "(0 + prior_paid_fen - COALESCE(cap_fen, prior_paid_fen))",
      B + "test_supplement_under_a_higher_cap_reports_no_excess"),
    # 50_budget.sql — available, floor(annual × k / 12), largest remainders (ties: unit_key)
    m("monthly-allowance-divides", "50_budget.sql",
      "r.budget_month_index // 12", "r.budget_month_index / 12",
      B + "test_monthly_allowance_floors_and_remainders_tie"),
    m("available-below-zero", "50_budget.sql",
      "GREATEST(0, LEAST(", "(0 + LEAST(",
      B + "test_budget_cut_below_what_was_paid_pays_nothing"),
    m("available-ignores-other-months", "50_budget.sql",
      "r.annual_budget_fen - e.paid_other_fen", "r.annual_budget_fen + e.paid_other_fen",
      S + "test_rerun_of_an_earlier_month_cannot_break_the_year"),
    m("budget-share-divides", "50_budget.sql",
      "THEN numerator // requested_fen", "THEN numerator / requested_fen",
      R + "test_budget_ytd_prorates_by_largest_remainder"),
    m("budget-remainder-ignored", "50_budget.sql",
      "numerator %  requested_fen", "numerator %  1",
      R + "test_budget_ytd_prorates_by_largest_remainder"),
    m("budget-smallest-remainder-first", "50_budget.sql",
      "ORDER BY remainder DESC, unit_key", "ORDER BY remainder, unit_key",
      R + "test_budget_ytd_prorates_by_largest_remainder"),
    m("budget-tie-larger-unit-key", "50_budget.sql",
      "ORDER BY remainder DESC, unit_key", "ORDER BY remainder DESC, unit_key DESC",
      R + "test_budget_monthly_uses_k_twelfths_and_ties_go_to_smaller_unit_key"),
    m("budget-leftover-short", "50_budget.sql",
      "remainder_rank <= leftover_fen", "remainder_rank < leftover_fen",
      R + "test_budget_ytd_prorates_by_largest_remainder"),
    # 60_allocate.sql and 70_ledger.sql — parcels by largest remainder (ties: waybill_no)
    m("allocation-share-divides", "60_allocate.sql",
      "* unit_subsidy_fen // unit_gross_fen", "* unit_subsidy_fen / unit_gross_fen",
      R + "test_breakeven_scopes"),
    m("allocation-remainder-ignored", "60_allocate.sql",
      "* unit_subsidy_fen % unit_gross_fen", "* unit_subsidy_fen % 1",
      B + "test_breakeven_cap_floors_costs_below_the_fen"),
    m("allocation-smallest-remainder-first", "60_allocate.sql",
      "ORDER BY c.remainder DESC", "ORDER BY c.remainder",
      R + "test_breakeven_scopes"),
    m("allocation-tie-larger-waybill", "60_allocate.sql",
      "ORDER BY p.waybill_no) AS rn", "ORDER BY p.waybill_no DESC) AS rn",
      R + "test_breakeven_scopes"),
    m("allocation-tie-larger-rate-first", "60_allocate.sql",
      "ORDER BY p.waybill_no) AS rn", "ORDER BY p.rate_fen DESC, p.waybill_no) AS rn",
      B + "test_breakeven_cap_floors_costs_below_the_fen"),
    m("allocation-leftover-short", "60_allocate.sql",
      "WHERE rn <= bonus_count", "WHERE rn < bonus_count",
      R + "test_breakeven_scopes"),
    m("allocation-first-waybill-only", "60_allocate.sql",
      "MAX(waybill_no) AS last_waybill", "MIN(waybill_no) AS last_waybill",
      B + "test_breakeven_cap_floors_costs_below_the_fen"),
    m("allocation-last-waybill-excluded", "70_ledger.sql",
      "a.waybill_no <= t.last_waybill", "a.waybill_no < t.last_waybill",
      R + "test_breakeven_scopes"),
    # 80_statement_lines.sql — a unit's budget reduction over its lines (ties: company, 旗县)
    m("lines-share-divides", "80_statement_lines.sql",
      "numerator // unit_reduction_fen", "numerator / unit_reduction_fen",
      B + "test_statement_lines_share_the_budget_reduction_by_largest_remainder"),
    m("lines-remainder-ignored", "80_statement_lines.sql",
      "numerator %  unit_reduction_fen", "numerator %  1",
      B + "test_statement_lines_share_the_budget_reduction_by_largest_remainder"),
    m("lines-smallest-remainder-first", "80_statement_lines.sql",
      "ORDER BY remainder DESC, company, county_code", "ORDER BY remainder, company, county_code",
      B + "test_statement_lines_share_the_budget_reduction_by_largest_remainder"),
    m("lines-tie-larger-company", "80_statement_lines.sql",
      "ORDER BY remainder DESC, company, county_code",
      "ORDER BY remainder DESC, company DESC, county_code",
      B + "test_statement_lines_share_the_budget_reduction_by_largest_remainder"),
    m("lines-tie-larger-county", "80_statement_lines.sql",
      "ORDER BY remainder DESC, company, county_code",
      "ORDER BY remainder DESC, company, county_code DESC",
      B + "test_statement_lines_share_the_budget_reduction_by_largest_remainder"),
    m("lines-leftover-short", "80_statement_lines.sql",
      "remainder_rank <= leftover_fen", "remainder_rank < leftover_fen",
      B + "test_statement_lines_share_the_budget_reduction_by_largest_remainder"),
    # audits — each finds exactly the rows past its limit, and none at it
    m("audit-rows-candidates-thrice", "audits/01_rows_reconcile.sql",
      "SELECT h FROM all_rows GROUP BY h HAVING COUNT(*) > 1",
      "SELECT h FROM all_rows GROUP BY h HAVING COUNT(*) > 2",
      A + "test_rows_reconcile_finds_a_row_counted_twice"),
    m("audit-rows-thrice", "audits/01_rows_reconcile.sql",
      "source_row HAVING COUNT(*) > 1", "source_row HAVING COUNT(*) > 2",
      A + "test_rows_reconcile_finds_a_row_counted_twice"),
    m("audit-subsidy-zero-flagged", "audits/02_subsidy_bounds.sql",
      "WHERE subsidy_fen < 0", "WHERE subsidy_fen <= 0",
      A + "test_subsidy_bounds"),
    m("audit-subsidy-equal-rate-flagged", "audits/02_subsidy_bounds.sql",
      "OR subsidy_fen > rate_fen OR", "OR subsidy_fen >= rate_fen OR",
      A + "test_subsidy_bounds"),
    m("audit-rate-30-flagged", "audits/02_subsidy_bounds.sql",
      "rate_fen > 30", "rate_fen >= 30",
      A + "test_subsidy_bounds"),
    m("audit-rate-31-allowed", "audits/02_subsidy_bounds.sql",
      "rate_fen > 30", "rate_fen > 31",
      A + "test_subsidy_bounds"),
    m("audit-rate-zero-flagged", "audits/02_subsidy_bounds.sql",
      "rate_fen < 0", "rate_fen <= 0",
      A + "test_subsidy_bounds"),
    m("audit-unit-equal-after-breakeven-flagged", "audits/03_units_add_up.sql",
      "OR u.subsidy_fen > u.after_breakeven_fen", "OR u.subsidy_fen >= u.after_breakeven_fen",
      A + "test_units_add_up_at_and_past_the_cap"),
    m("audit-unit-problem-order", "audits/03_units_add_up.sql",
      "WHEN u.subsidy_fen > u.after_breakeven_fen", "WHEN u.subsidy_fen >= u.after_breakeven_fen",
      A + "test_units_add_up_at_and_past_the_cap"),
    m("audit-unit-equal-cap-flagged", "audits/03_units_add_up.sql",
      "AND u.subsidy_fen > GREATEST(0, u.cap_fen - u.prior_paid_fen))",
      "AND u.subsidy_fen >= GREATEST(0, u.cap_fen - u.prior_paid_fen))",
      A + "test_units_add_up_at_and_past_the_cap"),
    m("audit-unit-cap-below-zero", "audits/03_units_add_up.sql",
      "AND u.subsidy_fen > GREATEST(0, u.cap_fen - u.prior_paid_fen))",
      "AND u.subsidy_fen > (0 + u.cap_fen - u.prior_paid_fen))",
      A + "test_units_add_up_at_and_past_the_cap"),
    m("audit-budget-year-starts-a-month-late", "audits/04_budget.sql",
      "< b.year_start_month", "<= b.year_start_month",
      A + "test_budget_years_and_the_annual_limit"),
    m("audit-budget-exactly-spent-flagged", "audits/04_budget.sql",
      "HAVING SUM(subsidy_fen) > MIN(annual_budget_fen)",
      "HAVING SUM(subsidy_fen) >= MIN(annual_budget_fen)",
      A + "test_budget_years_and_the_annual_limit"),
    m("audit-paid-once-candidates-thrice", "audits/07_waybill_paid_once.sql",
      "SELECT h FROM audited GROUP BY h HAVING COUNT(*) > 1",
      "SELECT h FROM audited GROUP BY h HAVING COUNT(*) > 2",
      A + "test_waybill_paid_once"),
    m("audit-paid-thrice", "audits/07_waybill_paid_once.sql",
      "GROUP BY waybill_no\nHAVING COUNT(*) > 1", "GROUP BY waybill_no\nHAVING COUNT(*) > 2",
      A + "test_waybill_paid_once"),
]  # fmt: skip

#: Changes no test can see, because they change nothing: each with the reason. `--equivalent`
#: runs them against every test named above; they must survive (if one is killed, it was not
#: equivalent and belongs in MUTANTS).
EQUIVALENT = [
    (m("prorated-at-equality", "50_budget.sql",
       "b.requested_fen > b.available_fen AS prorated",
       "b.requested_fen >= b.available_fen AS prorated"),
     "when Σ equals what is available, floor(a × V / V) = a with no remainder: the same 分"),
    (m("allocation-all-at-equality", "60_allocate.sql",
       "p.before + p.parcels <= p.leftover_fen", "p.before + p.parcels < p.leftover_fen"),
     "a class that uses the leftover up exactly becomes 'some' with bonus_count = its parcels: "
     "every parcel of it still gets the 分"),
    (m("allocation-none-at-equality", "60_allocate.sql",
       "p.before >= p.leftover_fen", "p.before > p.leftover_fen"),
     "the class just past the leftover becomes 'some' with bonus_count 0 and no threshold: "
     "none of its parcels gets a 分, as before"),
    (m("tier-up-to-largest", "30_rate.sql",
       "MIN(t.up_to)                       AS volume_tier_up_to",
       "MAX(t.up_to)                       AS volume_tier_up_to"),
     "village_bands.volume_tier_up_to is never read after 30_rate.sql (the multiplier comes "
     "from arg_min)"),
    (m("duplicate-company-as-enum", "22_repeats.sql",
       "CAST(p.company AS VARCHAR),", "p.company,"),
     "company_t is created ORDER BY code, so the ENUM sorts as the text does"),
]  # fmt: skip


def sql_dir(root: Path) -> Path:
    """Where sql/ is in a checkout (or a copy of one), as the package says."""
    import settlement

    return root / Path(settlement.SQL_DIR).resolve().relative_to(
        Path(settlement.__file__).resolve().parent.parent
    )


def occurrences(mutant: Mutant, root: Path = ROOT) -> int:
    """How often the mutant's original text occurs in its file (it must be exactly once)."""
    path = sql_dir(root) / mutant.file
    return path.read_text(encoding="utf-8").count(mutant.original) if path.exists() else 0


def copy_project(into: Path) -> Path:
    """A private copy of the checkout to mutate: no virtualenv, no git, no caches."""
    target = into / "project"
    shutil.copytree(
        ROOT,
        target,
        ignore=shutil.ignore_patterns(".*", "__pycache__", "*.egg-info", "build", "dist", "out"),
    )
    return target


def run_tests(copy: Path, tests: tuple[str, ...]) -> tuple[int, str]:
    """pytest -x -q on the copy, importing the copy's settlement package."""
    path = os.pathsep.join([str(copy), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONPATH=path, COLUMNS="400")  # wide: FAILED lines keep the error
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", "-rf", "-p", "no:cacheprovider", *tests],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
    )
    return proc.returncode, proc.stdout + proc.stderr


def first_failure(output: str) -> str:
    """'test_name (ErrorType)' of pytest's first FAILED line (parameters left out)."""
    found = re.search(r"^FAILED \S+?::(\w+)\S*(?:.*? - ([\w.]+))?", output, re.MULTILINE)
    if not found:
        return ""
    error = (found.group(2) or "").rsplit(".", 1)[-1].replace("assert", "AssertionError")
    return found.group(1) + (f" ({error})" if error else "")


def apply_and_run(mutant: Mutant, copy: Path, tests: tuple[str, ...]) -> tuple[str, str, float]:
    """(outcome, detail, seconds) for one mutant on one copy; the file is restored afterwards."""
    path = sql_dir(copy) / mutant.file
    original = path.read_text(encoding="utf-8")
    started = time.monotonic()
    try:
        path.write_text(original.replace(mutant.original, mutant.mutant, 1), encoding="utf-8")
        code, output = run_tests(copy, tests)
    finally:
        path.write_text(original, encoding="utf-8")
    seconds = time.monotonic() - started
    if code == 0:
        return "SURVIVED", "", seconds
    if code == 1:
        return "killed", first_failure(output), seconds
    return "ERROR", output.strip().splitlines()[-1] if output.strip() else f"exit {code}", seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-k", default="", help="only mutants whose name contains this")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="copies run at once (2)")
    parser.add_argument("--list", action="store_true", help="print the table and stop")
    parser.add_argument("--equivalent", action="store_true", help="run the equivalent mutants")
    args = parser.parse_args(argv)

    why: dict[str, str] = {}
    if args.equivalent:
        every_test = tuple(dict.fromkeys(t for x in MUTANTS for t in x.tests))
        chosen = [Mutant(x.name, x.file, x.original, x.mutant, every_test) for x, _ in EQUIVALENT]
        why = {x.name: reason for x, reason in EQUIVALENT}
        expected = "SURVIVED"
    else:
        chosen, expected = MUTANTS, "killed"
    chosen = [x for x in chosen if args.k in x.name]
    stale = [x for x in chosen if occurrences(x) != 1]
    for x in stale:
        print(f"STALE  {x.name}: {x.original!r} occurs {occurrences(x)} times in sql/{x.file}")
    if stale or not chosen:
        return 2
    if args.list:
        for x in chosen:
            tests = why.get(x.name) or ", ".join(t.split("::")[-1] for t in x.tests)
            print(f"{x.name:42} sql/{x.file:32} {tests}")
        return 0

    with tempfile.TemporaryDirectory(prefix="settle-mutants-") as tmp:
        paths = [copy_project(Path(tmp) / str(i)) for i in range(max(1, args.jobs))]
        copies: queue.Queue[Path] = queue.Queue()
        for path in paths:
            copies.put(path)
        baseline = tuple(dict.fromkeys(t for x in chosen for t in x.tests))
        started = time.monotonic()
        code, output = run_tests(paths[0], baseline)
        if code != 0:
            print(output)
            print(f"baseline: the unmutated copy fails its tests (exit {code})")
            return 2
        print(
            f"baseline: {len(baseline)} tests pass unmutated ({time.monotonic() - started:.0f} s)"
        )

        def one(mutant: Mutant) -> tuple[str, str, float]:
            copy = copies.get()
            try:
                result = apply_and_run(mutant, copy, mutant.tests)
            finally:
                copies.put(copy)
            print(f"  {result[0]:8} {mutant.name}", file=sys.stderr, flush=True)
            return result

        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            results = list(pool.map(one, chosen))

    column = "why it changes nothing" if args.equivalent else "failing test"
    print(f"\n| mutant | file | change | result | {column} | s |\n|---|---|---|---|---|---|")
    for x, (outcome, detail, seconds) in zip(chosen, results, strict=True):
        change = f"`{' '.join(x.original.split())}` → `{' '.join(x.mutant.split())}`"
        change = change.replace("|", "\\|")  # a table cell
        detail = why.get(x.name, detail)
        print(f"| {x.name} | {x.file} | {change} | {outcome} | {detail} | {seconds:.0f} |")
    wrong = [x.name for x, r in zip(chosen, results, strict=True) if r[0] != expected]
    print(
        f"\n{len(chosen) - len(wrong)} of {len(chosen)} {expected}"
        + (f"; not: {', '.join(wrong)}" if wrong else "")
    )
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
