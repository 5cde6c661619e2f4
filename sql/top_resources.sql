-- Each account's ten most expensive resources in cost/analysis (view
-- 'top_resources'), recomputed from the FOCUS line items: ranked by effective cost,
-- highest first, ties by resource id. A line's resource is its ResourceId (the
-- usage's resource, or the subscribed resource), else the package it bought or left
-- unused (CommitmentDiscountId); settlement adjustments have none.
-- Returns the rows where the two disagree: empty when the ranking is right.
WITH resources AS (
    SELECT billing_period, BillingAccountId AS account_id, coalesce(ResourceId, CommitmentDiscountId) AS key,
           sum(BilledCost) AS billed, sum(EffectiveCost) AS effective, sum(ListCost) AS list
    FROM read_parquet(getvariable('lake') || '/bills/line_items/*/*.parquet', hive_partitioning = true)
    WHERE coalesce(ResourceId, CommitmentDiscountId) IS NOT NULL
    GROUP BY ALL
),
from_lines AS (
    SELECT * FROM (
        SELECT *, row_number() OVER (PARTITION BY billing_period, account_id ORDER BY effective DESC, key) AS rank
        FROM resources
    ) WHERE rank <= 10
),
from_analysis AS (
    SELECT billing_period, account_id, key, rank, billed_cost AS billed, effective_cost AS effective, list_cost AS list
    FROM read_parquet(getvariable('lake') || '/cost/analysis/*/*.parquet', hive_partitioning = true)
    WHERE view = 'top_resources'
)
SELECT coalesce(l.billing_period, a.billing_period) AS billing_period,
       coalesce(l.account_id, a.account_id) AS account_id,
       coalesce(l.rank, a.rank) AS rank,
       l.key, a.key AS analysis_key, l.effective, a.effective AS analysis_effective
FROM from_lines l FULL OUTER JOIN from_analysis a USING (billing_period, account_id, rank)
WHERE l.key IS DISTINCT FROM a.key OR l.billed IS DISTINCT FROM a.billed
   OR l.effective IS DISTINCT FROM a.effective OR l.list IS DISTINCT FROM a.list
ORDER BY 1, 2, 3;
