//! Every metric the job exports, in one table, and the rendering of run outcomes into
//! exposition text. The only module that knows metric names.
//!
//! Families are built by hand (`prometheus::proto`) rather than through a `Registry`, because
//! one metric may carry different breakdown labels per provider (`name` for fixed entries,
//! `project` for another). The crate's `TextEncoder` does the escaping.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use prometheus::Encoder;
use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use crate::cost::Target;
use crate::error::Reason;
use crate::money::{Fx, TaxBasis};
use crate::outcome::{ProviderOutcome, State};

/// Gauge or counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A value that goes up and down (everything month-to-date is a gauge: it resets monthly).
    Gauge,
    /// Only `cost_collector_errors_total`, kept monotonic across runs.
    Counter,
}

impl Kind {
    /// As written in the README table.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        }
    }
}

/// One metric: the public interface, documented row by row in the README.
#[derive(Debug)]
pub struct Def {
    /// The metric name.
    pub name: &'static str,
    /// Gauge or counter.
    pub kind: Kind,
    /// Its labels as the README lists them; `provider` comes from the grouping key.
    pub labels: &'static str,
    /// HELP text.
    pub help: &'static str,
}

macro_rules! defs {
    ($($id:ident = $name:literal, $kind:ident, $labels:literal, $help:literal;)*) => {
        $(
            #[doc = $help]
            pub const $id: Def = Def { name: $name, kind: Kind::$kind, labels: $labels, help: $help };
        )*
        /// Every metric, in the order the exposition lists them.
        pub const ALL: &[&Def] = &[$(&$id),*];
    };
}

