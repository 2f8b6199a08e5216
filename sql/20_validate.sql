-- 20_validate.sql — the checks a row can fail on its own (SPEC §4.1, MALFORMED … NO_PROOF).
--
-- purpose: one pass over the input: type it (parsed), look up company, village and policy
--          version, and give each row the first failing reason in SPEC order, with a detail
--          naming the column and value. Each row keeps only what the settlement needs, in
--          compact types (a village is an ENUM of the registry); a row that fails also keeps its
--          values as they arrived (and MALFORMED's detail), packed in one text column `rejected`
--          (fields separated by chr(31), '' for none; 25_rejects.sql unpacks it), so that the
--          millions of rows that pass cost nothing for it.
--          DUPLICATE and ALREADY_SETTLED need every row at once: 22_repeats.sql.
-- inputs:  parsed (over raw_logs, with the village looked up), company_dim, policy_days,
--          run_params
-- outputs: validated (a view over one batch of raw_logs: settlement/rules.py appends each batch
--          of the input to the table `rows`, so the input is never held whole)
-- grain:   one row per input row

-- one field of `rejected`: '' for none, and the separator itself never inside
CREATE OR REPLACE TEMP MACRO packed(x) AS COALESCE(replace(x, chr(31), ' '), '');

CREATE OR REPLACE TEMP VIEW validated AS
WITH joined AS (
    SELECT
        p.*,
        c.company                              AS company_code,
        d.version_id
    FROM parsed p
    LEFT JOIN company_dim c ON c.code = p.company
    LEFT JOIN policy_days d ON d.day = CAST(p.delivered_at AS DATE)
),
checked AS (
    SELECT
        j.*,
        CASE
            WHEN j.malformed_detail IS NOT NULL                        THEN 'MALFORMED'
            WHEN j.company_code IS NULL                                THEN 'UNKNOWN_COMPANY'
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
        END AS reason_code
    FROM joined j, run_params r
)
SELECT
    CAST(k.file_no AS INTEGER)                                 AS file_no,
    CAST(k.source_row AS INTEGER)                              AS source_row,
    k.waybill_no,
    k.company_code                                             AS company,
    k.village,
    k.delivered_at,
    k.distance_km,
    k.cost_yuan,
    k.revenue_yuan,
    k.proof,
    k.version_id,
    CAST(k.reason_code AS reason_t)                            AS reason_code,
    -- what 25_rejects.sql cannot find again: the texts as they arrived (a company or village
    -- only when not registered: a registered one is its code) and MALFORMED's detail; the
    -- other details are worded there, from the typed columns kept anyway
    CASE WHEN k.reason_code IS NOT NULL THEN
        packed(CASE WHEN k.company_code IS NULL THEN k.company END) || chr(31)
        || packed(k.delivered_at_text) || chr(31)
        || packed(CASE WHEN k.village IS NULL THEN k.village_code END) || chr(31)
        || packed(k.distance_text) || chr(31) || packed(k.cost_text) || chr(31)
        || packed(k.revenue_text) || chr(31) || packed(k.malformed_detail)
    END                                                        AS rejected
FROM checked k;
