//! Plain data that collectors return: usage, limits and spend. No Prometheus types here.
//!
//! Collectors fill a [`Collection`]; `run` converts its money to the reporting currency and
//! `metrics` renders it. Label names are `&'static str` so that only code, never a provider
//! response, decides which labels exist; label *values* are bounded by the collectors.

use std::collections::BTreeMap;
use std::time::SystemTime;

use rust_decimal::Decimal;

use crate::calendar::Month;
use crate::money::{Currency, Money};

/// Whose figures: a provider, and which of its named accounts (none for a provider section
/// without `accounts`, the single unnamed account, exactly as before accounts existed).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target {
    /// The provider (the `provider` label).
    pub provider: String,
    /// The named account (the `account` label), if any.
    pub account: Option<String>,
}

impl Target {
    /// A provider's unnamed account.
    pub fn provider(name: &str) -> Target {
        Target {
            provider: name.to_owned(),
            account: None,
        }
    }

    /// Account `account` of `provider`.
    pub fn account(provider: &str, account: &str) -> Target {
        Target {
            provider: provider.to_owned(),
            account: Some(account.to_owned()),
        }
    }

    /// The grouping labels: `provider`, and `account` when named.
    pub fn labels(&self) -> Vec<(&'static str, &str)> {
        let mut out = vec![("provider", self.provider.as_str())];
        if let Some(a) = &self.account {
            out.push(("account", a.as_str()));
        }
        out
    }
}

impl From<&str> for Target {
    /// A provider's unnamed account.
    fn from(provider: &str) -> Target {
        Target::provider(provider)
    }
}

impl std::fmt::Display for Target {
    /// `acme`, or `acme/client-a`: as `--only` takes it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.account {
            None => f.write_str(&self.provider),
            Some(a) => write!(f, "{}/{a}", self.provider),
        }
    }
}

/// Extra labels on a series, beyond the ones its metric always has.
pub type Labels = Vec<(&'static str, String)>;

/// Base units for `cost_usage` and `cost_usage_limit` (the `unit` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Unit {
    /// Bytes (decimal multiples are converted by the collector).
    Bytes,
    /// Seconds.
    Seconds,
    /// Requests or invocations.
    Requests,
    /// Tokens of an AI model.
    Tokens,
    /// Objects in a bucket.
    Objects,
    /// Table rows.
    Rows,
    /// Users.
    Users,
    /// Gigabyte-hours of provisioned memory (a provider's own unit; no smaller base unit exists).
    GigabyteHours,
    /// Gigabyte-months of storage, averaged over the month as the provider bills it.
    GigabyteMonths,
    /// Characters (or credits) of a text-to-speech quota.
    Characters,
    /// A plain count of things (builds, or a provider unit this build does not know).
    Count,
}

impl Unit {
    /// The `unit` label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Unit::Bytes => "bytes",
            Unit::Seconds => "seconds",
            Unit::Requests => "requests",
            Unit::Tokens => "tokens",
            Unit::Objects => "objects",
            Unit::Rows => "rows",
            Unit::Users => "users",
            Unit::GigabyteHours => "gigabyte_hours",
            Unit::GigabyteMonths => "gigabyte_months",
            Unit::Characters => "characters",
            Unit::Count => "count",
        }
    }
}

/// Month-to-date usage of one resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    /// What is used, in snake_case: `function_invocations`, `database_size`.
    pub resource: String,
    /// The base unit of `value`.
    pub unit: Unit,
    /// Finite and not negative.
    pub value: f64,
    /// Breakdown labels such as `project`.
    pub labels: Labels,
}

/// The included quota or configured cap for a resource.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageLimit {
    /// Matches a [`Usage::resource`].
    pub resource: String,
    /// Matches the usage's unit.
    pub unit: Unit,
    /// Finite and not negative.
    pub value: f64,
}

