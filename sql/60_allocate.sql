-- 60_allocate.sql — share each unit's subsidy among its parcels (SPEC §4.5).
--
-- purpose: a unit's subsidy S is shared in proportion to rate_fen: each parcel gets
--          floor(rate_fen × S / G) (G = the unit's gross), and the leftover 分 go one each to
--          the parcels with the largest remainders (rate_fen × S mod G), ties to the smaller
--          waybill_no. So 0 ≤ subsidy_fen ≤ rate_fen ≤ 30 and the parcels sum to the unit.
--          A parcel's share and remainder depend only on its unit and rate_fen, so they are
--          worked out per unit × rate (alloc_groups). Going down a unit's remainders, the
--          leftover covers whole remainder classes ('all'), then part of one ('some': its
--          bonus_count smallest waybills, up to alloc_thresholds.last_waybill), then none.
--          Only the parcels of that one partial class per unit are ever sorted.
-- inputs:  unit_rates, unit_map, units, rated
-- outputs: alloc_groups, alloc_thresholds
-- grain:   alloc_groups: one row per company × 旗县 × rate_fen; alloc_thresholds: one row per
--          unit whose leftover splits a remainder class

CREATE OR REPLACE TEMP TABLE alloc_groups AS
WITH groups AS (
    SELECT
        g.company,
        g.county_code,
        g.rate_fen,
        g.parcels,
        m.unit_key,
        u.subsidy_fen                                          AS unit_subsidy_fen,
        u.gross_fen                                            AS unit_gross_fen
    FROM unit_rates g
    JOIN unit_map m USING (company, county_code)
    JOIN units u ON u.unit_key = CAST(m.unit_key AS VARCHAR)
),
shares AS (
    SELECT
        *,
        CASE WHEN unit_gross_fen = 0 THEN 0
             ELSE CAST(rate_fen AS HUGEINT) * unit_subsidy_fen // unit_gross_fen END AS base_fen,
        CASE WHEN unit_gross_fen = 0 THEN 0
             ELSE CAST(rate_fen AS HUGEINT) * unit_subsidy_fen % unit_gross_fen END  AS remainder
    FROM groups
),
leftover AS (
    SELECT unit_key, MIN(unit_subsidy_fen) - SUM(base_fen * parcels) AS leftover_fen
    FROM shares GROUP BY unit_key
),
classes AS (
    SELECT unit_key, remainder, SUM(parcels) AS parcels
    FROM shares GROUP BY unit_key, remainder
),
placed AS (
    SELECT
        c.unit_key,
        c.remainder,
        l.leftover_fen,
        c.parcels,
        COALESCE(SUM(c.parcels) OVER (
            PARTITION BY c.unit_key ORDER BY c.remainder DESC
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
    FROM classes c
    JOIN leftover l USING (unit_key)
)
SELECT
    s.company,
    s.county_code,
    s.rate_fen,
    s.unit_key,
    CAST(s.base_fen AS INTEGER)                                AS base_fen,
    CASE WHEN p.before + p.parcels <= p.leftover_fen THEN 'all'
         WHEN p.before >= p.leftover_fen             THEN 'none'
         ELSE 'some' END                                       AS bonus,
    CAST(p.leftover_fen - p.before AS BIGINT)                  AS bonus_count
FROM shares s
JOIN placed p USING (unit_key, remainder);

-- The bonus_count-th smallest waybill_no of each unit's partial class.
CREATE OR REPLACE TEMP TABLE alloc_thresholds AS
SELECT unit_key, MAX(waybill_no) AS last_waybill
FROM (
    SELECT
        g.unit_key,
        p.waybill_no,
        g.bonus_count,
        ROW_NUMBER() OVER (PARTITION BY g.unit_key ORDER BY p.waybill_no) AS rn
    FROM rated p
    JOIN alloc_groups g
      ON g.company = p.company AND g.county_code = p.county_code AND g.rate_fen = p.rate_fen
    WHERE g.bonus = 'some'
)
WHERE rn <= bonus_count
GROUP BY unit_key;
