"""The policy simulator (SPEC §9): re-settle a period's accepted parcels under a variant policy.

A 盟市 office designs its differentiated rates against the budget and break-even: what would
the period have paid under these rates? The simulator replays every current run of the period
through the same `sql/` rules as `settle run` — configuration from the variant
(rules.load_config), the run's accepted parcels read back from its ledger as the text a log
would hold (sql/05–20), the store's part given instead of read (rules.load_given: nothing
settled elsewhere, the budget year as simulated so far, the month's earlier runs as simulated),
then sql/22–70 — and compares with the ledger as settled. The store is only read.

Runs are replayed in the order they were recorded, each seeing the budget year as its real run
saw it: the period's earlier runs as simulated, months outside the period as settled. So the
current policy reproduces every ledger to the 分, supplementary runs (补充结算) included.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from ..config import Config, Policy, load_policy
from ..db import connect
from ..errors import ConfigError, RefusedError, SettlementError, UsageError
from ..money import QUANTUM, format_yuan, scale_yuan
from ..period import Month
from ..rules import READ, SETTLE, load_config, load_given, run_sql
from ..store import Earlier, connect_readonly, resolve_out

Progress = Callable[[str], None] | None

#: the run id the simulated ledgers carry (never recorded anywhere)
SIM_RUN_ID = "SIMULATION"
#: --fit-budget searches multipliers in steps of 1/STEPS
STEPS = 10_000
#: the columns of comparison.parquet (SPEC §9)
COMPARISON = (
    "month",
    "company",
    "county_code",
    "area_class",
    "parcels",
    "baseline_fen",
    "variant_fen",
    "delta_fen",
)
ELIGIBILITY = ("urban_rural_codes", "max_distance_km", "max_cost_yuan", "require_proof")


# --------------------------------------------------------------------------- the variant


def load_variant(
    cfg: Config, league: str, source: Policy | str | Path | None, name: str | None = None
) -> Policy:
    """The variant policy: a Policy, a policy file, or TOML text (named `name` in messages),
    loaded by the same strict loader as config/policies/; None: the current policy.

    It must be for `league` and keep the current policy's [eligibility]: the simulation
    re-settles parcels that were accepted, so it can change what is paid, not what is accepted.
    """
    current = cfg.policy(league)
    if source is None:
        return current
    if isinstance(source, Policy):
        variant = source
    elif isinstance(source, Path):
        variant = load_policy(source, cfg.villages, cfg.leagues, named_by_league=False)
    else:
        path = Path(name or "变体政策.toml")
        variant = load_policy(path, cfg.villages, cfg.leagues, text=source, named_by_league=False)
    if variant.league_code != league:
        raise ConfigError(
            variant.path,
            "league_code",
            f"变体政策属于盟市 {variant.league_code}，模拟的是盟市 {league}",
        )
    for key in ELIGIBILITY:
        mine, theirs = getattr(variant, key), getattr(current, key)
        if key == "urban_rural_codes":
            mine, theirs = sorted(mine), sorted(theirs)
        if mine != theirs:
            raise ConfigError(
                variant.path,
                f"eligibility.{key}",
                f"与现行政策 {current.path} 不同（{_shown(mine)}，现行 {_shown(theirs)}）；"
                "模拟只重新计算已受理包裹的补贴，受理条件必须与现行政策相同",
            )
    return variant


def _shown(value: object) -> str:
    if isinstance(value, list | tuple):
        return "、".join(value) or "（空）"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def policy_classes(policy: Policy) -> list[str]:
    """Every area class that has rates in some version."""
    return sorted({b.area_class for v in policy.versions for b in v.rates})


def scale_policy(
    policy: Policy, by_class: dict[str, Decimal] | None = None, every: Decimal | None = None
) -> Policy:
    """The policy with base rates multiplied: a class's by `by_class[class]`, then all of them
    by `every`; each product floored to 6 decimals (money.scale_yuan)."""
    by_class = by_class or {}
    unknown = sorted(set(by_class) - set(policy_classes(policy)))
    if unknown:
        raise UsageError(
            f"--scale：区域类别 {unknown[0]} 不在政策 {policy.path} 中"
            f"（有 {'、'.join(policy_classes(policy))}）"
        )

    def rate(band):
        value = band.rate_yuan
        if band.area_class in by_class:
            value = scale_yuan(value, by_class[band.area_class])
        if every is not None:
            value = scale_yuan(value, every)
        return dataclasses.replace(band, rate_yuan=value)

    versions = tuple(
        dataclasses.replace(v, rates=tuple(rate(b) for b in v.rates)) for v in policy.versions
    )
    return dataclasses.replace(policy, versions=versions)


def parse_factor(text: str) -> Decimal:
    """A non-negative multiplier with at most 6 decimals, e.g. '1.2'."""
    try:
        value = Decimal(text.strip())
    except ArithmeticError:
        raise UsageError(f"系数“{text}”不是数字") from None
    if not value.is_finite() or value < 0 or value != value.quantize(QUANTUM):
        raise UsageError(f"系数“{text}”应为不小于 0、最多6位小数的数")
    return value


# --------------------------------------------------------------------------- the store's runs


@dataclass(frozen=True)
class StoreRun:
    """A current run of the store, as recorded (the baseline)."""

    run_id: str
    month: str
    kind: str  # regular | supplementary
    finished_at: dt.datetime
    parcels: int
    gross_fen: int
    after_breakeven_fen: int
    subsidy_fen: int
    budget_available_fen: int | None
    out_dir: Path
    ordinal: int = 0  # supplementary: 1 for the month's first supplement, …

    @property
    def label(self) -> str:
        return "月度结算" if self.kind == "regular" else f"补充结算{self.ordinal}"

    def files(self, kind: str, league: str) -> list[str]:
        """The Parquet files of this run's month (the run's rows are those with its run_id)."""
        folder = self.out_dir / kind / f"league={league}" / f"month={self.month}"
        return [str(p) for p in sorted(folder.glob("*.parquet"))]


@dataclass
class Plan:
    """What a simulation replays: the period's current runs, in the order they were recorded,
    and the current runs of the league's other months (their payments count in the budget year)."""

    store: Path
    league: str
    first: Month
    last: Month
    runs: list[StoreRun]
    others: list[StoreRun]

    @property
    def months(self) -> list[str]:
        return sorted({r.month for r in self.runs})

    @property
    def missing(self) -> list[str]:
        """Months of the period without a current run (nothing to replay)."""
        have = set(self.months)
        count = (self.last.year - self.first.year) * 12 + self.last.month - self.first.month + 1
        return [str(m) for m in (self.first.shift(k) for k in range(count)) if str(m) not in have]