defs! {
    USAGE = "cost_usage", Gauge, "provider, resource, unit, [breakdown]",
        "Month-to-date usage of a resource, in base units (see the unit label).";
    USAGE_LIMIT = "cost_usage_limit", Gauge, "provider, resource, unit",
        "Included quota or configured cap for a resource, in the same unit as cost_usage.";
    SPEND = "cost_spend", Gauge, "provider, currency, [breakdown]",
        "Month-to-date spend in the reporting currency; the series of a provider add up to its total.";
    METERED_SPEND = "cost_metered_spend", Gauge, "provider, currency",
        "The part of month-to-date spend that grows with usage (what the forecast extrapolates); 0 for a provider of fixed or billed amounts only.";
    EFFECTIVE_SPEND = "cost_effective_spend", Gauge, "provider, currency, [project]",
        "Month-to-date amortized spend after discounts and credits, where the provider reports it apart from the billed amount.";
    BUDGET = "cost_budget", Gauge, "provider, currency",
        "Absolute monthly budget for a provider, in the reporting currency.";
    FORECAST = "cost_forecast", Gauge, "provider, currency",
        "Projected month-end spend: what is known for the month plus metered spend extrapolated over the time its data covers (month to date for the first 48 hours).";
    FX_RATE = "cost_fx_rate", Gauge, "from, to, source",
        "Conversion rate used: 1 unit of `from` is this many units of `to`; source is config or ecb.";
    FX_DATE = "cost_fx_rate_timestamp_seconds", Gauge, "from, to",
        "The day a conversion rate is the reference rate of (Unix time, 00:00 UTC), for dated rates (the ECB's).";
    SOURCE = "cost_collector_source", Gauge, "provider, source",
        "Always 1; which of the provider's data sources answered in the last successful run.";
    UP = "cost_collector_up", Gauge, "provider",
        "1 if the provider's last collection succeeded, 0 if it failed.";
    CONFIGURED = "cost_collector_configured", Gauge, "provider",
        "1 if the provider is collected, 0 if it is known but has no credentials.";
    ERRORS = "cost_collector_errors_total", Counter, "provider, reason",
        "Failed collections since the Pushgateway first saw the provider, by reason.";
    CONSECUTIVE_FAILURES = "cost_collector_consecutive_failures", Gauge, "provider",
        "Runs in a row whose collection of the provider failed; 0 after a success (read back and increased, like the error counter).";
    LAST_RUN_ERRORS = "cost_collector_last_run_errors", Gauge, "provider",
        "Failed collection sources in the last run.";
    DURATION = "cost_collector_duration_seconds", Gauge, "provider",
        "Time the last collection took.";
    LAST_SUCCESS = "cost_collector_last_success_timestamp_seconds", Gauge, "provider",
        "Unix time of the last successful collection.";
    LAST_ATTEMPT = "cost_collector_last_attempt_timestamp_seconds", Gauge, "provider",
        "Unix time of the last collection attempt, successful or not.";
    DATA_AS_OF = "cost_collector_data_as_of_timestamp_seconds", Gauge, "provider",
        "Unix time up to which the provider's figures are complete (billing data lags).";
    RECORDS_SKIPPED = "cost_collector_records_skipped", Gauge, "provider, reason",
        "Records of the provider's answer that the last successful collection left out of its figures (each named in a warning), by reason; absent when none was.";
    RENEWAL_TIME = "cost_renewal_timestamp_seconds", Gauge, "provider, name",
        "Unix time a service or subscription renews (is billed) next.";
    RENEWAL_PRICE = "cost_renewal_price", Gauge, "provider, name, currency",
        "What the next renewal of a service will cost, for its period, in the reporting currency and the job's tax basis.";
    RENEWAL_CURRENT_PRICE = "cost_renewal_current_price", Gauge, "provider, name, currency",
        "What the current period of a service cost, for the same length of period, where the provider says; a renewal price above it is a price increase.";
    RENEWAL_AUTOMATIC = "cost_renewal_automatic", Gauge, "provider, name",
        "1 if the service renews by itself, 0 if it must be renewed by hand (it expires otherwise).";
    USAGE_RESET = "cost_usage_reset_timestamp_seconds", Gauge, "provider, resource",
        "Unix time a resource's usage resets, for quotas whose window is not the calendar month.";
    PLAN = "cost_plan_info", Gauge, "provider, plan",
        "Always 1; the plan or tier the provider reports for the account.";
    PRICE_TABLE = "cost_price_table_timestamp_seconds", Gauge, "provider, source",
        "How recent the model price table used to estimate spend is (Unix time): the day the pinned table was taken, a file's modification time or a URL's Last-Modified; source is pinned, file or url.";
    FORECAST_BASIS = "cost_forecast_basis", Gauge, "basis",
        "Always 1; how the forecast counts what is billed less often than monthly: cash, what this month's invoices will charge (a renewal or invoice in full in the month it falls due, in the provider's billing calendar; nothing for one due in another month).";
    TAX_BASIS = "cost_tax_basis", Gauge, "basis",
        "Always 1; the tax basis of every money figure: excluded (net of VAT and sales tax) or included.";
    BUILD_INFO = "cost_exporter_build_info", Gauge, "version",
        "Always 1; the version of the job that pushed last.";
    LAST_RUN = "cost_exporter_last_run_timestamp_seconds", Gauge, "",
        "Unix time the last run finished collecting.";
    RUN_DURATION = "cost_exporter_run_duration_seconds", Gauge, "",
        "Time the last run took to collect.";
}

/// The figures `backfill` writes for a day: its month-to-date state, as `push` reports it.
pub(crate) const FIGURES: &[&Def] = &[
    &USAGE,
    &USAGE_LIMIT,
    &SPEND,
    &EFFECTIVE_SPEND,
    &BUDGET,
    &FORECAST,
];

/// One sample of a family: the family's definition, its labels (sorted), its value.
pub(crate) type Sample<'a> = (&'static Def, Vec<(&'a str, &'a str)>, f64);

/// Metric families under construction, in first-use order.
#[derive(Debug, Default, Clone)]
pub(crate) struct Families {
    fams: Vec<MetricFamily>,
    /// (family index, sorted labels) → the sample's index in its family: adding a sample is
    /// a hash lookup, not a scan (linear in the number of series overall).
    index: HashMap<(usize, Vec<(String, String)>), usize>,
}

