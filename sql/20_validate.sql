-- 20_validate.sql — the checks a row can fail on its own (SPEC §4.1, MALFORMED … NO_PROOF).
--
-- purpose: one pass over the input: type it (parsed), look up company, village and policy
--          version, and give each row the first failing reason in SPEC order, with a detail
--          naming the column and value. Each row keeps only what the settlement needs, in
--          compact types (a village is an ENUM of the registry); a row that fails also keeps its
--          values as they arrived and the detail, packed in one text column `rejected`
--          (fields separated by chr(31), '' for none; 25_rejects.sql unpacks it), so that the
--          millions of rows that pass cost nothing for it.
--          DUPLICATE and ALREADY_SETTLED need every row at once: 22_repeats.sql.
-- inputs:  parsed (over raw_logs, with the village looked up), company_dim, company_hint,
--          policy_days, run_params
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
        h.code                                 AS company_hint,
        d.version_id
    FROM parsed p
    LEFT JOIN company_dim c ON c.code = p.company
    -- only an unregistered company is looked up (the key is NULL for the others)
    LEFT JOIN company_hint h ON h.hint_key = CASE WHEN c.code IS NULL THEN upper(p.company) END
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
    CASE WHEN k.reason_code IS NOT NULL THEN
        packed(k.company) || chr(31) || packed(k.delivered_at_text) || chr(31)
        || packed(k.village_code) || chr(31) || packed(k.distance_text) || chr(31)
        || packed(k.cost_text) || chr(31) || packed(k.revenue_text) || chr(31)
        || packed(CASE k.reason_code
            WHEN 'MALFORMED'       THEN k.malformed_detail
            WHEN 'UNKNOWN_COMPANY' THEN '企业编码“' || left(k.company, 40) || '”未在 companies.toml 中登记'
                                        || COALESCE('（是否为 ' || k.company_hint || '？）', '')
            WHEN 'UNKNOWN_VILLAGE' THEN '嘎查村代码 ' || k.village_code || ' 不在2023年统计用区划代码中'
            WHEN 'WRONG_LEAGUE'    THEN '嘎查村 ' || k.village_code || ' 属于盟市 ' || k.village_league_code
                                        || '，本次结算盟市为 ' || r.league_code
            WHEN 'NOT_RURAL'       THEN '城乡分类代码 ' || k.urban_rural_code || ' 不在补贴范围（'
                                        || r.eligible_codes || '）内'
            WHEN 'OUTSIDE_PERIOD'  THEN '签收时间 ' || strftime(k.delivered_at, '%Y-%m-%d %H:%M:%S')
                                        || ' 不在结算月份 ' || strftime(r.month_start, '%Y-%m') || ' 内'
            WHEN 'NO_POLICY'       THEN strftime(k.delivered_at, '%Y-%m-%d') || ' 没有有效的政策版本'
            WHEN 'BAD_DISTANCE'    THEN '派送距离 ' || k.distance_text || ' 公里，应在 0 至 '
                                        || r.max_distance_text || ' 公里之间'
            WHEN 'BAD_COST'        THEN CASE WHEN k.revenue_yuan < 0
                                             THEN '派费收入 ' || k.revenue_text || ' 元为负数'
                                             ELSE '派送成本 ' || k.cost_text || ' 元，应在 0 至 '
                                                  || r.max_cost_text || ' 元之间'
                                        END
            WHEN 'NO_PROOF'        THEN '政策要求妥投凭证，签收方式(proof)为空'
            END)
    END                                                        AS rejected
FROM checked k, run_params r;