def plan(store: Path, league: str, first: Month, last: Month) -> Plan:
    """Read the store (read-only): the current runs of the league, in the order recorded."""
    if last < first:
        raise UsageError(f"起始月份 {first} 晚于结束月份 {last}")
    con = connect_readonly(store)
    try:
        cursor = con.execute(
            """
            SELECT run_id, month, kind, finished_at, parcels, gross_fen, after_breakeven_fen,
                   subsidy_fen, budget_available_fen, out_dir
            FROM runs WHERE league_code = ? AND status = 'current'
            ORDER BY finished_at, run_id
            """,
            [league],
        )
        rows = cursor.fetchall()
    except duckdb.CatalogException:
        rows = []
    finally:
        con.close()
    runs, others, supplements = [], [], {}
    for run_id, month, kind, finished, parcels, gross, after, paid, available, out in rows:
        out_dir = resolve_out(store, out)  # recorded relative to the store
        ordinal = 0
        if kind == "supplementary":
            ordinal = supplements[month] = supplements.get(month, 0) + 1
        run = StoreRun(
            run_id, month, kind, finished, parcels, gross, after, paid, available, out_dir, ordinal
        )
        (runs if str(first) <= month <= str(last) else others).append(run)
    if not runs:
        raise RefusedError(
            f"结算库 {store} 中没有盟市 {league} {first} 至 {last} 的有效结算批次，无可模拟"
        )
    return Plan(store, league, first, last, runs, others)


# --------------------------------------------------------------------------- one run replayed


@dataclass
class Replay:
    """One run re-settled under the variant."""

    run: StoreRun
    budget: dict  # the budget row of sql/50_budget.sql
    groups: pa.Table  # month × company × 旗县 × class: parcels, baseline_fen, variant_fen, …
    units: pa.Table  # the variant's units (sql/50_budget.sql), with the baseline's beside them
    refused: pa.Table  # parcels the variant does not accept, by reason
    ledger: pa.Table | None = None  # the columns prior_units/prior_villages need (supplements)

    @property
    def prorated(self) -> bool:
        b = self.budget
        return b["available_fen"] is not None and b["requested_fen"] > b["available_fen"]


