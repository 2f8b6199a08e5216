-- 70_ledger.sql — the parcel ledger, as published (SPEC §6).
--
-- purpose: one row per accepted parcel with its whole computation: policy version, area class,
--          distance band, village volume and multiplier, rate_fen, unit and subsidy_fen.
--          ledger.revenue_yuan is the revenue used for break-even (the row's own, else the
--          company's default, else the policy's; revenue_source says which).
-- inputs:  allocated (over parcels, units), run_params
-- outputs: ledger_out (allocated and parcels are dropped)
-- grain:   one row per accepted parcel

CREATE OR REPLACE TEMP TABLE ledger_out AS
SELECT
    a.waybill_no,
    a.company,
    a.village_code,
    a.county_code,
    a.delivered_at,
    a.distance_km,
    a.cost_yuan,
    a.revenue_used_yuan                                    AS revenue_yuan,
    CASE WHEN a.revenue_yuan IS NOT NULL THEN 'log'
         WHEN a.company_revenue_yuan IS NOT NULL THEN 'company'
         ELSE 'policy' END                                 AS revenue_source,
    a.proof,
    a.area_class,
    a.version_id                                           AS policy_version,
    a.band_from_km,
    a.band_to_km,
    a.base_rate_yuan,
    a.village_volume,
    a.volume_multiplier,
    a.rate_fen,
    a.unit_key,
    a.subsidy_fen,
    a.source_file,
    a.source_row,
    r.run_id
FROM allocated a, run_params r
ORDER BY a.unit_key, a.waybill_no;

DROP VIEW allocated;
DROP TABLE parcels;
