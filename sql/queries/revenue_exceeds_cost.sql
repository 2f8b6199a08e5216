-- question: 派费收入高于派送成本、却仍获补贴的包裹（盈亏平衡原则下应重点核查）
-- params:   league (league)  盟市代码
--           month  (month)   结算月份 YYYY-MM
-- columns:  waybill_no, company, village_code, cost_yuan, revenue_yuan, revenue_source, rate_fen, subsidy_fen
SELECT waybill_no, company, village_code, cost_yuan, revenue_yuan, revenue_source, rate_fen, subsidy_fen
FROM ledger
WHERE league = $league AND month = $month AND revenue_yuan > cost_yuan
ORDER BY revenue_yuan - cost_yuan DESC, waybill_no