def _literal(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _parquet(files: list[str]) -> str:
    return "read_parquet([" + ", ".join(_literal(f) for f in files) + "])"


def replay_run(
    cfg: Config,
    league: str,
    run: StoreRun,
    earlier: Earlier,
    prior: pa.Table | None,
    keep_ledger: bool,
    memory_limit: str | None = None,
    temp_dir: Path | None = None,
    store: Path | None = None,
) -> Replay:
    """Re-settle one run's accepted parcels with cfg's policy for `league`, through sql/."""
    ledger_files = run.files("ledger", league)
    con = connect(memory_limit, temp_dir)
    try:
        baseline = (
            f"{_parquet(ledger_files)} WHERE CAST(run_id AS VARCHAR) = {_literal(run.run_id)}"
        )
        found = (
            con.execute(f"SELECT COUNT(*) FROM {baseline}").fetchall()[0][0] if ledger_files else 0
        )
        if found != run.parcels:
            folder = run.out_dir / "ledger" / f"league={league}" / f"month={run.month}"
            raise SettlementError(
                f"结算库 {store or ''} 记录批次 {run.run_id}（{league} {run.month}）受理 "
                f"{run.parcels:,} 件，但明细账 {folder} 中有 {found:,} 件：无法按已结算的包裹模拟，"
                "请先恢复明细账文件（settle verify 可列出问题）"
            )
        con.execute(f"CREATE TEMP VIEW baseline AS SELECT * FROM {baseline}")
        names = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT CAST(source_file AS VARCHAR) FROM baseline ORDER BY 1"
            ).fetchall()
        ]
        load_config(con, cfg, league, Month.parse(run.month), SIM_RUN_ID, names)
        # the parcels as a log holds them (text), so sql/10–20 read them as they read a log:
        # revenue only where the log gave it (else the variant's defaults apply); source
        # file and row kept, so each simulated parcel traces back to its input row
        con.execute(
            """
            CREATE TEMP VIEW raw_logs AS
            SELECT CAST(b.waybill_no AS VARCHAR)   AS waybill_no,
                   CAST(b.company AS VARCHAR)      AS company,
                   CAST(b.delivered_at AS VARCHAR) AS delivered_at,
                   CAST(b.village_code AS VARCHAR) AS village_code,
                   CAST(b.distance_km AS VARCHAR)  AS distance_km,
                   CAST(b.cost_yuan AS VARCHAR)    AS cost_yuan,
                   CASE WHEN CAST(b.revenue_source AS VARCHAR) = 'log'
                        THEN CAST(b.revenue_yuan AS VARCHAR) END AS revenue_yuan,
                   CAST(b.proof AS VARCHAR)        AS proof,
                   f.file_no,
                   CAST(b.source_row AS BIGINT)    AS source_row
            FROM baseline b JOIN input_files f ON f.source_file = CAST(b.source_file AS VARCHAR)
            """
        )
        run_sql(con, READ)
        con.execute("CREATE TEMP TABLE rows AS SELECT * FROM validated")
        load_given(con, earlier, prior)
        run_sql(con, SETTLE)
        return _collect(con, run, league, keep_ledger)
    finally:
        con.close()


