-- Effective cost by tag key and value. For each key, the values plus '(untagged)' add
-- up to the account's total.
WITH keys AS (
    SELECT DISTINCT billing_period, account_id, unnest(json_keys(AllocatedTags)) AS tag_key
    FROM read_parquet(getvariable('lake') || '/cost/allocation/*/*.parquet', hive_partitioning = true)
    WHERE AllocatedTags IS NOT NULL
),
alloc AS (
    SELECT * FROM read_parquet(getvariable('lake') || '/cost/allocation/*/*.parquet', hive_partitioning = true)
)
SELECT k.billing_period, k.account_id, k.tag_key,
       coalesce(json_extract_string(a.AllocatedTags, '$."' || k.tag_key || '"'), '(untagged)') AS tag_value,
       sum(a.EffectiveCost) AS effective_cost
FROM keys k JOIN alloc a USING (billing_period, account_id)
GROUP BY ALL
ORDER BY 1, 2, 3, 5 DESC, 4;