/// How a spend figure grows over the month, which decides how the forecast treats it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpendKind {
    /// A fixed monthly amount: already the month's total.
    Fixed,
    /// Accrued so far this month; the forecast extrapolates it.
    Metered,
    /// Usage charged beyond a monthly allowance: metered, but the forecast projects the usage
    /// to the month's end and charges what exceeds the allowance, instead of extrapolating
    /// the charge so far (which is 0 until the allowance is used up).
    Overage(Allowance),
    /// Billed this month on the provider's own days (renewals, purchases): counted as billed,
    /// never extrapolated; what is still due this month comes as [`Collection::due`].
    Billed,
}

/// Usage against a monthly allowance and the price of what exceeds it.
///
/// The charge for a usage `u` is `price × ⌈max(0, u − included) ÷ unit⌉`: the overage rounded
/// up to whole billing units (a million requests, a GB-month), each at `price` in the spend's
/// currency. Month to date it is the charge of `used`; the forecast charges the usage
/// projected to the month's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    /// Usage so far this month.
    pub used: Decimal,
    /// Included in the month.
    pub included: Decimal,
    /// The billing unit the overage is counted in (1 where it is not rounded).
    pub unit: Decimal,
    /// The price of one unit beyond the allowance.
    pub price: Decimal,
}

impl Allowance {
    /// The charge for `used` of usage; `None` when it cannot be represented.
    pub fn charge(&self, used: Decimal) -> Option<Decimal> {
        let over = used.checked_sub(self.included)?;
        if over <= Decimal::ZERO {
            return Some(Decimal::ZERO);
        }
        over.checked_div(self.unit)?.ceil().checked_mul(self.price)
    }

    /// The spend record of this allowance month to date, in `currency` (`None` when the
    /// charge cannot be represented).
    pub fn spend(self, currency: Currency, labels: Labels) -> Option<Spend> {
        Some(Spend {
            money: Money {
                amount: self.charge(self.used)?,
                currency,
            },
            kind: SpendKind::Overage(self),
            labels,
        })
    }
}

/// Month-to-date spend, in the currency the provider reported.
///
/// The spend records of one provider are disjoint: their sum is the provider's total.
#[derive(Debug, Clone, PartialEq)]
pub struct Spend {
    /// Amount and currency.
    pub money: Money,
    /// Fixed or metered.
    pub kind: SpendKind,
    /// Breakdown labels: `name` for fixed entries, `service`, `project`, `model`.
    pub labels: Labels,
}

/// What one collector found for one provider.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Collection {
    /// Usage figures.
    pub usage: Vec<Usage>,
    /// Quotas and caps.
    pub limits: Vec<UsageLimit>,
    /// Spend figures.
    pub spend: Vec<Spend>,
    /// Amortized spend after discounts and credits, where the provider reports it apart
    /// from the billed amount (FOCUS `EffectiveCost`).
    pub effective_spend: Vec<Spend>,
    /// How far the provider's data reaches: the end of the last complete bucket for sources
    /// that lag (a daily report without today), the run's time for live figures. The forecast
    /// extrapolates this collection's metered spend over the month up to here.
    pub data_as_of: Option<SystemTime>,
    /// Which of a collector's sources answered, for a provider with several (`charges` or
    /// `usage`, say).
    pub source: Option<&'static str>,
    /// Amounts still due before the month ends and not yet billed (a renewal later this
    /// month): in the forecast only, never in month-to-date spend.
    pub due: Vec<Spend>,
    /// Services and subscriptions with their next renewal.
    pub renewals: Vec<Renewal>,
    /// When a resource's usage resets, for quotas whose window is not the calendar month.
    pub resets: Vec<(String, SystemTime)>,
    /// The plan or tier the account is on, where the provider says.
    pub plan: Option<String>,
    /// The price table spend was estimated with, where some was: its source (`pinned`,
    /// `file`, `url`) and how recent its prices are.
    pub price_table: Option<(&'static str, SystemTime)>,
    /// Credits already deducted from this collection's metered spend. The forecast
    /// extrapolates the metered spend before them and deducts each once, up to its total.
    pub credits: Vec<Credit>,
    /// Records the provider's answer holds (and its description allows) that were left out
    /// of these figures: the collection still succeeds with the rest.
    pub skipped: Skipped,
    /// The billing month these figures belong to, in the provider's calendar; the run's UTC
    /// month when `None`. The forecast extrapolates over it.
    pub month: Option<Month>,
}