def _collect(con: duckdb.DuckDBPyConnection, run: StoreRun, league: str, keep: bool) -> Replay:
    """What a replay leaves: the budget, groups compared with the baseline, units, refusals."""
    # each simulated parcel once (the ledger view is evaluated here), keyed by its input file
    # and row packed in one integer: joining the baseline on it is cheaper than on waybill_no
    prior = ", CAST(unit_key AS VARCHAR) AS unit_key, CAST(village_code AS VARCHAR) AS "
    prior += "village_code, cost_yuan, revenue_yuan"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE simulated AS
        SELECT (CAST(enum_code(source_file) AS BIGINT) << 32) + source_row AS source_key,
               CAST(area_class AS VARCHAR) AS area_class, subsidy_fen {prior if keep else ""}
        FROM ledger_out
        """
    )
    groups = con.sql(
        """
        WITH b AS (
            SELECT b.*, (CAST(enum_code(f.source_file) AS BIGINT) << 32) + b.source_row
                        AS source_key
            FROM baseline b JOIN file_dim f ON CAST(f.source_file AS VARCHAR) = CAST(b.source_file AS VARCHAR)
        )
        SELECT ? AS month, CAST(b.company AS VARCHAR) AS company,
               CAST(b.county_code AS VARCHAR) AS county_code,
               COALESCE(s.area_class, CAST(b.area_class AS VARCHAR)) AS area_class,
               COUNT(*) AS parcels,
               CAST(SUM(b.subsidy_fen) AS BIGINT) AS baseline_fen,
               CAST(COALESCE(SUM(s.subsidy_fen), 0) AS BIGINT) AS variant_fen,
               COUNT(*) FILTER (WHERE COALESCE(s.subsidy_fen, 0) > b.subsidy_fen) AS gained,
               COUNT(*) FILTER (WHERE COALESCE(s.subsidy_fen, 0) < b.subsidy_fen) AS lost
        FROM b LEFT JOIN simulated s USING (source_key)
        GROUP BY ALL
        """,
        params=[run.month],
    ).to_arrow_table()
    units_files = run.files("units", league)
    base_units = (
        f"SELECT CAST(unit_key AS VARCHAR) AS unit_key, gross_fen, after_breakeven_fen "
        f"FROM {_parquet(units_files)} WHERE CAST(run_id AS VARCHAR) = {_literal(run.run_id)}"
        if units_files
        else "SELECT NULL::VARCHAR AS unit_key, 0::BIGINT AS gross_fen, 0::BIGINT AS after_breakeven_fen LIMIT 0"
    )
    units = con.sql(
        f"""
        SELECT ? AS run_id, ? AS month, u.unit_key, u.company, u.county_code, u.parcels,
               u.gross_fen, u.cap_fen, u.prior_paid_fen, u.after_breakeven_fen, u.subsidy_fen,
               b.gross_fen AS baseline_gross_fen,
               b.after_breakeven_fen AS baseline_after_breakeven_fen
        FROM units u LEFT JOIN ({base_units}) b USING (unit_key)
        """,
        params=[run.run_id, run.month],
    ).to_arrow_table()
    refused = con.sql(
        """
        SELECT ? AS month, x.reason_code, x.reason, COUNT(*) AS parcels,
               CAST(SUM(b.subsidy_fen) AS BIGINT) AS baseline_fen
        FROM rejects_out x
        JOIN baseline b ON CAST(b.source_file AS VARCHAR) = x.source_file
                       AND b.source_row = x.source_row
        GROUP BY ALL
        """,
        params=[run.month],
    ).to_arrow_table()
    cursor = con.execute(
        "SELECT *, (SELECT CAST(COALESCE(SUM(subsidy_fen), 0) AS BIGINT) FROM units) AS paid_fen "
        "FROM budget"
    )
    names = [d[0] for d in cursor.description]
    budget = dict(zip(names, cursor.fetchall()[0], strict=True))
    ledger = (
        con.sql(
            "SELECT unit_key, village_code, cost_yuan, revenue_yuan, subsidy_fen FROM simulated"
        ).to_arrow_table()
        if keep
        else None
    )
    return Replay(run, budget, groups, units, refused, ledger)


# --------------------------------------------------------------------------- a whole period


class _Book:
    """What each month of the league paid, run by run: the store's for months outside the
    period, the simulation's inside it. A run sees the runs recorded before it (as it did)."""

    def __init__(self, others: list[StoreRun]) -> None:
        self.con = duckdb.connect(":memory:")
        self.con.execute(
            "CREATE TABLE paid (month VARCHAR, finished_at TIMESTAMP, subsidy_fen BIGINT)"
        )
        for r in others:
            self.record(r, r.subsidy_fen)

    def record(self, run: StoreRun, subsidy_fen: int) -> None:
        self.con.execute(
            "INSERT INTO paid VALUES (?, ?, ?)", [run.month, run.finished_at, subsidy_fen]
        )

    def earlier(self, run: StoreRun, year_start: Month) -> Earlier:
        """As store.load_earlier: paid in earlier months of the budget year, in every other
        month of it, and (a supplementary run) in this month's earlier runs."""
        row = self.con.execute(
            """
            SELECT COALESCE(SUM(subsidy_fen) FILTER (WHERE month < $m), 0),
                   COALESCE(SUM(subsidy_fen) FILTER (WHERE month <> $m), 0),
                   COALESCE(SUM(subsidy_fen) FILTER (WHERE month = $m), 0)
            FROM paid WHERE finished_at < $t AND month >= $y0 AND month < $y1
            """,
            {
                "m": run.month,
                "t": run.finished_at,
                "y0": str(year_start),
                "y1": str(year_start.shift(12)),
            },
        ).fetchall()[0]
        in_month = int(row[2]) if run.kind == "supplementary" else 0
        return Earlier(int(row[0]), int(row[1]), in_month)

    def close(self) -> None:
        self.con.close()


@dataclass
class Period:
    """The period re-settled under one policy."""

    policy: Policy
    replays: list[Replay]

    @property
    def prorated(self) -> list[Replay]:
        """Runs whose budget would be reduced (SPEC §4.4)."""
        return [r for r in self.replays if r.prorated]


