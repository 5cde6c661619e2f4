-- Every composition view of cost/analysis (billing item, module, product, billing
-- mode, SKU, region, charge category, module × billing item), recomputed from the
-- FOCUS line items, next to billrun's own. Returns the rows where the two disagree:
-- empty when the analysis is right. The keys follow the FOCUS mapping: a line
-- without a module is a purchase, a settlement adjustment or a commitment's unused
-- part; a line without a price bills as its module's item.
WITH lines AS (
    SELECT billing_period, BillingAccountId AS account_id, ChargeCategory, x_BillingMode, SkuId, RegionId,
           x_Module AS m, x_BillingItem, BilledCost, EffectiveCost, ListCost,
           coalesce(x_Module, CASE ChargeCategory WHEN 'Purchase' THEN 'purchase'
                                                  WHEN 'Adjustment' THEN 'settlement'
                                                  ELSE 'commitment' END) AS module
    FROM read_parquet(getvariable('lake') || '/bills/line_items/*/*.parquet', hive_partitioning = true)
),
keyed AS (
    SELECT *,
           coalesce(x_BillingItem, CASE m WHEN 'obs' THEN 'object_storage' WHEN 'sfs' THEN 'file_storage'
                                          WHEN 'evs' THEN 'block_storage' WHEN 'smn' THEN 'notification'
                                          WHEN 'lts' THEN 'logs' ELSE 'compute' END) AS billing_item,
           CASE WHEN ChargeCategory = 'Purchase' THEN 'purchases'
                WHEN ChargeCategory = 'Adjustment' THEN 'settlement'
                WHEN m IN ('notebook', 'evs') THEN 'notebook'
                WHEN m IN ('exeml_training', 'exeml_deployment', 'smn') THEN 'exeml'
                WHEN m = 'dedicated_pool' THEN 'dedicated_pool'
                WHEN m IN ('lite_cluster', 'lite_server') THEN 'lite'
                WHEN m IN ('obs', 'sfs') THEN 'storage'
                WHEN m = 'lts' THEN 'logs'
                WHEN m IS NULL THEN 'commitments'
                ELSE 'ai_lifecycle' END AS product
    FROM lines
),
from_lines AS (
    SELECT billing_period, account_id, dimension, key, sum(BilledCost) AS billed, sum(EffectiveCost) AS effective
    FROM keyed
    CROSS JOIN LATERAL (VALUES
        ('billing_item', billing_item),
        ('module', module),
        ('product', product),
        ('billing_mode', x_BillingMode),
        ('sku', coalesce(SkuId, module)),
        ('region', coalesce(RegionId, module)),
        ('charge_category', ChargeCategory),
        ('module_billing_item', module || '/' || billing_item)
    ) AS d(dimension, key)
    GROUP BY ALL
),
from_analysis AS (
    SELECT billing_period, account_id, dimension, key, billed_cost AS billed, effective_cost AS effective
    FROM read_parquet(getvariable('lake') || '/cost/analysis/*/*.parquet', hive_partitioning = true)
    WHERE view = 'composition'
)
SELECT coalesce(l.billing_period, a.billing_period) AS billing_period,
       coalesce(l.account_id, a.account_id) AS account_id,
       coalesce(l.dimension, a.dimension) AS dimension,
       coalesce(l.key, a.key) AS key,
       l.billed, a.billed AS analysis_billed, l.effective, a.effective AS analysis_effective
FROM from_lines l FULL OUTER JOIN from_analysis a USING (billing_period, account_id, dimension, key)
WHERE l.billed IS DISTINCT FROM a.billed OR l.effective IS DISTINCT FROM a.effective
ORDER BY 1, 2, 3, 4;