/// Warnings about records logged per reason before the rest are only counted.
const SKIP_WARNINGS: u64 = 5;

/// Records left out of a collection, counted by reason.
///
/// A record the provider's description allows but the job cannot price or place (an unknown
/// unit, a missing optional field, an unknown currency on one line) is skipped with a warning
/// naming it, and the provider still succeeds with the rest; only an answer the description
/// does not allow is a `decode` error. The reasons are `&'static str` chosen by code
/// (`unknown_unit`, `missing_field`, …), so the `reason` label stays bounded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Skipped {
    counts: BTreeMap<&'static str, u64>,
}

impl Skipped {
    /// Counts one skipped record and logs a warning naming it (`what`: the record and why, no
    /// secret); past a few warnings per reason the rest are only counted, and said so once.
    pub(crate) fn record(&mut self, reason: &'static str, what: impl std::fmt::Display) {
        let n = self.counts.entry(reason).or_default();
        *n += 1;
        if *n <= SKIP_WARNINGS {
            tracing::warn!(reason, "skipped a record: {what}");
        } else if *n == SKIP_WARNINGS + 1 {
            tracing::warn!(
                reason,
                "more records skipped for the same reason; counted in cost_collector_records_skipped without a warning each"
            );
        }
    }

    /// Skipped records by reason, in reason order.
    pub fn counts(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.counts.iter().map(|(r, n)| (*r, *n))
    }

    /// Whether nothing was skipped.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Adds another source's counts.
    pub(crate) fn merge(&mut self, other: Skipped) {
        for (reason, n) in other.counts {
            *self.counts.entry(reason).or_default() += n;
        }
    }
}

/// A credit against metered spend (a plan's included compute credit, a provider's usage
/// credit): the three amounts in one currency, positive.
///
/// The metered spend figures are already net of `applied`. The forecast extrapolates the
/// metered spend before it, then deducts `min(total, covered × f)`: the credit cannot exceed
/// its total for the month, nor the month's extrapolated spend of what it covers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Credit {
    /// Month-to-date metered spend (before the credit) of the lines the credit applies to.
    pub covered: Money,
    /// How much of it the credit took off so far: at most `covered` and `total`.
    pub applied: Money,
    /// The credit for the whole month, where known; else what was applied so far.
    pub total: Money,
}

/// When a service or subscription renews next, and what it will cost then.
#[derive(Debug, Clone, PartialEq)]
pub struct Renewal {
    /// The service (`name` label): a server, a plan.
    pub name: String,
    /// The provider's id for it, where it has one: renewals that share a name (two zones on
    /// "Pro Plan") are told apart by it, each its own series.
    pub id: Option<String>,
    /// When it renews (is billed) next.
    pub at: SystemTime,
    /// What the renewal will cost, for its period.
    pub price: Money,
    /// What the current period cost, for the same length of period, where known: a renewal
    /// above it is a price increase.
    pub current_price: Option<Money>,
    /// Whether it renews by itself, where known.
    pub automatic: Option<bool>,
}

impl Collection {
    /// Adds another source's figures for the same provider.
    pub(crate) fn merge(&mut self, other: Collection) {
        self.usage.extend(other.usage);
        self.limits.extend(other.limits);
        self.spend.extend(other.spend);
        self.effective_spend.extend(other.effective_spend);
        self.due.extend(other.due);
        self.renewals.extend(other.renewals);
        self.resets.extend(other.resets);
        self.credits.extend(other.credits);
        self.skipped.merge(other.skipped);
        self.month = self.month.or(other.month);
        self.price_table = self.price_table.or(other.price_table);
        self.plan = self.plan.take().or(other.plan);
        self.source = self.source.or(other.source);
        self.data_as_of = match (self.data_as_of, other.data_as_of) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}
