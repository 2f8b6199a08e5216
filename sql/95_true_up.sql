-- 95_true_up.sql — the annual break-even true-up (年度盈亏平衡清算, SPEC §10).
--
-- purpose: monthly caps let a unit be paid up to each month's loss, floor(100 × max(0, loss_m));
--          in a year with profitable months Σ max(0, loss_m) can exceed max(0, Σ loss_m). With
--          `[breakeven] annual_true_up = true`, each unit's year is capped at
--          annual_cap_fen = floor(100 × max(0, Σ cost − Σ revenue)) over the year's parcels
--          (every current run of the budget year's months, supplementary runs included), and
--          what it was paid beyond it (net of earlier clawbacks) is recovered:
--          excess_fen = max(0, paid_fen − annual_cap_fen).
--          The unit keeps paid_fen − excess_fen, shared among its parcels like any reduction
--          (SPEC §4.5, sql/60_allocate.sql): in proportion to what each parcel was paid (net of
--          earlier clawbacks), floored, the leftover 分 one each to the largest remainders (ties:
--          smaller waybill_no). Each parcel's clawback is what it was paid less what it keeps,
--          so no parcel gives back more than it received. A parcel's share depends only on its
--          unit and net paid (0–30 分), so it is worked out per unit × net paid (true_up_groups);
--          only one partial remainder class per unit is ever sorted by waybill.
-- inputs:  ledger, runs, clawbacks, true_up_params (league_code, start_month, end_month)
-- outputs: true_up_units, true_up_parcels
-- grain:   true_up_units: one row per unit_key of the year; true_up_parcels: one row per
--          parcel with a clawback

CREATE OR REPLACE TEMP TABLE year_parcels AS
SELECT CAST(l.waybill_no AS VARCHAR) AS waybill_no, CAST(l.company AS VARCHAR) AS company,
       CAST(l.unit_key AS VARCHAR) AS unit_key, r.month, r.run_id,
       l.cost_yuan, l.revenue_yuan,
       CAST(l.subsidy_fen AS BIGINT) - COALESCE(c.clawed_fen, 0) AS net_fen
FROM ledger l
JOIN runs r ON r.run_id = l.run_id AND r.league_code = l.league AND r.month = l.month
JOIN true_up_params p ON r.league_code = p.league_code
                     AND r.month BETWEEN p.start_month AND p.end_month
LEFT JOIN (
    SELECT waybill_no, CAST(-SUM(amount_fen) AS BIGINT) AS clawed_fen
    FROM clawbacks GROUP BY waybill_no
) c ON c.waybill_no = CAST(l.waybill_no AS VARCHAR)
WHERE r.status = 'current';

CREATE OR REPLACE TEMP TABLE true_up_units AS
WITH sums AS (
    SELECT unit_key,
           MIN(company)                             AS company,
           COUNT(*)                                 AS parcels,
           SUM(cost_yuan)                           AS cost_yuan,
           SUM(revenue_yuan)                        AS revenue_yuan,
           CAST(SUM(net_fen) AS BIGINT)             AS paid_fen
    FROM year_parcels
    GROUP BY unit_key
)
SELECT *,
       CAST(FLOOR(100 * GREATEST(0, cost_yuan - revenue_yuan)) AS BIGINT) AS annual_cap_fen,
       GREATEST(0, paid_fen
                   - CAST(FLOOR(100 * GREATEST(0, cost_yuan - revenue_yuan)) AS BIGINT))
                                                    AS excess_fen
FROM sums;

CREATE OR REPLACE TEMP TABLE true_up_groups AS
WITH groups AS (
    SELECT p.unit_key, p.net_fen, COUNT(*) AS parcels,
           u.paid_fen AS unit_paid_fen, u.paid_fen - u.excess_fen AS unit_keep_fen
    FROM year_parcels p
    JOIN true_up_units u USING (unit_key)
    WHERE u.excess_fen > 0
    GROUP BY ALL
),
shares AS (
    SELECT *,
           CAST(net_fen AS HUGEINT) * unit_keep_fen // unit_paid_fen AS base_fen,
           CAST(net_fen AS HUGEINT) * unit_keep_fen % unit_paid_fen  AS remainder
    FROM groups
),
leftover AS (
    SELECT unit_key, MIN(unit_keep_fen) - SUM(base_fen * parcels) AS leftover_fen
    FROM shares GROUP BY unit_key
),
classes AS (
    SELECT unit_key, remainder, SUM(parcels) AS parcels FROM shares GROUP BY ALL
),
placed AS (
    SELECT c.unit_key, c.remainder, l.leftover_fen, c.parcels,
           COALESCE(SUM(c.parcels) OVER (
               PARTITION BY c.unit_key ORDER BY c.remainder DESC
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
    FROM classes c JOIN leftover l USING (unit_key)
)
SELECT s.unit_key, s.net_fen, CAST(s.base_fen AS BIGINT) AS base_fen,
       CASE WHEN p.before + p.parcels <= p.leftover_fen THEN 'all'
            WHEN p.before >= p.leftover_fen             THEN 'none'
            ELSE 'some' END                                  AS bonus,
       CAST(p.leftover_fen - p.before AS BIGINT)             AS bonus_count
FROM shares s JOIN placed p USING (unit_key, remainder);

CREATE OR REPLACE TEMP TABLE true_up_parcels AS
WITH thresholds AS (
    -- the bonus_count-th smallest waybill_no of each unit's partial remainder class
    SELECT unit_key, MAX(waybill_no) AS last_waybill
    FROM (
        SELECT g.unit_key, p.waybill_no, g.bonus_count,
               ROW_NUMBER() OVER (PARTITION BY g.unit_key ORDER BY p.waybill_no) AS rn
        FROM year_parcels p
        JOIN true_up_groups g USING (unit_key, net_fen)
        WHERE g.bonus = 'some'
    )
    WHERE rn <= bonus_count
    GROUP BY unit_key
),
kept AS (
    SELECT p.*,
           g.base_fen + CASE WHEN g.bonus = 'all' THEN 1
                             WHEN g.bonus = 'some' AND p.waybill_no <= t.last_waybill THEN 1
                             ELSE 0 END                      AS keep_fen
    FROM year_parcels p
    JOIN true_up_groups g USING (unit_key, net_fen)
    LEFT JOIN thresholds t USING (unit_key)
)
SELECT waybill_no, company, unit_key, month AS source_month, run_id AS source_run_id,
       net_fen, keep_fen, keep_fen - net_fen AS amount_fen
FROM kept
WHERE keep_fen < net_fen;
