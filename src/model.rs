//! The input entities of the data contract, as plain structs, and the coded values
//! they may take. Reading and validating them is `lake::inputs`; applying the rules
//! to them is `rules`.

use crate::decimal::Dec;
use crate::time::Micros;

macro_rules! coded {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn parse(s: &str) -> Option<$name> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

coded!(
    /// The platform module that produced a usage row.
    Module {
        Notebook = "notebook",
        Training = "training",
        InferenceRealtime = "inference_realtime",
        InferenceBatch = "inference_batch",
        InferenceEdge = "inference_edge",
        Workflow = "workflow",
        ExemlTraining = "exeml_training",
        ExemlDeployment = "exeml_deployment",
        DedicatedPool = "dedicated_pool",
        LiteCluster = "lite_cluster",
        LiteServer = "lite_server",
        Maas = "maas",
        Obs = "obs",
        Sfs = "sfs",
        Evs = "evs",
        Smn = "smn",
        Lts = "lts",
    }
);

impl Module {
    /// The FOCUS `ServiceName`, `ServiceCategory` and `ServiceSubcategory` of the
    /// module: one subcategory per service, as FOCUS asks.
    pub fn service(self) -> Service {
        match self {
            Module::Obs => ("Object Storage Service", "Storage", "Object Storage"),
            Module::Sfs => ("Scalable File Service", "Storage", "File Storage"),
            Module::Evs => ("Elastic Volume Service", "Storage", "Block Storage"),
            Module::Smn => ("Simple Message Notification", "Integration", "Messaging"),
            Module::Lts => ("Log Tank Service", "Management and Governance", "Observability"),
            _ => PLATFORM_SERVICE,
        }
    }

    /// The composition the platform's documentation names for the module:
    /// notebook = compute + EVS, ExeML = training + deployment + notification.
    pub fn product(self) -> &'static str {
        match self {
            Module::Notebook | Module::Evs => "notebook",
            Module::ExemlTraining | Module::ExemlDeployment | Module::Smn => "exeml",
            Module::DedicatedPool => "dedicated_pool",
            Module::LiteCluster | Module::LiteServer => "lite",
            Module::Obs | Module::Sfs => "storage",
            Module::Lts => "logs",
            _ => "ai_lifecycle",
        }
    }
}

/// `(ServiceName, ServiceCategory, ServiceSubcategory)`.
pub type Service = (&'static str, &'static str, &'static str);

/// The AI platform itself: compute of every module, purchases of its commitments,
/// and the settlement adjustments of its bill.
pub const PLATFORM_SERVICE: Service = ("ModelArts", "AI and Machine Learning", "AI Platforms");

coded!(PoolType { Public = "public", Dedicated = "dedicated" });
coded!(BillingMode { PayPerUse = "pay_per_use", YearlyMonthly = "yearly_monthly" });
coded!(
    PricingUnit {
        NodeHour = "node-hour",
        GbHour = "GB-hour",
        Count = "count",
        Gb = "GB",
        NodeMonth = "node-month",
        NodeYear = "node-year",
    }
);
coded!(ResetPeriod { None = "none", Month = "month" });
coded!(TermUnit { Month = "month", Year = "year" });
coded!(
    BillingItem {
        Compute = "compute",
        ObjectStorage = "object_storage",
        FileStorage = "file_storage",
        BlockStorage = "block_storage",
        Notification = "notification",
        Logs = "logs",
    }
);

/// One row of `catalog/prices`.
#[derive(Clone, Debug, PartialEq)]
pub struct PriceRow {
    pub sku: String,
    pub region: String,
    pub billing_mode: BillingMode,
    pub pricing_unit: PricingUnit,
    pub currency: String,
    pub unit_price: Dec,
    pub tier_start: Dec,
    pub effective_from: Micros,
    pub effective_to: Option<Micros>,
    pub billing_item: BillingItem,
    pub description: Option<String>,
    /// Row number in the catalog file (0-based), for messages and `SkuPriceId`.
    pub row: usize,
}

impl PriceRow {
    pub fn in_force(&self, t: Micros) -> bool {
        self.effective_from <= t && self.effective_to.is_none_or(|e| t < e)
    }
}

/// One row of `inventory/packages`.
#[derive(Clone, Debug, PartialEq)]
pub struct Package {
    pub package_id: String,
    pub account_id: String,
    pub region: String,
    pub sku: String,
    pub package_count: i32,
    pub hours_per_package: Dec,
    pub price: Dec,
    pub purchased_at: Micros,
    pub effective_from: Micros,
    pub expires_at: Micros,
    pub reset_period: ResetPeriod,
    pub alert_threshold_pct: Option<Dec>,
}

/// One row of `inventory/subscriptions`.
#[derive(Clone, Debug, PartialEq)]
pub struct Subscription {
    pub subscription_id: String,
    pub account_id: String,
    pub region: String,
    pub resource_id: String,
    pub sku: String,
    pub nodes: i32,
    pub unit_count: i32,
    pub term_unit: TermUnit,
    pub term_count: i32,
    pub ordered_at: Micros,
    pub start_at: Micros,
    pub end_at: Micros,
    pub renewal_of: Option<String>,
}

/// One row of `accounts/accounts`.
#[derive(Clone, Debug, PartialEq)]
pub struct Account {
    pub account_id: String,
    pub account_name: String,
    pub currency: String,
    pub opening_balance: Dec,
    pub balance_as_of: Micros,
    pub grace_days: i32,
    pub retention_days: i32,
    pub balance_alert_threshold: Option<Dec>,
}

/// One row of `accounts/payments`.
#[derive(Clone, Debug, PartialEq)]
pub struct Payment {
    pub payment_id: String,
    pub account_id: String,
    pub paid_at: Micros,
    pub amount: Dec,
}

/// The reason a usage row or an order was rejected (billing-rules §9).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    Schema,
    NegativeQuantity,
    BadInterval,
    OutOfPeriod,
    UnknownAccount,
    UnknownSku,
    NoPrice,
    CurrencyMismatch,
    Duplicate,
    ConflictingDuplicate,
    ScalingNotSupported,
    AccountFrozen,
    SubscriptionFrozen,
    ResourceReleased,
    RenewalTooLate,
}

