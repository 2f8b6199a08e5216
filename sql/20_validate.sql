-- 20_validate.sql — give every row the first failing reason, in SPEC §4.1 order.
--
-- purpose: validation. A row that passes every check is accepted (reason_code NULL).
-- inputs:  parsed, companies, villages, eligible_urban_rural, policy_versions, run_params,
--          settled_elsewhere (waybills already settled by another 盟市-month's current run)
-- outputs: checked (parsed is dropped)
-- grain:   one row per input row
--
-- DUPLICATE looks only at rows that passed every earlier check; among those, the earliest row
-- of a waybill (smaller delivered_at, then company, village_code, distance_km, cost_yuan) is
-- kept. revenue, proof, source_file and source_row only break ties between otherwise identical
-- rows, so the accepted content never depends on file order or split.

CREATE OR REPLACE TEMP TABLE checked AS
WITH joined AS (
    SELECT
        p.*,
        c.code IS NOT NULL                     AS company_known,
        c.default_revenue_yuan                 AS company_revenue_yuan,
        v.county_code,
        v.league_code                          AS village_league_code,
        v.urban_rural_code,
        e.urban_rural_code IS NOT NULL         AS rural_eligible,
        pv.version_id
    FROM parsed p
    LEFT JOIN companies c            ON c.code = p.company
    LEFT JOIN villages v             ON v.code = p.village_code
    LEFT JOIN eligible_urban_rural e ON e.urban_rural_code = v.urban_rural_code
    LEFT JOIN policy_versions pv
           ON CAST(p.delivered_at AS DATE) BETWEEN pv.effective_from AND pv.effective_to
),
early AS (
    SELECT
        j.*,
        CASE
            WHEN j.malformed_detail IS NOT NULL                        THEN 'MALFORMED'
            WHEN NOT j.company_known                                   THEN 'UNKNOWN_COMPANY'
            WHEN j.county_code IS NULL                                 THEN 'UNKNOWN_VILLAGE'
            WHEN j.village_league_code <> r.league_code                THEN 'WRONG_LEAGUE'
            WHEN NOT j.rural_eligible                                  THEN 'NOT_RURAL'
            WHEN j.delivered_at < r.month_start
              OR j.delivered_at >= r.month_end                         THEN 'OUTSIDE_PERIOD'
            WHEN j.version_id IS NULL                                  THEN 'NO_POLICY'
            WHEN j.distance_km < 0 OR j.distance_km > r.max_distance_km THEN 'BAD_DISTANCE'
            WHEN j.cost_yuan < 0 OR j.cost_yuan > r.max_cost_yuan
              OR j.revenue_yuan < 0                                    THEN 'BAD_COST'
            WHEN r.require_proof AND j.proof IS NULL                   THEN 'NO_PROOF'
        END AS early_reason
    FROM joined j, run_params r
),
-- Only waybills that occur more than once among passing rows need ranking: a hash aggregate
-- finds them, and just those rows are sorted (not the whole month).
repeated AS (
    SELECT waybill_no FROM early WHERE early_reason IS NULL
    GROUP BY waybill_no HAVING COUNT(*) > 1
),
ranked AS (
    SELECT
        *,
        ROW_NUMBER() OVER w                    AS waybill_rank,
        FIRST_VALUE(source_file) OVER w        AS first_source_file,
        FIRST_VALUE(source_row)  OVER w        AS first_source_row
    FROM early
    WHERE early_reason IS NULL AND waybill_no IN (SELECT waybill_no FROM repeated)
    WINDOW w AS (
        PARTITION BY waybill_no
        ORDER BY delivered_at, company, village_code, distance_km, cost_yuan,
                 revenue_yuan NULLS FIRST, proof NULLS FIRST, source_file, source_row
    )
),
all_rows AS (
    SELECT *, 1 AS waybill_rank, NULL::VARCHAR AS first_source_file, NULL::BIGINT AS first_source_row
    FROM early
    WHERE NOT (early_reason IS NULL AND waybill_no IN (SELECT waybill_no FROM repeated))
    UNION ALL BY NAME
    SELECT * FROM ranked
)
SELECT
    k.*,
    CASE
        WHEN k.early_reason IS NOT NULL THEN k.early_reason
        WHEN k.waybill_rank > 1         THEN 'DUPLICATE'
        WHEN s.waybill_no IS NOT NULL   THEN 'ALREADY_SETTLED'
    END AS reason_code,
    s.league_code                        AS settled_league_code,
    s.month                              AS settled_month,
    s.run_id                             AS settled_run_id
FROM all_rows k
LEFT JOIN settled_elsewhere s ON s.waybill_no = k.waybill_no AND k.early_reason IS NULL;

DROP VIEW parsed;  -- a view: parsing and validation run as one pass