def settle_period(
    cfg: Config,
    the_plan: Plan,
    policy: Policy,
    progress: Progress = None,
    memory_limit: str | None = None,
    temp_dir: Path | None = None,
    prefix: str = "",
) -> Period:
    """Replay every run of the plan under `policy`, in the order recorded."""
    variant_cfg = dataclasses.replace(cfg, policies={**cfg.policies, the_plan.league: policy})
    book = _Book(the_plan.others)
    later = {}  # month -> index of its last run in the plan
    for i, run in enumerate(the_plan.runs):
        later[run.month] = i
    prior: dict[str, list[pa.Table]] = {}
    replays = []
    try:
        for i, run in enumerate(the_plan.runs):
            if progress:
                progress(f"{prefix}重放 {run.month} {run.label}（{run.parcels:,} 件）")
            month = Month.parse(run.month)
            earlier = book.earlier(run, month.budget_year_start(policy.year_start_month))
            before = prior.get(run.month)
            replay = replay_run(
                variant_cfg,
                the_plan.league,
                run,
                earlier,
                pa.concat_tables(before) if before else None,
                keep_ledger=later[run.month] > i,
                memory_limit=memory_limit,
                temp_dir=temp_dir,
                store=the_plan.store,
            )
            if replay.ledger is not None:
                prior.setdefault(run.month, []).append(replay.ledger)
                replay.ledger = None
            book.record(run, replay.budget["paid_fen"])
            replays.append(replay)
    finally:
        book.close()
    return Period(policy, replays)


# --------------------------------------------------------------------------- --fit-budget


@dataclass
class Step:
    """One step of the search: every base rate × k / 10000, the whole period re-settled."""

    k: int
    prorated_runs: int
    requested_fen: int  # Σ after break-even
    paid_fen: int

    @property
    def multiplier(self) -> Decimal:
        return Decimal(self.k).scaleb(-4)

    @property
    def fits(self) -> bool:
        return self.prorated_runs == 0


@dataclass
class Fit:
    """The largest multiplier of every base rate (in steps of 0.0001) for which no run of the
    period needs a budget reduction; `above` is the period one step higher (None: even the
    0.30 cap on every parcel fits the budget, so no multiplier reaches it)."""

    k: int
    limit: int  # from this multiplier on every rate is at its cap: higher ones change nothing
    steps: list[Step]
    above: Period | None

    @property
    def multiplier(self) -> Decimal:
        return Decimal(self.k).scaleb(-4)

    @property
    def unbounded(self) -> bool:
        return self.above is None

    @property
    def steps_by_k(self) -> dict[int, Step]:
        return {s.k: s for s in self.steps}


def cap_limit(policy: Policy) -> int:
    """The multiplier (in 1/10000) from which every positive base rate × its smallest volume
    multiplier reaches the largest cap_yuan, even after flooring to 6 decimals."""
    rates = [b.rate_yuan for v in policy.versions for b in v.rates if b.rate_yuan > 0]
    if not rates:
        raise UsageError(f"政策 {policy.path} 的基础费率全部为 0，乘以任何系数仍为 0，无可拟合")
    tiers = [t.multiplier for v in policy.versions for t in v.volume_tiers if t.multiplier > 0]
    cap = max(v.cap_yuan for v in policy.versions)
    need = cap / min([Decimal(1), *tiers]) + QUANTUM
    return int((STEPS * need / min(rates)).to_integral_value(rounding=ROUND_CEILING)) + 1


def _step(period: Period, k: int) -> Step:
    return Step(
        k,
        len(period.prorated),
        sum(int(r.budget["requested_fen"]) for r in period.replays),
        sum(int(r.budget["paid_fen"]) for r in period.replays),
    )


def fit_budget(
    cfg: Config,
    the_plan: Plan,
    base: Policy,
    progress: Progress = None,
    memory_limit: str | None = None,
    temp_dir: Path | None = None,
) -> tuple[Fit, Period]:
    """Bisection over integer k = multiplier × 10000 in [0, cap_limit]: each step a real
    settlement of the period (settle_period). Whether any run is reduced only grows with k
    (rates, gross and after-break-even only grow; earlier months' payments only grow and leave
    later months less), so the bisection finds the largest k with no reduction exactly."""
    if base.budget_rule == "none":
        raise UsageError(f"政策 {base.path} 的预算规则为 none（不限额），没有可拟合的预算")
    say = progress or (lambda _m: None)
    steps: list[Step] = []

    def attempt(k: int) -> Period:
        shown = Decimal(k).scaleb(-4)
        period = settle_period(
            cfg,
            the_plan,
            scale_policy(base, every=shown),
            progress,
            memory_limit,
            temp_dir,
            prefix=f"第 {len(steps) + 1} 步 系数 {shown:.4f}：",
        )
        step = _step(period, k)
        steps.append(step)
        say(
            f"第 {len(steps)} 步 系数 {shown:.4f}：应付 {format_yuan(step.paid_fen)} 元，"
            + (
                "无需预算调减"
                if step.fits
                else f"{step.prorated_runs} 个批次需预算调减 "
                f"{format_yuan(step.requested_fen - step.paid_fen)} 元"
            )
        )
        return period

    limit = cap_limit(base)
    # k = 0 pays nothing, so needs no reduction; limit + 1 pays what limit pays (every rate at
    # its cap), so it stands for "needs a reduction" until limit itself is found to need none
    lo, hi, lo_period, hi_period = 0, limit + 1, None, None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        period = attempt(mid)
        if period.prorated:
            hi, hi_period = mid, period
        else:
            lo, lo_period = mid, period
    if lo_period is None:  # even 0.0001 of every rate needs a reduction
        lo_period = attempt(0)
    return Fit(lo, limit, steps, hi_period), lo_period


