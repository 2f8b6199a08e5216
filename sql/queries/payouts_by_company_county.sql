-- question: 某盟市某月各企业、各旗县的受理件数和应付补贴（元）
-- params:   league (league)  盟市代码，如 150700
--           month  (month)   结算月份 YYYY-MM（含该月的补充结算）
-- columns:  company, county_code, parcels, gross_yuan, subsidy_yuan
-- note:     money is exact: 分 × 0.01 gives DECIMAL 元, never a binary float
SELECT company, county_code, COUNT(*) AS parcels,
       SUM(rate_fen) * 0.01 AS gross_yuan, SUM(subsidy_fen) * 0.01 AS subsidy_yuan
FROM ledger
WHERE league = $league AND month = $month
GROUP BY ALL
ORDER BY company, county_code
