-- 60_allocate.sql — share each unit's subsidy among its parcels (SPEC §4.5).
--
-- purpose: a unit paid in full gives every parcel its rate_fen. A reduced unit shares its
--          subsidy_fen in proportion to rate_fen: floor(rate_fen × subsidy / gross), and the
--          leftover 分 go one each to the largest remainders (ties: smaller waybill_no).
--          So 0 ≤ subsidy_fen ≤ rate_fen ≤ 30 and the parcels sum to the unit exactly.
-- inputs:  parcels, units
-- outputs: allocated (a view: 70_ledger.sql reads it in the same pass)
-- grain:   one row per accepted parcel

CREATE OR REPLACE TEMP VIEW allocated AS
WITH joined AS (
    SELECT
        p.*,
        u.subsidy_fen                                     AS unit_subsidy_fen,
        u.gross_fen                                       AS unit_gross_fen
    FROM parcels p
    JOIN units u USING (unit_key)
),
full_units AS (
    SELECT *, rate_fen AS subsidy_fen
    FROM joined
    WHERE unit_subsidy_fen = unit_gross_fen
),
reduced AS (
    SELECT
        *,
        CAST(rate_fen AS HUGEINT) * unit_subsidy_fen // unit_gross_fen AS base_fen,
        CAST(rate_fen AS HUGEINT) * unit_subsidy_fen %  unit_gross_fen AS remainder
    FROM joined
    WHERE unit_subsidy_fen < unit_gross_fen
),
ranked AS (
    SELECT
        *,
        ROW_NUMBER() OVER (PARTITION BY unit_key ORDER BY remainder DESC, waybill_no) AS remainder_rank,
        unit_subsidy_fen - SUM(base_fen) OVER (PARTITION BY unit_key)                AS leftover_fen
    FROM reduced
)
SELECT * FROM full_units
UNION ALL BY NAME
SELECT * EXCLUDE (base_fen, remainder, remainder_rank, leftover_fen),
       CAST(base_fen + CASE WHEN remainder_rank <= leftover_fen THEN 1 ELSE 0 END AS INTEGER)
           AS subsidy_fen
FROM ranked;
