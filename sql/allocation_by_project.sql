-- Effective cost by enterprise project (dedicated pools' cost allocated to the jobs
-- on them by node-seconds, idle time to the pool's own project).
SELECT billing_period, account_id, coalesce(x_EnterpriseProject, '(none)') AS enterprise_project,
       sum(EffectiveCost) AS effective_cost,
       sum(EffectiveCost) FILTER (WHERE AllocatedMethodId = 'pool-node-seconds') AS from_pools,
       sum(EffectiveCost) FILTER (WHERE AllocatedMethodId = 'pool-idle') AS idle
FROM read_parquet(getvariable('lake') || '/cost/allocation/*/*.parquet', hive_partitioning = true)
GROUP BY ALL
ORDER BY 1, 2, 4 DESC, 3;