# --------------------------------------------------------------------------- the simulation


@dataclass
class Simulation:
    """A simulation's result: the period under the current and the variant policy."""

    cfg: Config
    league: str
    league_name: str
    first: Month
    last: Month
    current: Policy
    variant: Policy  # as simulated: after --scale and --fit-budget
    source: str  # where the variant came from, for people
    scale: dict[str, Decimal]
    the_plan: Plan
    period: Period
    fit: Fit | None
    tables: dict[str, pl.DataFrame]
    generated_at: dt.datetime
    files: list[Path] = field(default_factory=list)

    @property
    def totals(self) -> dict[str, int]:
        return self.tables["totals"].to_dicts()[0]


def simulate(
    cfg: Config,
    store: Path,
    league: str,
    first: Month,
    last: Month,
    variant: Policy | str | Path | None = None,
    scale: dict[str, Decimal] | None = None,
    fit: bool = False,
    out_dir: Path | None = None,
    progress: Progress = None,
    memory_limit: str | None = None,
    variant_name: str | None = None,
    planned: Plan | None = None,
) -> Simulation:
    """Re-settle the current runs of `first`..`last` under a variant policy (a Policy, a file,
    or TOML text named `variant_name`; None: the current policy), its area classes' base rates
    multiplied by `scale`, and with `fit` the largest multiplier of every base rate that keeps
    the period within the budget. Writes comparison.parquet and the summary under `out_dir`
    (when given); the store is only read — by `plan`, unless the caller has read it already
    (`planned`: the portal reads the store under its own lock, then replays without it)."""
    started = dt.datetime.now(dt.UTC)
    current = cfg.policy(league)
    base = load_variant(cfg, league, variant, variant_name)
    scale = dict(scale or {})
    if scale:
        base = scale_policy(base, scale)
    the_plan = planned or plan(store, league, first, last)
    if progress:
        progress(
            f"模拟 {league} {first} 至 {last}：重放 {len(the_plan.runs)} 个结算批次，"
            f"共 {sum(r.parcels for r in the_plan.runs):,} 件"
        )
    spill = Path(tempfile.mkdtemp(prefix="settle-simulate-"))
    try:
        if fit:
            found, period = fit_budget(cfg, the_plan, base, progress, memory_limit, spill)
        else:
            found, period = None, settle_period(cfg, the_plan, base, progress, memory_limit, spill)
    finally:
        shutil.rmtree(spill, ignore_errors=True)
    if variant is None:
        source = "现行政策"
    elif isinstance(variant, Policy | Path):
        source = str(variant.path if isinstance(variant, Policy) else variant)
    else:
        source = variant_name or "变体政策.toml"
    sim = Simulation(
        cfg,
        league,
        current.league_name,
        first,
        last,
        current,
        period.policy,
        source,
        scale,
        the_plan,
        period,
        found,
        summary_tables(period, current),
        started,
    )
    if out_dir is not None:
        sim.files = write_outputs(sim, out_dir)
    return sim


def _runs_table(period: Period) -> pa.Table:
    rows = []
    for seq, r in enumerate(period.replays, 1):
        b, run = r.budget, r.run
        rows.append(
            {
                "seq": seq,
                "run_id": run.run_id,
                "month": run.month,
                "label": run.label,
                "parcels": run.parcels,
                "baseline_gross_fen": run.gross_fen,
                "baseline_after_breakeven_fen": run.after_breakeven_fen,
                "baseline_fen": run.subsidy_fen,
                "budget_rule": b["budget_rule"],
                "budget_year_start": b["budget_year_start"],
                "annual_budget_fen": b["annual_budget_fen"],
                "paid_other_fen": b["paid_other_fen"],
                "paid_in_month_fen": b["paid_in_month_fen"],
                "available_fen": b["available_fen"],
                "requested_fen": b["requested_fen"],
                "variant_fen": b["paid_fen"],
            }
        )
    ints = pa.int64()
    schema = pa.schema(
        [
            ("seq", ints),
            ("run_id", pa.string()),
            ("month", pa.string()),
            ("label", pa.string()),
            ("parcels", ints),
            ("baseline_gross_fen", ints),
            ("baseline_after_breakeven_fen", ints),
            ("baseline_fen", ints),
            ("budget_rule", pa.string()),
            ("budget_year_start", pa.string()),
            ("annual_budget_fen", ints),
            ("paid_other_fen", ints),
            ("paid_in_month_fen", ints),
            ("available_fen", ints),
            ("requested_fen", ints),
            ("variant_fen", ints),
        ]
    )
    return pa.Table.from_pylist(rows, schema)