impl Families {
    /// Adds a sample. Labels are sorted; a sample whose labels repeat an existing one is added
    /// to it (collectors pre-aggregate, so this only merges true duplicates). A non-finite
    /// value is dropped with an error log: NaN and infinity are never exported.
    pub(crate) fn add(&mut self, def: &Def, labels: &[(&str, &str)], value: f64) {
        if !value.is_finite() {
            tracing::error!(metric = def.name, "dropping a non-finite value");
            return;
        }
        // A label value from a provider (a project or service name) never carries a secret.
        let mut pairs: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), crate::secret::redact(v).into_owned()))
            .collect();
        pairs.sort();
        let idx = match self.fams.iter().position(|f| f.name() == def.name) {
            Some(i) => i,
            None => {
                let mut f = MetricFamily::default();
                f.set_name(def.name.to_owned());
                f.set_help(def.help.to_owned());
                f.set_field_type(match def.kind {
                    Kind::Gauge => MetricType::GAUGE,
                    Kind::Counter => MetricType::COUNTER,
                });
                self.fams.push(f);
                self.fams.len() - 1
            }
        };
        let fam = &mut self.fams[idx];
        let mut metrics = fam.take_metric();
        match self.index.get(&(idx, pairs.clone())).copied() {
            Some(i) => {
                let m = &mut metrics[i];
                match def.kind {
                    Kind::Gauge => {
                        let v = m.get_gauge().get_value() + value;
                        let mut g = Gauge::default();
                        g.set_value(v);
                        m.set_gauge(g);
                    }
                    Kind::Counter => {
                        let v = m.get_counter().get_value() + value;
                        let mut c = Counter::default();
                        c.set_value(v);
                        m.set_counter(c);
                    }
                }
            }
            None => {
                let mut m = Metric::default();
                m.set_label(
                    pairs
                        .iter()
                        .map(|(k, v)| {
                            let mut l = LabelPair::default();
                            l.set_name(k.clone());
                            l.set_value(v.clone());
                            l
                        })
                        .collect(),
                );
                match def.kind {
                    Kind::Gauge => {
                        let mut g = Gauge::default();
                        g.set_value(value);
                        m.set_gauge(g);
                    }
                    Kind::Counter => {
                        let mut c = Counter::default();
                        c.set_value(value);
                        m.set_counter(c);
                    }
                }
                self.index.insert((idx, pairs), metrics.len());
                metrics.push(m);
            }
        }
        fam.set_metric(metrics);
    }

    /// Every sample of the families in `defs`, family by family in `defs` order.
    pub(crate) fn samples<'a>(&'a self, defs: &[&'static Def]) -> Vec<Sample<'a>> {
        let mut out = Vec::new();
        for def in defs {
            let Some(fam) = self.fams.iter().find(|f| f.name() == def.name) else {
                continue;
            };
            for m in fam.get_metric() {
                let labels = m
                    .get_label()
                    .iter()
                    .map(|l| (l.name(), l.value()))
                    .collect();
                let value = match def.kind {
                    Kind::Gauge => m.get_gauge().get_value(),
                    Kind::Counter => m.get_counter().get_value(),
                };
                out.push((*def, labels, value));
            }
        }
        out
    }

    /// Adds the grouping labels to every sample, for printed output.
    pub(crate) fn with_labels(self, labels: &[(&str, &str)]) -> Families {
        labels
            .iter()
            .fold(self, |f, (name, value)| f.with_label(name, value))
    }

    /// Adds `name="value"` to every sample (the grouping label, for printed output).
    pub(crate) fn with_label(mut self, name: &str, value: &str) -> Families {
        for fam in &mut self.fams {
            let mut metrics = fam.take_metric();
            for m in &mut metrics {
                let mut labels = m.take_label();
                let mut l = LabelPair::default();
                l.set_name(name.to_owned());
                l.set_value(value.to_owned());
                labels.push(l);
                labels.sort_by(|a, b| a.name().cmp(b.name()));
                m.set_label(labels);
            }
            fam.set_metric(metrics);
        }
        self.reindex();
        self
    }

    /// Rebuilds the sample index after the families were changed in bulk.
    fn reindex(&mut self) {
        self.index.clear();
        for (f, fam) in self.fams.iter().enumerate() {
            for (i, m) in fam.get_metric().iter().enumerate() {
                let pairs: Vec<(String, String)> = m
                    .get_label()
                    .iter()
                    .map(|l| (l.name().to_owned(), l.value().to_owned()))
                    .collect();
                self.index.insert((f, pairs), i);
            }
        }
    }

    /// Appends another set's samples (for printing several groups as one exposition, where
    /// each family may appear only once).
    pub(crate) fn extend(&mut self, other: Families) {
        for mut fam in other.fams {
            match self.fams.iter_mut().find(|f| f.name() == fam.name()) {
                Some(mine) => {
                    let mut metrics = mine.take_metric();
                    metrics.extend(fam.take_metric());
                    mine.set_metric(metrics);
                }
                None => self.fams.push(fam),
            }
        }
        self.reindex();
    }

    /// The text exposition format (LF line endings, no timestamps), families in table order.
    pub(crate) fn encode(&self) -> String {
        let mut fams = self.fams.clone();
        fams.sort_by_key(|f| {
            ALL.iter()
                .position(|d| d.name == f.name())
                .unwrap_or(usize::MAX)
        });
        let mut buf = Vec::new();
        // Encoding fails only for an empty family, which `add` never creates.
        if let Err(e) = prometheus::TextEncoder::new().encode(&fams, &mut buf) {
            tracing::error!("cannot encode metrics: {e}");
        }
        String::from_utf8_lossy(&buf).into_owned()
    }
}