impl Reason {
    pub const ALL: &'static [Reason] = &[
        Reason::Schema,
        Reason::NegativeQuantity,
        Reason::BadInterval,
        Reason::OutOfPeriod,
        Reason::UnknownAccount,
        Reason::UnknownSku,
        Reason::NoPrice,
        Reason::CurrencyMismatch,
        Reason::Duplicate,
        Reason::ConflictingDuplicate,
        Reason::ScalingNotSupported,
        Reason::AccountFrozen,
        Reason::SubscriptionFrozen,
        Reason::ResourceReleased,
        Reason::RenewalTooLate,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Schema => "schema",
            Reason::NegativeQuantity => "negative_quantity",
            Reason::BadInterval => "bad_interval",
            Reason::OutOfPeriod => "out_of_period",
            Reason::UnknownAccount => "unknown_account",
            Reason::UnknownSku => "unknown_sku",
            Reason::NoPrice => "no_price",
            Reason::CurrencyMismatch => "currency_mismatch",
            Reason::Duplicate => "duplicate",
            Reason::ConflictingDuplicate => "conflicting_duplicate",
            Reason::ScalingNotSupported => "scaling_not_supported",
            Reason::AccountFrozen => "account_frozen",
            Reason::SubscriptionFrozen => "subscription_frozen",
            Reason::ResourceReleased => "resource_released",
            Reason::RenewalTooLate => "renewal_too_late",
        }
    }
}

/// The arrears phase of an account, or of an expired subscription, at an instant.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    Active,
    /// In arrears, within the grace period: still running.
    Arrears,
    /// Retention period: frozen.
    Frozen,
    Released,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Active => "active",
            Phase::Arrears => "arrears",
            Phase::Frozen => "frozen",
            Phase::Released => "released",
        }
    }
}

/// Operations restricted while an account is in arrears (billing-rules §5).
pub const RESTRICTED_OPERATIONS: &[&str] = &[
    "ExeML model training and deployment",
    "One-click model deployment from datasets",
    "Creating and starting notebook instances",
    "Creating training jobs",
    "Creating auto search jobs",
    "Deploying real-time services",
    "Creating dedicated resource pools",
    "Creating models, algorithms or skills in the model hub",
];

/// The reference data of a run: everything but usage.
#[derive(Debug, Clone)]
pub struct Reference {
    pub prices: Vec<PriceRow>,
    pub accounts: Vec<Account>,
    pub payments: Vec<Payment>,
    pub packages: Vec<Package>,
    pub subscriptions: Vec<Subscription>,
}