#: the summary's tables, computed in SQL over the replays (all money in integer 分)
SUMMARY_SQL = {
    "comparison": """
        SELECT month, company, county_code, area_class,
               CAST(SUM(parcels) AS BIGINT) AS parcels,
               CAST(SUM(baseline_fen) AS BIGINT) AS baseline_fen,
               CAST(SUM(variant_fen) AS BIGINT) AS variant_fen,
               CAST(SUM(variant_fen) - SUM(baseline_fen) AS BIGINT) AS delta_fen
        FROM groups GROUP BY ALL ORDER BY month, company, county_code, area_class""",
    "budget": """
        SELECT r.*, COALESCE(u.gross_fen, 0) AS gross_fen,
               r.requested_fen - r.variant_fen AS budget_reduction_fen,
               r.baseline_after_breakeven_fen - r.baseline_fen AS baseline_budget_reduction_fen,
               r.variant_fen - r.baseline_fen AS delta_fen,
               r.paid_other_fen + r.paid_in_month_fen + r.variant_fen AS year_paid_fen,
               r.annual_budget_fen - (r.paid_other_fen + r.paid_in_month_fen + r.variant_fen)
                   AS year_left_fen
        FROM runs r
        LEFT JOIN (SELECT run_id, CAST(SUM(gross_fen) AS BIGINT) AS gross_fen
                   FROM units GROUP BY run_id) u USING (run_id)
        ORDER BY r.seq""",
    "totals": """
        WITH v AS (
            SELECT CAST(COALESCE(SUM(gross_fen), 0) AS BIGINT) AS gross_fen,
                   CAST(COALESCE(SUM(gross_fen - after_breakeven_fen), 0) AS BIGINT)
                       AS breakeven_reduction_fen,
                   COUNT(*) FILTER (WHERE after_breakeven_fen < gross_fen) AS binding_units
            FROM units
        ),
        t AS (
        SELECT CAST(SUM(parcels) AS BIGINT) AS parcels,
               CAST(SUM(baseline_gross_fen) AS BIGINT) AS baseline_gross_fen,
               CAST(SUM(baseline_gross_fen - baseline_after_breakeven_fen) AS BIGINT)
                   AS baseline_breakeven_reduction_fen,
               CAST(SUM(baseline_after_breakeven_fen - baseline_fen) AS BIGINT)
                   AS baseline_budget_reduction_fen,
               CAST(SUM(baseline_fen) AS BIGINT) AS baseline_fen,
               CAST(SUM(requested_fen - variant_fen) AS BIGINT) AS budget_reduction_fen,
               CAST(SUM(variant_fen) AS BIGINT) AS variant_fen,
               COUNT(*) FILTER (WHERE available_fen IS NOT NULL AND requested_fen > available_fen)
                   AS prorated_runs,
               (SELECT CAST(COALESCE(SUM(parcels), 0) AS BIGINT) FROM refused) AS refused_parcels,
               (SELECT CAST(COALESCE(SUM(baseline_fen), 0) AS BIGINT) FROM refused)
                   AS refused_baseline_fen
        FROM runs
        )
        SELECT t.*, v.*,
               v.gross_fen - t.baseline_gross_fen AS gross_delta_fen,
               v.breakeven_reduction_fen - t.baseline_breakeven_reduction_fen
                   AS breakeven_reduction_delta_fen,
               t.budget_reduction_fen - t.baseline_budget_reduction_fen
                   AS budget_reduction_delta_fen,
               t.variant_fen - t.baseline_fen AS delta_fen
        FROM t, v""",
    "sides": """
        WITH parties AS (
            SELECT '企业' AS side, company AS party,
                   SUM(variant_fen) - SUM(baseline_fen) AS delta_fen
            FROM groups GROUP BY company
            UNION ALL
            SELECT '旗县', county_code, SUM(variant_fen) - SUM(baseline_fen)
            FROM groups GROUP BY county_code
        )
        SELECT side,
               COUNT(*) FILTER (WHERE delta_fen > 0) AS up,
               CAST(COALESCE(SUM(delta_fen) FILTER (WHERE delta_fen > 0), 0) AS BIGINT) AS up_fen,
               COUNT(*) FILTER (WHERE delta_fen < 0) AS down,
               CAST(COALESCE(SUM(delta_fen) FILTER (WHERE delta_fen < 0), 0) AS BIGINT)
                   AS down_fen,
               COUNT(*) FILTER (WHERE delta_fen = 0) AS same
        FROM parties GROUP BY side""",
    "binding": """
        SELECT u.month, r.label, u.unit_key, u.company, u.county_code, u.parcels, u.gross_fen,
               u.cap_fen, u.prior_paid_fen, u.after_breakeven_fen,
               u.gross_fen - u.after_breakeven_fen AS breakeven_reduction_fen,
               u.baseline_after_breakeven_fen < u.baseline_gross_fen AS baseline_binding
        FROM units u JOIN runs r USING (run_id)
        WHERE u.after_breakeven_fen < u.gross_fen
        ORDER BY r.seq, breakeven_reduction_fen DESC, u.unit_key""",
    "refused": """
        SELECT reason_code, reason, CAST(SUM(parcels) AS BIGINT) AS parcels,
               CAST(SUM(baseline_fen) AS BIGINT) AS baseline_fen
        FROM refused GROUP BY ALL ORDER BY reason_code""",
}


