-- Spend by module, recomputed from the FOCUS line items, next to billrun's own
-- composition (cost/analysis). Returns the rows where the two disagree: empty when
-- the analysis is right. Notebook = notebook + evs; ExeML = exeml_* + smn.
WITH from_lines AS (
    SELECT billing_period, BillingAccountId AS account_id,
           coalesce(x_Module, CASE ChargeCategory WHEN 'Purchase' THEN 'purchase'
                                                  WHEN 'Adjustment' THEN 'settlement'
                                                  ELSE 'commitment' END) AS module,
           sum(BilledCost) AS billed, sum(EffectiveCost) AS effective
    FROM read_parquet(getvariable('lake') || '/bills/line_items/*/*.parquet', hive_partitioning = true)
    GROUP BY ALL
),
from_analysis AS (
    SELECT billing_period, account_id, key AS module, billed_cost AS billed, effective_cost AS effective
    FROM read_parquet(getvariable('lake') || '/cost/analysis/*/*.parquet', hive_partitioning = true)
    WHERE view = 'composition' AND dimension = 'module'
)
SELECT coalesce(l.billing_period, a.billing_period) AS billing_period,
       coalesce(l.account_id, a.account_id) AS account_id,
       coalesce(l.module, a.module) AS module,
       l.billed, a.billed AS analysis_billed, l.effective, a.effective AS analysis_effective
FROM from_lines l FULL OUTER JOIN from_analysis a USING (billing_period, account_id, module)
WHERE l.billed IS DISTINCT FROM a.billed OR l.effective IS DISTINCT FROM a.effective
ORDER BY 1, 2, 3;
