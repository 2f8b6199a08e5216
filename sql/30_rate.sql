-- 30_rate.sql — the rate of every accepted parcel (SPEC §4.2), and its unit's totals.
--
-- purpose: for each accepted parcel: policy version of the delivery day, area class of its
--          village (a village listed in a class overrides its county; otherwise 'default'),
--          base rate of the class's distance band [from, to), volume-tier multiplier of the
--          village's monthly accepted volume (all companies; no matching tier = ×1), then
--          rate_fen = floor(100 × min(base × multiplier, cap_yuan, max_cost_share × cost)).
--          Everything but the cost share depends only on village, version and band, so it is
--          worked out once per village × version × band (village_bands, band_rate_fen) and each
--          parcel needs one join and min(band_rate_fen, floor(100 × share × cost)). The parcels themselves stay a view (rated): 40_units.sql and
--          70_ledger.sql each read it in one pass.
-- inputs:  rows, late_rejects, village_dim, area_villages, area_counties, rate_bands,
--          volume_tiers, policy_versions, policy_days, prior_villages (empty unless a
--          supplementary run)
-- outputs: accepted (view), village_volume, village_tier, village_bands, rated (view),
--          unit_rates
-- grain:   rated: one row per accepted parcel; unit_rates: one row per company × 旗县 × rate_fen

-- (an ANTI JOIN, not NOT EXISTS: the correlated form makes DuckDB de-duplicate every row first)
CREATE OR REPLACE TEMP VIEW accepted AS
SELECT r.*
FROM rows r
ANTI JOIN late_rejects l ON l.file_no = r.file_no AND l.source_row = r.source_row
WHERE r.reason_code IS NULL;

-- A supplementary run also counts the parcels the month's earlier runs settled (prior_villages).
CREATE OR REPLACE TEMP TABLE village_volume AS
SELECT village, CAST(village AS VARCHAR) AS village_code, CAST(SUM(parcels) AS BIGINT) AS village_volume
FROM (
    SELECT village, COUNT(*) AS parcels FROM accepted GROUP BY village
    UNION ALL
    SELECT CAST(village_code AS village_t), parcels FROM prior_villages
)
GROUP BY village;

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

CREATE OR REPLACE TEMP TABLE village_bands AS
WITH classed AS (
    SELECT
        vv.village,
        vv.village_code,
        v.county_code,
        vv.village_volume,
        pv.version_id,
        COALESCE(av.area_class, ac.area_class, 'default')      AS area_class,
        pv.cap_yuan,
        pv.max_cost_share
    FROM village_volume vv
    JOIN village_dim v ON v.village_code = vv.village_code
    CROSS JOIN policy_versions pv
    LEFT JOIN area_villages av ON av.version_id = pv.version_id AND av.village_code = vv.village_code
    LEFT JOIN area_counties ac ON ac.version_id = pv.version_id
                              AND ac.county_code = CAST(v.county_code AS VARCHAR)
    WHERE pv.version_id IN (SELECT CAST(version_id AS VARCHAR) FROM policy_days)
)
SELECT
    k.village,
    k.county_code,
    CAST(k.version_id AS version_t)                            AS version_id,
    CAST(k.area_class AS area_t)                               AS area_class,
    k.village_volume,
    vt.volume_tier_up_to,
    COALESCE(vt.volume_multiplier, 1)                          AS volume_multiplier,
    b.distance_from_km                                         AS band_from_km,
    b.distance_to_km                                           AS band_to_km,
    b.rate_yuan                                                AS base_rate_yuan,
    k.cap_yuan,
    k.max_cost_share,
    -- floor(100 × min(base × multiplier, cap)): the most a parcel of this band may get
    CAST(FLOOR(100 * LEAST(CAST(b.rate_yuan AS DECIMAL(38, 6)) * COALESCE(vt.volume_multiplier, 1),
                           k.cap_yuan)) AS INTEGER)            AS band_rate_fen,
    -- max_cost_share in millionths (exact: it has 6 decimals), for integer arithmetic below
    CAST(k.max_cost_share * 1000000 AS BIGINT)                 AS share_millionths
FROM classed k
JOIN rate_bands b ON b.version_id = k.version_id AND b.area_class = k.area_class
LEFT JOIN village_tier vt ON vt.village_code = k.village_code AND vt.version_id = k.version_id;

CREATE OR REPLACE TEMP VIEW rated AS
SELECT
    a.*,
    vb.county_code,
    vb.area_class,
    vb.band_from_km,
    vb.band_to_km,
    vb.base_rate_yuan,
    vb.village_volume,
    vb.volume_multiplier,
    -- floor(100 × min(x, y)) = min(floor(100x), floor(100y)); the cost share in integers:
    -- cost in millionths of a 元 × share in millionths = 元 × 10^-12, so 分 = that // 10^10
    -- (exact: cost ≤ max_cost_yuan keeps the product far inside BIGINT)
    CASE WHEN vb.share_millionths IS NULL THEN vb.band_rate_fen
         ELSE LEAST(vb.band_rate_fen,
                    CAST(CAST(a.cost_yuan * 1000000 AS BIGINT) * vb.share_millionths
                         // 10000000000 AS INTEGER))
    END                                                        AS rate_fen
FROM accepted a
JOIN village_bands vb
  ON vb.village = a.village
 AND vb.version_id = a.version_id
 AND a.distance_km >= vb.band_from_km
 AND (vb.band_to_km IS NULL OR a.distance_km < vb.band_to_km);

-- Parcels by company × 旗县 × rate: what break-even (40), the budget (50) and the allocation
-- (60) need. revenue_logged_yuan sums the rows that gave revenue; revenue_missing counts the
-- rest, which use the company's (else the policy's) default.
CREATE OR REPLACE TEMP TABLE unit_rates AS
SELECT
    company,
    county_code,
    rate_fen,
    COUNT(*)                                   AS parcels,
    SUM(cost_yuan)                             AS cost_yuan,
    COALESCE(SUM(revenue_yuan), 0)             AS revenue_logged_yuan,
    COUNT(*) - COUNT(revenue_yuan)             AS revenue_missing
FROM rated
GROUP BY company, county_code, rate_fen;
