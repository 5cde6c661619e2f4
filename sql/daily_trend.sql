-- Spend by account and day, recomputed from the FOCUS line items (the UTC day each
-- line's charge period starts), next to billrun's daily trend (cost/analysis, view
-- 'daily'). Returns the rows where the two disagree: empty when the trend is right.
WITH from_lines AS (
    SELECT billing_period, BillingAccountId AS account_id,
           epoch_us(ChargePeriodStart) // 86400000000 AS day,
           sum(BilledCost) AS billed, sum(EffectiveCost) AS effective, sum(ListCost) AS list
    FROM read_parquet(getvariable('lake') || '/bills/line_items/*/*.parquet', hive_partitioning = true)
    GROUP BY ALL
),
from_analysis AS (
    SELECT billing_period, account_id, epoch_us("date") // 86400000000 AS day,
           billed_cost AS billed, effective_cost AS effective, list_cost AS list
    FROM read_parquet(getvariable('lake') || '/cost/analysis/*/*.parquet', hive_partitioning = true)
    WHERE view = 'daily'
)
SELECT coalesce(l.billing_period, a.billing_period) AS billing_period,
       coalesce(l.account_id, a.account_id) AS account_id,
       coalesce(l.day, a.day) AS day,
       l.billed, a.billed AS analysis_billed, l.effective, a.effective AS analysis_effective,
       l.list, a.list AS analysis_list
FROM from_lines l FULL OUTER JOIN from_analysis a USING (billing_period, account_id, day)
WHERE l.billed IS DISTINCT FROM a.billed OR l.effective IS DISTINCT FROM a.effective
   OR l.list IS DISTINCT FROM a.list
ORDER BY 1, 2, 3;
