-- 30_rate.sql — the rate of every accepted parcel (SPEC §4.2), and the unit it belongs to.
--
-- purpose: for each accepted parcel: policy version of the delivery day, area class of its
--          village (a village listed in a class overrides its county; otherwise 'default'),
--          base rate of the class's distance band [from, to), volume-tier multiplier of the
--          village's monthly accepted volume (all companies; no matching tier = ×1), then
--          rate_fen = floor(100 × min(base × multiplier, cap_yuan, max_cost_share × cost)).
--          Also the revenue used for break-even and the break-even unit_key (SPEC §4.3).
-- inputs:  checked, area_villages, area_counties, rate_bands, volume_tiers, policy_versions,
--          run_params, prior_villages (empty unless a supplementary run)
-- outputs: village_volume (one row per village), parcels (one row per accepted parcel);
--          checked is dropped (rejects and file_counts were taken from it in 25_rejects.sql)
-- grain:   parcels: one row per accepted parcel

-- A supplementary run also counts the parcels the month's earlier runs settled (prior_villages).
CREATE OR REPLACE TEMP TABLE village_volume AS
SELECT village_code, CAST(SUM(parcels) AS BIGINT) AS village_volume
FROM (
    SELECT village_code, COUNT(*) AS parcels FROM checked WHERE reason_code IS NULL GROUP BY village_code
    UNION ALL
    SELECT village_code, parcels FROM prior_villages
)
GROUP BY village_code;

-- The smallest tier whose up_to holds the village's volume, per version in force.
CREATE OR REPLACE TEMP TABLE village_tier AS
SELECT
    vv.village_code,
    t.version_id,
    MIN(t.up_to)                       AS volume_tier_up_to,
    arg_min(t.multiplier, t.up_to)     AS volume_multiplier
FROM village_volume vv
JOIN volume_tiers t ON t.up_to >= vv.village_volume
GROUP BY vv.village_code, t.version_id;

CREATE OR REPLACE TEMP TABLE parcels AS
WITH classified AS (
    SELECT
        c.*,
        COALESCE(av.area_class, ac.area_class, 'default')              AS area_class,
        COALESCE(c.revenue_yuan, c.company_revenue_yuan, r.default_revenue_yuan)
                                                                       AS revenue_used_yuan,
        CASE r.scope
            WHEN 'company_county' THEN c.company || '|' || c.county_code
            WHEN 'county'         THEN c.county_code
            WHEN 'company_league' THEN c.company
            ELSE r.league_code
        END                                                            AS unit_key
    FROM checked c
    CROSS JOIN run_params r
    LEFT JOIN area_villages av ON av.version_id = c.version_id AND av.village_code = c.village_code
    LEFT JOIN area_counties ac ON ac.version_id = c.version_id AND ac.county_code = c.county_code
    WHERE c.reason_code IS NULL
)
SELECT
    k.*,
    pv.cap_yuan,
    pv.max_cost_share,
    b.distance_from_km                                                 AS band_from_km,
    b.distance_to_km                                                   AS band_to_km,
    b.rate_yuan                                                        AS base_rate_yuan,
    vv.village_volume,
    vt.volume_tier_up_to,
    COALESCE(vt.volume_multiplier, 1)                                  AS volume_multiplier,
    CAST(FLOOR(100 * LEAST(
        CAST(b.rate_yuan AS DECIMAL(38, 6)) * COALESCE(vt.volume_multiplier, 1),
        pv.cap_yuan,
        COALESCE(CAST(pv.max_cost_share AS DECIMAL(38, 6)) * k.cost_yuan, pv.cap_yuan)
    )) AS INTEGER)                                                     AS rate_fen
FROM classified k
JOIN policy_versions pv ON pv.version_id = k.version_id
JOIN village_volume vv  ON vv.village_code = k.village_code
LEFT JOIN village_tier vt ON vt.village_code = k.village_code AND vt.version_id = k.version_id
JOIN rate_bands b
  ON b.version_id = k.version_id
 AND b.area_class = k.area_class
 AND k.distance_km >= b.distance_from_km
 AND (b.distance_to_km IS NULL OR k.distance_km < b.distance_to_km);

DROP TABLE checked;