#: the comparison summed by one of its keys, the largest rise first (winners and losers)
SUMMARY_SQL |= {
    f"by_{name}": f"""
        SELECT {key}, CAST(SUM(parcels) AS BIGINT) AS parcels,
               CAST(SUM(baseline_fen) AS BIGINT) AS baseline_fen,
               CAST(SUM(variant_fen) AS BIGINT) AS variant_fen,
               CAST(SUM(variant_fen) - SUM(baseline_fen) AS BIGINT) AS delta_fen,
               CAST(SUM(gained) AS BIGINT) AS gained, CAST(SUM(lost) AS BIGINT) AS lost
        FROM groups GROUP BY {key} ORDER BY {order}"""
    for name, key, order in (
        ("company", "company", "delta_fen DESC, company"),
        ("county", "county_code", "delta_fen DESC, county_code"),
        ("class", "area_class", "area_class"),
    )
}


def summary_tables(period: Period, current: Policy) -> dict[str, pl.DataFrame]:
    """The comparison and the summary's tables (SUMMARY_SQL), and the rates side by side."""
    con = duckdb.connect(":memory:")
    try:
        con.register("runs", _runs_table(period))
        for name in ("groups", "units", "refused"):
            con.register(name, pa.concat_tables([getattr(r, name) for r in period.replays]))
        tables = {name: con.sql(sql).pl() for name, sql in SUMMARY_SQL.items()}
    finally:
        con.close()
    tables["rates"] = rate_table(current, period.policy)
    return tables


def rate_table(current: Policy, variant: Policy) -> pl.DataFrame:
    """Base rates of the variant's bands beside the current policy's for the same version id
    (or the version in force on the variant version's first day), class and band."""
    rows = []
    for v in variant.versions:
        match = next((c for c in current.versions if c.id == v.id), None) or next(
            (c for c in current.versions if c.in_force(v.effective_from)), None
        )
        for b in sorted(v.rates, key=lambda x: (x.area_class, x.distance_from_km)):
            old = None
            if match is not None:
                old = next(
                    (
                        c.rate_yuan
                        for c in match.rates
                        if (c.area_class, c.distance_from_km, c.distance_to_km)
                        == (b.area_class, b.distance_from_km, b.distance_to_km)
                    ),
                    None,
                )
            rows.append(
                {
                    "version_id": v.id,
                    "effective_from": str(v.effective_from),
                    "effective_to": str(v.effective_to) if v.effective_to else "",
                    "area_class": b.area_class,
                    "distance_from_km": _plain(b.distance_from_km),
                    "distance_to_km": _plain(b.distance_to_km) if b.distance_to_km else "",
                    "current_rate_yuan": _plain(old) if old is not None else "",
                    "variant_rate_yuan": _plain(b.rate_yuan),
                    "cap_yuan": _plain(v.cap_yuan),
                }
            )
    return pl.DataFrame(rows, schema={k: pl.String for k in rows[0]} if rows else None)


def _plain(d: Decimal) -> str:
    return format(d.normalize(), "f")


# --------------------------------------------------------------------------- outputs


def default_out(league: str, first: Month, last: Month) -> Path:
    """Where `settle simulate` writes when --out is not given."""
    return Path("out") / "simulations" / f"{league}-{first}-{last}"


def write_outputs(sim: Simulation, out_dir: Path) -> list[Path]:
    """comparison.parquet, summary.xlsx and summary.html under out_dir, each written aside and
    renamed into place."""
    from .summary import write_html, write_xlsx

    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for name, write in (
        ("comparison.parquet", lambda p: sim.tables["comparison"].write_parquet(p)),
        ("summary.xlsx", lambda p: write_xlsx(sim, p)),
        ("summary.html", lambda p: write_html(sim, p)),
    ):
        final = out_dir / name
        aside = out_dir / f".{name}.tmp"
        try:
            write(aside)
            os.replace(aside, final)
        finally:
            aside.unlink(missing_ok=True)
        files.append(final)
    return files
