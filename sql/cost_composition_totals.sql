-- Every composition view of cost/analysis (billing item, module, product, billing
-- mode, SKU, region, charge category, module × billing item) adds up, per account
-- and period, to the account's bill: Σ billed_cost = the invoice's total_due and
-- Σ effective_cost = Σ EffectiveCost of its FOCUS line items. Returns the views that
-- do not: empty when every view is whole.
WITH views AS (
    SELECT billing_period, account_id, dimension, sum(billed_cost) AS billed, sum(effective_cost) AS effective
    FROM read_parquet(getvariable('lake') || '/cost/analysis/*/*.parquet', hive_partitioning = true)
    WHERE view = 'composition'
    GROUP BY ALL
),
bills AS (
    SELECT i.billing_period, i.account_id, i.total_due, l.effective
    FROM read_parquet(getvariable('lake') || '/bills/invoices/*/*.parquet', hive_partitioning = true) i
    LEFT JOIN (
        SELECT billing_period, BillingAccountId AS account_id, sum(EffectiveCost) AS effective
        FROM read_parquet(getvariable('lake') || '/bills/line_items/*/*.parquet', hive_partitioning = true)
        GROUP BY ALL
    ) l USING (billing_period, account_id)
),
dimensions AS (SELECT DISTINCT dimension FROM views)
SELECT b.billing_period, b.account_id, d.dimension, b.total_due, v.billed, b.effective, v.effective AS view_effective
FROM bills b CROSS JOIN dimensions d
LEFT JOIN views v ON v.billing_period = b.billing_period AND v.account_id = b.account_id AND v.dimension = d.dimension
WHERE coalesce(v.billed, 0) <> b.total_due OR coalesce(v.effective, 0) <> coalesce(b.effective, 0)
ORDER BY 1, 2, 3;