/// A decimal as a sample value.
pub(crate) fn money(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(f64::NAN)
}

/// Seconds since the epoch.
pub(crate) fn unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// What the last run left in the Pushgateway that this run continues from.
#[derive(Debug, Default)]
pub(crate) struct PreviousErrors {
    /// `cost_collector_errors_total`: (provider and account, reason) → value.
    pub(crate) totals: BTreeMap<(Target, String), f64>,
    /// `cost_collector_consecutive_failures`: provider and account → value.
    pub(crate) consecutive: BTreeMap<Target, f64>,
}

/// Whether a provider group is replaced (PUT) or only its status names are (POST).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Replace the group: the collection succeeded (or the provider is not configured).
    Put,
    /// Replace only the pushed names: the collection failed, the last good figures stay.
    Post,
}

/// The samples of one provider's group, without the `provider` label (the grouping key
/// carries it), and how to push them.
pub(crate) fn provider_group(
    o: &ProviderOutcome,
    fx: &Fx,
    previous: &PreviousErrors,
    now: SystemTime,
) -> (Families, Method) {
    let mut f = Families::default();
    let cur = fx.reporting().to_string();
    if let Some(b) = o.budget {
        f.add(&BUDGET, &[("currency", &cur)], money(b));
    }
    let failed_sources = match &o.state {
        State::Unconfigured => {
            f.add(&CONFIGURED, &[], 0.0);
            return (f, Method::Put);
        }
        State::Collected(_) => 0,
        State::Failed(errs) => errs.len(),
    };

    f.add(&CONFIGURED, &[], 1.0);
    let mut this_run: BTreeMap<Reason, f64> = BTreeMap::new();
    if let State::Failed(errs) = &o.state {
        for e in errs {
            *this_run.entry(e.reason).or_default() += 1.0;
        }
    }
    for r in Reason::ALL {
        let before = previous
            .totals
            .get(&(o.target.clone(), r.as_str().to_owned()))
            .copied()
            .unwrap_or(0.0);
        let now_count = this_run.get(&r).copied().unwrap_or(0.0);
        f.add(&ERRORS, &[("reason", r.as_str())], before + now_count);
    }
    f.add(&LAST_RUN_ERRORS, &[], failed_sources as f64);
    let in_a_row = match &o.state {
        State::Failed(_) => previous.consecutive.get(&o.target).copied().unwrap_or(0.0) + 1.0,
        _ => 0.0,
    };
    f.add(&CONSECUTIVE_FAILURES, &[], in_a_row);
    f.add(&DURATION, &[], o.duration.as_secs_f64());
    f.add(&LAST_ATTEMPT, &[], unix(now));

    match &o.state {
        State::Collected(r) => {
            f.add(&UP, &[], 1.0);
            f.add(&LAST_SUCCESS, &[], unix(now));
            if let Some(t) = r.data_as_of {
                f.add(&DATA_AS_OF, &[], unix(t));
            }
            for (reason, n) in r.skipped.counts() {
                f.add(&RECORDS_SKIPPED, &[("reason", reason)], n as f64);
            }
            for u in &r.usage {
                let mut labels: Vec<(&str, &str)> =
                    vec![("resource", &u.resource), ("unit", u.unit.as_str())];
                labels.extend(u.labels.iter().map(|(k, v)| (*k, v.as_str())));
                f.add(&USAGE, &labels, u.value);
            }
            for l in &r.limits {
                f.add(
                    &USAGE_LIMIT,
                    &[("resource", &l.resource), ("unit", l.unit.as_str())],
                    l.value,
                );
            }
            for (def, series) in [(&SPEND, &r.spend), (&EFFECTIVE_SPEND, &r.effective_spend)] {
                for (amount, labels) in series {
                    let mut ls: Vec<(&str, &str)> = vec![("currency", &cur)];
                    ls.extend(labels.iter().map(|(k, v)| (*k, v.as_str())));
                    f.add(def, &ls, money(*amount));
                }
            }
            if let Some(metered) = r.metered {
                f.add(&METERED_SPEND, &[("currency", &cur)], money(metered));
            }
            if let Some(source) = r.source {
                f.add(&SOURCE, &[("source", source)], 1.0);
            }
            if let Some(forecast) = r.forecast {
                f.add(&FORECAST, &[("currency", &cur)], money(forecast));
            }
            for (resource, at) in &r.resets {
                f.add(&USAGE_RESET, &[("resource", resource)], unix(*at));
            }
            if let Some(plan) = &r.plan {
                f.add(&PLAN, &[("plan", plan)], 1.0);
            }
            if let Some((source, at)) = r.price_table {
                f.add(&PRICE_TABLE, &[("source", source)], unix(at));
            }
            for rn in &r.renewals {
                let name = rn.name.as_str();
                f.add(&RENEWAL_TIME, &[("name", name)], unix(rn.at));
                f.add(
                    &RENEWAL_PRICE,
                    &[("name", name), ("currency", &cur)],
                    money(rn.price),
                );
                if let Some(p) = rn.current_price {
                    f.add(
                        &RENEWAL_CURRENT_PRICE,
                        &[("name", name), ("currency", &cur)],
                        money(p),
                    );
                }
                if let Some(auto) = rn.automatic {
                    f.add(
                        &RENEWAL_AUTOMATIC,
                        &[("name", name)],
                        if auto { 1.0 } else { 0.0 },
                    );
                }
            }
            (f, Method::Put)
        }
        _ => {
            f.add(&UP, &[], 0.0);
            (f, Method::Post)
        }
    }
}

