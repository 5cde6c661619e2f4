//! The generated accounts' packages, subscriptions and payments: a mix that makes every
//! rule of the billing rules happen somewhere in the sample month.

use super::*;

impl World {
    pub(super) fn add_commitments(&mut self, _r: &mut Rng, a: usize, region: &'static str, eur: bool) {
        let id = self.accounts[a].account_id.clone();
        let start = self.cfg.from.start();
        let months = self.cfg.months as i32;
        let month_end = |m: i32| add_months(start, m).unwrap_or(start);
        let _ = &month_end;
        let other_region = if region == REGIONS[0] { REGIONS[1] } else { REGIONS[0] };
        if a.is_multiple_of(4) {
            // Two GPU packages: the one that expires first is drawn first.
            for (k, (hours, exp, price)) in [("120", month_end(months) + 10 * DAY, "130.00"), ("60", month_end(1) - 5 * DAY, "70.00")].into_iter().enumerate() {
                self.packages.push(Package {
                    package_id: format!("pkg-{a:05}-gpu-{k}"),
                    account_id: id.clone(),
                    region: region.into(),
                    sku: if eur { "modelarts.vm.gpu.t4" } else { ["modelarts.vm.gpu.t4", "modelarts.vm.gpu.v100"][(a / 4) % 2] }.into(),
                    package_count: 1,
                    hours_per_package: d(hours),
                    price: d(price),
                    purchased_at: start + (k as i64) * DAY + 5 * HOUR,
                    effective_from: start + (k as i64) * DAY,
                    expires_at: exp,
                    reset_period: ResetPeriod::None,
                    alert_threshold_pct: (k == 0).then(|| d("25")),
                });
            }
            // A package bought for the wrong region: never applied.
            if a.is_multiple_of(12) {
                self.packages.push(Package {
                    package_id: format!("pkg-{a:05}-wrong-region"),
                    account_id: id.clone(),
                    region: other_region.into(),
                    sku: "modelarts.vm.gpu.t4".into(),
                    package_count: 2,
                    hours_per_package: d("50"),
                    price: d("99.00"),
                    purchased_at: start - 2 * DAY,
                    effective_from: start - 2 * DAY,
                    expires_at: month_end(months) + 30 * DAY,
                    reset_period: ResetPeriod::None,
                    alert_threshold_pct: None,
                });
            }
        }
        if a.is_multiple_of(8) {
            // A CPU package that resets every month, in force mid-month to mid-month.
            self.packages.push(Package {
                package_id: format!("pkg-{a:05}-cpu-monthly"),
                account_id: id.clone(),
                region: region.into(),
                sku: "modelarts.vm.cpu.2u".into(),
                package_count: 2,
                hours_per_package: d("100"),
                price: d("45.00"),
                purchased_at: start - 20 * DAY,
                effective_from: start - 20 * DAY,
                expires_at: month_end(months) + 9 * DAY + 12 * HOUR,
                reset_period: ResetPeriod::Month,
                alert_threshold_pct: Some(d("20")),
            });
        }
        if a % 6 == 2 {
            // A pay-per-use dedicated pool that scales by day, with jobs on it.
            let pool = format!("pool-{a:05}-ppu");
            self.resources.push(Resource {
                id: pool.clone(),
                name: format!("ppu pool {a}"),
                account: a,
                region,
                module: Module::DedicatedPool,
                sku: "modelarts.vm.gpu.t4",
                unit_count: 1,
                pool_type: PoolType::Dedicated,
                pool_id: None,
                nodes: 2,
                quantity: Dec::from_int(1),
                schedule: Schedule::Always,
                project: Some("platform".into()),
                tags: Some(r#"{"team":"ml-platform"}"#.into()),
                scales: true,
            });
            for j in 0..3 {
                self.resources.push(Resource {
                    id: format!("job-{a:05}-ppu-{j}"),
                    name: format!("job {j} on {pool}"),
                    account: a,
                    region,
                    module: Module::Training,
                    sku: "modelarts.vm.gpu.t4",
                    unit_count: 1,
                    pool_type: PoolType::Dedicated,
                    pool_id: Some(pool.clone()),
                    nodes: 1,
                    quantity: Dec::from_int(1),
                    schedule: Schedule::Jobs { per_mille: 120, len: 4 },
                    project: Some(PROJECTS[j % PROJECTS.len()].into()),
                    tags: Some(format!(r#"{{"team":"{}"}}"#, TEAMS[j % TEAMS.len()])),
                    scales: false,
                });
            }
        }
        if a % 7 == 3 {
            // A subscribed pool with monthly renewals, and jobs on it; a subscribed
            // Lite Server that once reports a scaled node count (refused).
            let pool = format!("pool-{a:05}-sub");
            let mut prev: Option<String> = None;
            let mut s_at = start - 3 * DAY;
            for m in 0..=months {
                let sid = format!("sub-{a:05}-pool-{m}");
                self.subscriptions.push(Subscription {
                    subscription_id: sid.clone(),
                    account_id: id.clone(),
                    region: region.into(),
                    resource_id: pool.clone(),
                    sku: "modelarts.vm.gpu.t4".into(),
                    nodes: 2,
                    unit_count: 1,
                    term_unit: TermUnit::Month,
                    term_count: 1,
                    ordered_at: if m == 0 { s_at - DAY } else { s_at - 2 * DAY },
                    start_at: s_at,
                    end_at: add_months(s_at, 1).unwrap_or(s_at),
                    renewal_of: prev.clone(),
                });
                prev = Some(sid);
                s_at = add_months(s_at, 1).unwrap_or(s_at);
            }
            self.resources.push(Resource {
                id: pool.clone(),
                name: format!("subscribed pool {a}"),
                account: a,
                region,
                module: Module::DedicatedPool,
                sku: "modelarts.vm.gpu.t4",
                unit_count: 1,
                pool_type: PoolType::Dedicated,
                pool_id: None,
                nodes: 2,
                quantity: Dec::from_int(1),
                schedule: Schedule::Workday { from: 0, to: 24, offset_min: 0 },
                project: Some("platform".into()),
                tags: None,
                scales: false,
            });
            for j in 0..2 {
                self.resources.push(Resource {
                    id: format!("job-{a:05}-sub-{j}"),
                    name: format!("job {j} on {pool}"),
                    account: a,
                    region,
                    module: Module::Training,
                    sku: "modelarts.vm.gpu.t4",
                    unit_count: 1,
                    pool_type: PoolType::Dedicated,
                    pool_id: Some(pool.clone()),
                    nodes: 1,
                    quantity: Dec::from_int(1),
                    schedule: Schedule::Jobs { per_mille: 150, len: 3 },
                    project: Some(PROJECTS[(j + 1) % PROJECTS.len()].into()),
                    tags: None,
                    scales: false,
                });
            }
            let lite = format!("lite-{a:05}");
            self.subscriptions.push(Subscription {
                subscription_id: format!("sub-{a:05}-lite"),
                account_id: id.clone(),
                region: region.into(),
                resource_id: lite.clone(),
                sku: "modelarts.vm.npu.910b".into(),
                nodes: 1,
                unit_count: 8,
                term_unit: TermUnit::Year,
                term_count: 1,
                ordered_at: start - 40 * DAY,
                start_at: start - 40 * DAY,
                end_at: add_months(start - 40 * DAY, 12).unwrap_or(start),
                renewal_of: None,
            });
            self.resources.push(Resource {
                id: lite,
                name: format!("lite server {a}"),
                account: a,
                region,
                module: Module::LiteServer,
                sku: "modelarts.vm.npu.910b",
                unit_count: 8,
                pool_type: PoolType::Public,
                pool_id: None,
                nodes: 1,
                quantity: Dec::from_int(1),
                schedule: Schedule::Workday { from: 6, to: 22, offset_min: 0 },
                project: Some("vision".into()),
                tags: None,
                scales: true,
            });
        }
        if a % 9 == 4 {
            // A subscription that ends on the 6th without renewal: grace (2 days),
            // retention (3 days), then release — while its resource keeps reporting.
            let srv = format!("lite-{a:05}-expiring");
            let end = start + 5 * DAY;
            self.subscriptions.push(Subscription {
                subscription_id: format!("sub-{a:05}-expiring"),
                account_id: id.clone(),
                region: region.into(),
                resource_id: srv.clone(),
                sku: "modelarts.vm.cpu.2u".into(),
                nodes: 1,
                unit_count: 4,
                term_unit: TermUnit::Month,
                term_count: 1,
                ordered_at: add_months(end, -1).unwrap_or(end) - HOUR,
                start_at: add_months(end, -1).unwrap_or(end),
                end_at: end,
                renewal_of: None,
            });
            self.resources.push(Resource {
                id: srv.clone(),
                name: format!("expiring server {a}"),
                account: a,
                region,
                module: Module::LiteServer,
                sku: "modelarts.vm.cpu.2u",
                unit_count: 4,
                pool_type: PoolType::Public,
                pool_id: None,
                nodes: 1,
                quantity: Dec::from_int(1),
                schedule: Schedule::Window { from: end - 2 * DAY, to: end + 8 * DAY },
                project: None,
                tags: None,
                scales: false,
            });
            // A renewal of it ordered after its retention ended: too late.
            self.subscriptions.push(Subscription {
                subscription_id: format!("sub-{a:05}-late-renewal"),
                account_id: id.clone(),
                region: region.into(),
                resource_id: srv,
                sku: "modelarts.vm.cpu.2u".into(),
                nodes: 1,
                unit_count: 4,
                term_unit: TermUnit::Month,
                term_count: 1,
                ordered_at: end + 6 * DAY,
                start_at: end,
                end_at: add_months(end, 1).unwrap_or(end),
                renewal_of: Some(format!("sub-{a:05}-expiring")),
            });
            // An order for a flavor with no yearly/monthly price: rejected.
            self.subscriptions.push(Subscription {
                subscription_id: format!("sub-{a:05}-unpriced"),
                account_id: id.clone(),
                region: region.into(),
                resource_id: format!("pool-{a:05}-a100"),
                sku: "modelarts.vm.gpu.a100".into(),
                nodes: 1,
                unit_count: 1,
                term_unit: TermUnit::Month,
                term_count: 1,
                ordered_at: start + 2 * DAY,
                start_at: start + 2 * DAY,
                end_at: add_months(start + 2 * DAY, 1).unwrap_or(start),
                renewal_of: None,
            });
        }
        if a % 11 == 5 {
            // A subscription renewed during its grace period: the renewal covers
            // from the original end, so no row goes to grace.
            let srv = format!("lite-{a:05}-renewed-late");
            let end = start + 8 * DAY;
            let base = format!("sub-{a:05}-renewed-base");
            self.subscriptions.push(Subscription {
                subscription_id: base.clone(),
                account_id: id.clone(),
                region: region.into(),
                resource_id: srv.clone(),
                sku: "modelarts.vm.cpu.2u".into(),
                nodes: 2,
                unit_count: 1,
                term_unit: TermUnit::Month,
                term_count: 1,
                ordered_at: add_months(end, -1).unwrap_or(end),
                start_at: add_months(end, -1).unwrap_or(end),
                end_at: end,
                renewal_of: None,
            });
            self.subscriptions.push(Subscription {
                subscription_id: format!("sub-{a:05}-renewal-in-grace"),
                account_id: id.clone(),
                region: region.into(),
                resource_id: srv.clone(),
                sku: "modelarts.vm.cpu.2u".into(),
                nodes: 2,
                unit_count: 1,
                term_unit: TermUnit::Month,
                term_count: 1,
                ordered_at: end + 3 * DAY + 7 * HOUR,
                start_at: end,
                end_at: add_months(end, 1).unwrap_or(end),
                renewal_of: Some(base),
            });
            self.resources.push(Resource {
                id: srv,
                name: format!("renewed server {a}"),
                account: a,
                region,
                module: Module::LiteServer,
                sku: "modelarts.vm.cpu.2u",
                unit_count: 1,
                pool_type: PoolType::Public,
                pool_id: None,
                nodes: 2,
                quantity: Dec::from_int(1),
                schedule: Schedule::Always,
                project: None,
                tags: None,
                scales: false,
            });
        }
        if a % 10 == 5 {
            // A Lite Cluster billed per use at a fixed size, all month: a subscription
            // would be cheaper.
            self.resources.push(Resource {
                id: format!("lite-{a:05}-ppu"),
                name: format!("pay-per-use cluster {a}"),
                account: a,
                region,
                module: Module::LiteCluster,
                sku: "modelarts.vm.cpu.2u",
                unit_count: 2,
                pool_type: PoolType::Dedicated,
                pool_id: None,
                nodes: 4,
                quantity: Dec::from_int(1),
                schedule: Schedule::Always,
                project: Some("platform".into()),
                tags: Some(r#"{"team":"data"}"#.into()),
                scales: false,
            });
        }
        if eur && a.is_multiple_of(2) {
            // NPU usage of a EUR account: NPUs are priced in USD only.
            self.resources.push(Resource {
                id: format!("res-{a:05}-npu-eur"),
                name: "npu notebook".into(),
                account: a,
                region: REGIONS[0],
                module: Module::Notebook,
                sku: "modelarts.vm.npu.910b",
                unit_count: 1,
                pool_type: PoolType::Public,
                pool_id: None,
                nodes: 1,
                quantity: Dec::from_int(1),
                schedule: Schedule::Jobs { per_mille: 30, len: 2 },
                project: None,
                tags: None,
                scales: false,
            });
        }
        if a % 13 == 7 {
            // An A100 notebook in a region where A100 has no price.
            self.resources.push(Resource {
                id: format!("res-{a:05}-a100"),
                name: "a100 notebook".into(),
                account: a,
                region: REGIONS[0],
                module: Module::Notebook,
                sku: "modelarts.vm.gpu.a100",
                unit_count: 1,
                pool_type: PoolType::Public,
                pool_id: None,
                nodes: 1,
                quantity: Dec::from_int(1),
                schedule: Schedule::Jobs { per_mille: 30, len: 2 },
                project: None,
                tags: None,
                scales: false,
            });
        }
    }
}
