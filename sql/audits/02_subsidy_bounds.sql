-- 02_subsidy_bounds.sql — SPEC §7.2: 0 ≤ subsidy_fen ≤ rate_fen ≤ 30 for every parcel.
-- question: which parcels break the per-parcel bounds?
-- inputs:   ledger
-- scope:    run (before publishing: the new run's parcels)
-- returns:  one row per breaching parcel: run_id, waybill_no, rate_fen, subsidy_fen, problem
SELECT run_id, waybill_no, rate_fen, subsidy_fen,
       CASE WHEN subsidy_fen < 0 THEN '补贴为负数'
            WHEN subsidy_fen > rate_fen THEN '补贴超过费率'
            ELSE '费率超出 0–30 分' END AS problem
FROM ledger
WHERE subsidy_fen < 0 OR subsidy_fen > rate_fen OR rate_fen > 30 OR rate_fen < 0