/// The group of a provider with named accounts (`…/provider/<name>`, no `account`): its
/// total budget over the accounts, which have groups of their own.
pub(crate) fn total_group(budget: Decimal, fx: &Fx) -> Families {
    let mut f = Families::default();
    f.add(
        &BUDGET,
        &[("currency", &fx.reporting().to_string())],
        money(budget),
    );
    f
}

/// The run-level group (`/metrics/job/cost-exporter`).
pub(crate) fn run_group(fx: &Fx, tax: TaxBasis, finished: SystemTime, took: Duration) -> Families {
    let mut f = Families::default();
    f.add(&BUILD_INFO, &[("version", env!("CARGO_PKG_VERSION"))], 1.0);
    f.add(&TAX_BASIS, &[("basis", tax.as_str())], 1.0);
    f.add(&FORECAST_BASIS, &[("basis", "cash")], 1.0);
    f.add(&LAST_RUN, &[], unix(finished));
    f.add(&RUN_DURATION, &[], took.as_secs_f64());
    let to = fx.reporting().to_string();
    for (from, rate) in fx.rates() {
        let pair = [("from", from.code()), ("to", to.as_str())];
        f.add(
            &FX_RATE,
            &[pair[0], pair[1], ("source", rate.source.as_str())],
            money(rate.value),
        );
        if let Some(day) = rate.date {
            f.add(
                &FX_DATE,
                &pair,
                day.midnight().assume_utc().unix_timestamp() as f64,
            );
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_naming_rules() {
        for d in ALL {
            assert!(d.name.starts_with("cost_"), "{}", d.name);
            assert!(
                d.name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{}",
                d.name
            );
            assert_eq!(
                d.name.ends_with("_total"),
                d.kind == Kind::Counter,
                "{}",
                d.name
            );
            assert!(!d.help.is_empty());
        }
    }

    #[test]
    fn duplicates_add_up_and_nan_is_dropped() {
        let mut f = Families::default();
        f.add(&SPEND, &[("currency", "EUR"), ("name", "a")], 1.5);
        f.add(&SPEND, &[("name", "a"), ("currency", "EUR")], 2.0);
        f.add(&SPEND, &[("currency", "EUR"), ("name", "b")], f64::NAN);
        let text = f.encode();
        assert!(
            text.contains("cost_spend{currency=\"EUR\",name=\"a\"} 3.5"),
            "{text}"
        );
        assert!(!text.contains("NaN"), "{text}");
    }

    #[test]
    fn renewals_that_share_a_name_render_as_series_of_their_own() {
        use crate::cost::{Collection, Renewal};
        use crate::money::{Currency, Money};
        let day = |d: u8| -> SystemTime {
            time::Date::from_calendar_date(2026, time::Month::December, d)
                .unwrap()
                .midnight()
                .assume_utc()
                .into()
        };
        let renewal = |id: &str, d| Renewal {
            name: "Pro Plan".into(),
            id: Some(id.into()),
            at: day(d),
            price: Money {
                amount: Decimal::from(20),
                currency: Currency::USD,
            },
            current_price: None,
            automatic: Some(true),
        };
        let c = Collection {
            renewals: vec![renewal("zone-b", 20), renewal("zone-a", 10)],
            ..Collection::default()
        };
        let fx = Fx::new(Currency::USD, Default::default());
        let out = crate::outcome::assess(
            vec![("p".into(), Ok(c), Duration::ZERO)],
            &Default::default(),
            |_| None,
            &fx,
            day(1),
        );
        let (fams, _) = provider_group(&out[0], &fx, &PreviousErrors::default(), day(1));
        let text = fams.encode();
        // Each a real date (2026-12-10 and -20), never one series of two summed.
        for needle in [
            "cost_renewal_timestamp_seconds{name=\"Pro Plan (zone-a)\"} 1796860800",
            "cost_renewal_timestamp_seconds{name=\"Pro Plan (zone-b)\"} 1797724800",
            "cost_renewal_automatic{name=\"Pro Plan (zone-b)\"} 1",
        ] {
            assert!(text.contains(needle), "{needle} not in {text}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let mut f = Families::default();
        f.add(&SPEND, &[("currency", "EUR"), ("name", "a\"b\\c\nd")], 1.0);
        assert!(
            f.encode().contains(r#"name="a\"b\\c\nd""#),
            "{}",
            f.encode()
        );
    }
}
