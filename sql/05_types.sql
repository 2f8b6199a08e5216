-- 05_types.sql — compact types and lookup tables for one run.
--
-- purpose: give the few, repeated values of a month (companies, 旗县, policy versions, area
--          classes, break-even units, input files) ENUM types, so that ten million parcels carry
--          one or two bytes for each instead of a string, and Parquet writes them as dictionaries.
--          Also the policy version in force on each day of the month (policy_days), so that
--          finding a parcel's version is an equality join, not a date-range join.
-- inputs:  companies, villages, reason_codes, eligible_urban_rural, policy_versions, area_villages,
--          area_counties, rate_bands, input_files, run_params
-- outputs: types company_t, village_t, county_t, version_t, area_t, unit_t, file_t, reason_t,
--          run_t, revenue_source_t;
--          company_dim, company_hint, village_dim, policy_days, unit_map, file_dim
-- grain:   company_dim: one row per company code; company_hint: per text that suggests one
--          company; village_dim: per registry village;
--          policy_days: per day of the month with a version in force; unit_map: per company ×
--          旗县 of the 盟市; file_dim: per input file (with the line of its header, so that data
--          row n is line n + header_line as Excel or an editor shows it)

CREATE TYPE company_t AS ENUM (SELECT code FROM companies ORDER BY code);
CREATE TYPE village_t AS ENUM (SELECT code FROM villages ORDER BY code);
CREATE TYPE reason_t AS ENUM (SELECT reason_code FROM reason_codes);
CREATE TYPE county_t AS ENUM (
    SELECT DISTINCT county_code FROM villages WHERE county_code IS NOT NULL ORDER BY county_code);
CREATE TYPE version_t AS ENUM (SELECT version_id FROM policy_versions ORDER BY version_id);
CREATE TYPE area_t AS ENUM (
    SELECT area_class FROM (
        SELECT area_class FROM rate_bands UNION SELECT area_class FROM area_counties
        UNION SELECT area_class FROM area_villages UNION SELECT 'default')
    ORDER BY area_class);
CREATE TYPE file_t AS ENUM (SELECT source_file FROM input_files ORDER BY source_file);
CREATE TYPE run_t AS ENUM (SELECT run_id FROM run_params);
CREATE TYPE revenue_source_t AS ENUM ('log', 'company', 'policy');

CREATE OR REPLACE TEMP TABLE company_dim AS
SELECT code, CAST(code AS company_t) AS company, default_revenue_yuan
FROM companies;

-- What an unregistered company text most likely meant (UNKNOWN_COMPANY's hint, matched on
-- upper(company)): a code in another case ('zto'), or the Chinese name or its first two or
-- more characters ('中通' for 中通快递). A text two companies share suggests neither.
CREATE OR REPLACE TEMP TABLE company_hint AS
SELECT hint_key, MIN(code) AS code
FROM (
    SELECT code, upper(code) AS hint_key FROM companies
    UNION
    SELECT code, upper(left(name, n)) AS hint_key
    FROM (SELECT code, name, unnest(range(2, length(name) + 1)) AS n FROM companies)
)
GROUP BY hint_key
HAVING COUNT(DISTINCT code) = 1;

CREATE OR REPLACE TEMP TABLE village_dim AS
SELECT
    v.code                                   AS village_code,
    CAST(v.code AS village_t)                AS village,
    CAST(v.county_code AS county_t)          AS county_code,
    v.league_code,
    v.urban_rural_code,
    e.urban_rural_code IS NOT NULL           AS rural_eligible
FROM villages v
LEFT JOIN eligible_urban_rural e ON e.urban_rural_code = v.urban_rural_code;

CREATE OR REPLACE TEMP TABLE policy_days AS
SELECT CAST(d.day AS DATE) AS day, CAST(pv.version_id AS version_t) AS version_id
FROM run_params r,
     range(r.month_start, r.month_end, INTERVAL 1 DAY) d(day),
     policy_versions pv
WHERE CAST(d.day AS DATE) BETWEEN pv.effective_from AND pv.effective_to;

-- unit_key (SPEC §4.3) of every company × 旗县 of the 盟市, company first: 'ZTO|150721'.
CREATE OR REPLACE TEMP TABLE unit_map_text AS
SELECT
    c.company,
    k.county_code,
    CASE r.scope
        WHEN 'company_county' THEN c.code || '|' || CAST(k.county_code AS VARCHAR)
        WHEN 'county'         THEN CAST(k.county_code AS VARCHAR)
        WHEN 'company_league' THEN c.code
        ELSE r.league_code
    END AS unit_key
FROM company_dim c
CROSS JOIN (SELECT DISTINCT county_code FROM village_dim, run_params r
            WHERE village_dim.league_code = r.league_code) k
CROSS JOIN run_params r;

CREATE TYPE unit_t AS ENUM (SELECT DISTINCT unit_key FROM unit_map_text ORDER BY unit_key);

CREATE OR REPLACE TEMP TABLE unit_map AS
SELECT company, county_code, CAST(unit_key AS unit_t) AS unit_key FROM unit_map_text;
DROP TABLE unit_map_text;

CREATE OR REPLACE TEMP TABLE file_dim AS
SELECT file_no, CAST(source_file AS file_t) AS source_file, header_line FROM input_files;
