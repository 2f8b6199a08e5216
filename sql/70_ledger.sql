-- 70_ledger.sql — the parcel ledger, as published (SPEC §6).
--
-- purpose: one row per accepted parcel with its whole computation: policy version, area class,
--          distance band, village volume and multiplier, rate_fen, unit and subsidy_fen
--          (60_allocate.sql: the group's share, plus one 分 for a class that gets the leftover
--          whole, or for the part of a class up to its last_waybill).
--          ledger.revenue_yuan is the revenue used for break-even (the row's own, else the
--          company's default, else the policy's; revenue_source says which).
--          A view: the ledger is computed once, as it is written to Parquet. Rows are in no
--          particular order.
-- inputs:  rated, alloc_groups, alloc_thresholds, company_dim, file_dim, run_params
-- outputs: ledger_out (view)
-- grain:   one row per accepted parcel

CREATE OR REPLACE TEMP VIEW ledger_out AS
SELECT
    a.waybill_no,
    a.company,
    a.village                                              AS village_code,
    a.county_code,
    a.delivered_at,
    a.distance_km,
    a.cost_yuan,
    COALESCE(a.revenue_yuan, c.default_revenue_yuan, r.default_revenue_yuan) AS revenue_yuan,
    CASE WHEN a.revenue_yuan IS NOT NULL THEN 'log'::revenue_source_t
         WHEN c.default_revenue_yuan IS NOT NULL THEN 'company'::revenue_source_t
         ELSE 'policy'::revenue_source_t END               AS revenue_source,
    a.proof,
    a.area_class,
    a.version_id                                           AS policy_version,
    a.band_from_km,
    a.band_to_km,
    a.base_rate_yuan,
    a.village_volume,
    a.volume_multiplier,
    a.rate_fen,
    g.unit_key,
    CAST(g.base_fen + CASE g.bonus
                          WHEN 'all'  THEN 1
                          WHEN 'some' THEN CASE WHEN a.waybill_no <= t.last_waybill THEN 1 ELSE 0 END
                          ELSE 0 END AS INTEGER)           AS subsidy_fen,
    f.source_file,
    a.source_row,
    r.run_id
FROM rated a
JOIN alloc_groups g
  ON g.company = a.company AND g.county_code = a.county_code AND g.rate_fen = a.rate_fen
LEFT JOIN alloc_thresholds t ON t.unit_key = g.unit_key
JOIN company_dim c ON c.company = a.company
JOIN file_dim f ON f.file_no = a.file_no
CROSS JOIN (SELECT CAST(run_id AS run_t) AS run_id, default_revenue_yuan FROM run_params) r;
