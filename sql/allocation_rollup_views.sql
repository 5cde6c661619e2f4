-- The allocation roll-ups of cost/analysis (view 'allocation': by enterprise project,
-- and by tag key and value with '(untagged)'), recomputed from cost/allocation, next
-- to billrun's own. Returns the rows where the two disagree: empty when the analysis
-- is right.
WITH alloc AS (
    SELECT * FROM read_parquet(getvariable('lake') || '/cost/allocation/*/*.parquet', hive_partitioning = true)
),
keys AS (
    SELECT DISTINCT billing_period, account_id, unnest(json_keys(AllocatedTags)) AS tag_key
    FROM alloc WHERE AllocatedTags IS NOT NULL
),
from_allocation AS (
    SELECT billing_period, account_id, 'enterprise_project' AS dimension,
           coalesce(x_EnterpriseProject, '(none)') AS key, sum(EffectiveCost) AS effective
    FROM alloc GROUP BY ALL
    UNION ALL
    SELECT k.billing_period, k.account_id, 'tag:' || k.tag_key,
           coalesce(json_extract_string(a.AllocatedTags, '$."' || k.tag_key || '"'), '(untagged)'),
           sum(a.EffectiveCost)
    FROM keys k JOIN alloc a USING (billing_period, account_id)
    GROUP BY ALL
),
from_analysis AS (
    SELECT billing_period, account_id, dimension, key, effective_cost AS effective
    FROM read_parquet(getvariable('lake') || '/cost/analysis/*/*.parquet', hive_partitioning = true)
    WHERE view = 'allocation'
)
SELECT coalesce(l.billing_period, a.billing_period) AS billing_period,
       coalesce(l.account_id, a.account_id) AS account_id,
       coalesce(l.dimension, a.dimension) AS dimension,
       coalesce(l.key, a.key) AS key,
       l.effective, a.effective AS analysis_effective
FROM from_allocation l FULL OUTER JOIN from_analysis a USING (billing_period, account_id, dimension, key)
WHERE l.effective IS DISTINCT FROM a.effective
ORDER BY 1, 2, 3, 4;
