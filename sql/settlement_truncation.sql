-- Settlements whose deduction is not the hour's pay-per-use line sum truncated to
-- cents (billing-rules §5). Returns the offending account-hours; empty when exact.
WITH hourly AS (
    SELECT BillingAccountId AS account_id, ChargePeriodStart AS hour_start, sum(BilledCost) AS line_amount
    FROM read_parquet(getvariable('lake') || '/bills/line_items/*/*.parquet', hive_partitioning = true)
    WHERE ChargeCategory = 'Usage' AND PricingCategory = 'Standard' AND x_BillingMode = 'pay_per_use'
    GROUP BY 1, date_trunc('hour', ChargePeriodStart), ChargePeriodStart
),
per_hour AS (
    SELECT account_id, date_trunc('hour', hour_start) AS hour_start, sum(line_amount) AS line_amount
    FROM hourly GROUP BY 1, 2
)
SELECT s.account_id, s.hour_start, s.line_amount, h.line_amount AS lines_sum, s.deduction
FROM read_parquet(getvariable('lake') || '/bills/settlements/*/*.parquet', hive_partitioning = true) s
LEFT JOIN per_hour h ON h.account_id = s.account_id AND h.hour_start = s.hour_start
WHERE coalesce(h.line_amount, 0) <> s.line_amount
   OR s.deduction <> trunc(s.line_amount, 2)
   OR s.truncated_amount <> s.line_amount - s.deduction
ORDER BY 1, 2;
