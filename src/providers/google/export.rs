//! The one query the collector runs over the standard usage cost export, and what its rows
//! become: spend per service (per SKU for the services named in `sku_services`) and category,
//! credits netted, the usage of those SKUs in base units, and how far the export reaches.
//!
//! The query groups an invoice month's rows by usage day (so that `backfill` has each day's
//! month to date), service, SKU (for `sku_services` only, so the result stays small), usage
//! unit, cost type and currency. Money is summed as NUMERIC (`CAST(cost AS NUMERIC)`, as
//! Google's own examples do for exact totals) and read as decimals. Credits come in two
//! columns: those that are a pot for the month (promotions, free tiers), which the forecast
//! deducts once instead of extrapolating, and those that scale with usage (sustained and
//! committed use discounts, other discounts), netted with the spend they apply to.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use rust_decimal::Decimal;
use serde_json::{Value, json};
use time::Date;

use super::bigquery::{Column, Row, decimal, timestamp};
use super::{NAME, TableRef};
use crate::cost::{Collection, Credit, Skipped, Spend, SpendKind, Unit, Usage, UsageLimit};
use crate::error::{CollectError, Reason};
use crate::money::{Currency, Money, TaxBasis};
use crate::providers::wire;

/// Credit types that are a pot for the month rather than a rate: deducted once by the
/// forecast.
pub(super) const POT_CREDIT_TYPES: &[&str] = &["PROMOTION", "FREE_TIER"];
/// Days after an invoice month whose partitions still hold its rows: the export writes rows
/// into the partition of the day it exports them, and a month's last hours (its invoice month
/// follows US Pacific time, to 08:00 UTC on the 1st), the export's lag and the month's
/// corrections and taxes arrive in the first days of the next month.
pub(super) const LATE_DAYS: i64 = 7;
/// The label of what the top-N bounds leave out.
const OTHER: &str = "other";
/// The longest label value kept from the export.
const LABEL_LEN: usize = 100;

/// The query over `table`: a constant text (the table's validated name aside) with named
/// parameters `@invoice_month`, `@partition_from`, `@partition_to` (DATEs: the partitions
/// read), `@sku_services` and `@pot_credit_types`.
pub(super) fn sql(table: &TableRef) -> String {
    format!(
        "SELECT
  DATE(usage_start_time) AS usage_day,
  service.description AS service,
  IF(service.description IN UNNEST(@sku_services), sku.description, NULL) AS sku,
  IF(service.description IN UNNEST(@sku_services), usage.unit, NULL) AS usage_unit,
  cost_type,
  currency,
  SUM(CAST(cost AS NUMERIC)) AS cost,
  SUM(IFNULL((SELECT SUM(CAST(c.amount AS NUMERIC)) FROM UNNEST(credits) AS c WHERE c.type IN UNNEST(@pot_credit_types)), 0)) AS pot_credits,
  SUM(IFNULL((SELECT SUM(CAST(c.amount AS NUMERIC)) FROM UNNEST(credits) AS c WHERE c.type IS NULL OR c.type NOT IN UNNEST(@pot_credit_types)), 0)) AS other_credits,
  SUM(IF(service.description IN UNNEST(@sku_services), usage.amount, NULL)) AS usage_amount,
  MAX(export_time) AS export_time
FROM `{table}`
WHERE invoice.month = @invoice_month
  AND _PARTITIONDATE >= @partition_from
  AND _PARTITIONDATE < @partition_to
GROUP BY usage_day, service, sku, usage_unit, cost_type, currency"
    )
}

/// The partitions that hold an invoice month's rows: from its 1st to [`LATE_DAYS`] into the
/// next month (exclusive).
pub(super) fn partitions(first: Date) -> (Date, Date) {
    let next = first
        .replace_day(first.month().length(first.year()))
        .ok()
        .and_then(|d| d.next_day())
        .unwrap_or(first);
    (first, next + time::Duration::days(LATE_DAYS))
}

/// The invoice month of a date, as the export writes it: `YYYYMM`.
pub(super) fn invoice_month(first: Date) -> String {
    format!("{:04}{:02}", first.year(), u8::from(first.month()))
}

/// The named parameters of [`sql`].
pub(super) fn params(first: Date, sku_services: &[String]) -> Vec<Value> {
    let (from, to) = partitions(first);
    let scalar = |name: &str, kind: &str, value: String| json!({"name": name, "parameterType": {"type": kind}, "parameterValue": {"value": value}});
    let array = |name: &str, values: Vec<Value>| {
        json!({
            "name": name,
            "parameterType": {"type": "ARRAY", "arrayType": {"type": "STRING"}},
            "parameterValue": {"arrayValues": values},
        })
    };
    vec![
        scalar("invoice_month", "STRING", invoice_month(first)),
        scalar("partition_from", "DATE", from.to_string()),
        scalar("partition_to", "DATE", to.to_string()),
        array(
            "sku_services",
            sku_services.iter().map(|s| json!({"value": s})).collect(),
        ),
        array(
            "pot_credit_types",
            POT_CREDIT_TYPES
                .iter()
                .map(|s| json!({"value": s}))
                .collect(),
        ),
    ]
}

/// The export's `cost_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum CostType {
    /// Usage: metered, extrapolated by the forecast.
    Regular,
    /// Taxes: counted only with `tax = "included"`.
    Tax,
    /// Corrections: billed as they come.
    Adjustment,
    /// What makes the rows add up to the invoice: billed as it comes.
    RoundingError,
    /// A cost type this build does not know: billed, not extrapolated.
    Other,
}

impl CostType {
    fn parse(text: &str) -> CostType {
        match text.trim().to_ascii_lowercase().as_str() {
            "regular" => CostType::Regular,
            "tax" => CostType::Tax,
            "adjustment" => CostType::Adjustment,
            "rounding_error" | "rounding error" => CostType::RoundingError,
            other => {
                tracing::warn!(
                    provider = NAME,
                    cost_type = other,
                    "a billing export row has a cost_type this build does not know: counted as billed (category=\"other\")"
                );
                CostType::Other
            }
        }
    }

    /// The `category` label (Vercel's words where they mean the same).
    fn category(self) -> &'static str {
        match self {
            CostType::Regular => "usage",
            CostType::Tax => "tax",
            CostType::Adjustment => "adjustment",
            CostType::RoundingError => "rounding_error",
            CostType::Other => OTHER,
        }
    }
}

/// One row of the query's result.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Line {
    /// The usage day (UTC); `None` for rows without a usage time.
    pub(super) day: Option<Date>,
    pub(super) service: String,
    /// The SKU, for services of `sku_services`.
    pub(super) sku: Option<String>,
    pub(super) cost_type: CostType,
    pub(super) currency: Currency,
    /// Σ cost.
    pub(super) cost: Decimal,
    /// Σ credits that are a pot for the month (negative).
    pub(super) pot_credits: Decimal,
    /// Σ the other credits (negative).
    pub(super) other_credits: Decimal,
    /// Σ usage.amount in base units, for services of `sku_services`: its `resource`, unit
    /// and value.
    pub(super) usage: Option<(String, Unit, f64)>,
    /// The latest export time of the group.
    pub(super) export_time: Option<time::OffsetDateTime>,
}

/// Reads rows by column name, checking each column's type once.
pub(super) struct Reader {
    index: BTreeMap<&'static str, usize>,
}

/// The columns [`sql`] selects, with the types BigQuery gives them (FLOAT64 is `FLOAT` in the
/// REST schema).
const COLUMNS: &[(&str, &[&str])] = &[
    ("usage_day", &["DATE"]),
    ("service", &["STRING"]),
    ("sku", &["STRING"]),
    ("usage_unit", &["STRING"]),
    ("cost_type", &["STRING"]),
    ("currency", &["STRING"]),
    ("cost", &["NUMERIC", "BIGNUMERIC", "FLOAT", "FLOAT64"]),
    (
        "pot_credits",
        &["NUMERIC", "BIGNUMERIC", "FLOAT", "FLOAT64"],
    ),
    (
        "other_credits",
        &["NUMERIC", "BIGNUMERIC", "FLOAT", "FLOAT64"],
    ),
    (
        "usage_amount",
        &["FLOAT", "FLOAT64", "NUMERIC", "INTEGER", "INT64"],
    ),
    ("export_time", &["TIMESTAMP"]),
];

impl Reader {
    /// Finds every column of [`sql`] in a result's schema.
    pub(super) fn new(columns: &[Column]) -> Result<Reader, CollectError> {
        let mut index = BTreeMap::new();
        for (name, kinds) in COLUMNS {
            let (i, c) = columns
                .iter()
                .enumerate()
                .find(|(_, c)| c.name == *name)
                .ok_or_else(|| {
                    CollectError::new(Reason::Decode, format!("the result has no column {name}"))
                })?;
            if !kinds.contains(&c.kind.as_str()) {
                return Err(CollectError::new(
                    Reason::Decode,
                    format!("column {name} is {}, not {}", c.kind, kinds.join(" or ")),
                ));
            }
            index.insert(*name, i);
        }
        Ok(Reader { index })
    }

    fn cell<'a>(&self, row: &Row<'a>, name: &str) -> Option<&'a str> {
        self.index
            .get(name)
            .and_then(|i| row.get(*i).copied().flatten())
    }

    fn money(&self, row: &Row<'_>, name: &str) -> Result<Decimal, CollectError> {
        match self.cell(row, name) {
            None => Ok(Decimal::ZERO),
            Some(t) => decimal(t).ok_or_else(|| {
                CollectError::new(Reason::Decode, format!("{name} {t:?} is not a number"))
            }),
        }
    }

    /// A row as a [`Line`]; `None` for a row the export's schema allows but the job cannot
    /// place (no currency, or one it does not know), counted in `skipped`. A value the column's
    /// type does not allow is a `decode` error. A SKU's usage in a unit the job does not
    /// convert is left out (its spend counts), and counted too.
    pub(super) fn line(
        &self,
        row: &Row<'_>,
        skipped: &mut Skipped,
    ) -> Result<Option<Line>, CollectError> {
        let bad = |what: String| CollectError::new(Reason::Decode, what);
        let day = match self.cell(row, "usage_day") {
            None => None,
            Some(t) => Some(
                wire::calendar_date(t)
                    .ok_or_else(|| bad(format!("usage_day {t:?} is not a date")))?,
            ),
        };
        let service = label(self.cell(row, "service"), "unattributed");
        let currency = match self.cell(row, "currency") {
            None => {
                skipped.record(
                    "missing_field",
                    format!("a Google billing export row of {service} has no currency"),
                );
                return Ok(None);
            }
            Some(c) => match c.parse::<Currency>() {
                Ok(c) => c,
                Err(_) => {
                    let shown: String = c.chars().take(16).collect();
                    skipped.record(
                        "unknown_currency",
                        format!("a Google billing export row of {service} is in {shown:?}, not a currency the job knows"),
                    );
                    return Ok(None);
                }
            },
        };
        let sku = self
            .cell(row, "sku")
            .map(|s| label(Some(s), "unattributed"));
        let unit = self
            .cell(row, "usage_unit")
            .map(|u| u.trim().to_ascii_lowercase())
            .unwrap_or_default();
        let usage = match (self.cell(row, "usage_amount"), sku.as_deref()) {
            (Some(t), Some(sku)) => {
                let v: f64 = t
                    .trim()
                    .parse()
                    .map_err(|_| bad(format!("usage_amount {t:?} is not a number")))?;
                match resource(&service, sku, &unit) {
                    // NaN and the infinities are FLOAT64 values, but no usage anyone had.
                    _ if !v.is_finite() => {
                        skipped.record(
                            "non_finite_usage",
                            format!("the usage of SKU {sku:?} of {service} is {t}"),
                        );
                        None
                    }
                    Some((resource, unit, factor)) => Some((resource, unit, v * factor)),
                    None => {
                        let shown: String = unit.chars().take(32).collect();
                        skipped.record(
                            "unknown_unit",
                            format!(
                                "the usage of SKU {sku:?} of {service} is in {shown:?}, which the job does not convert (its spend counts)"
                            ),
                        );
                        None
                    }
                }
            }
            _ => None,
        };
        let export_time = match self.cell(row, "export_time") {
            None => None,
            Some(t) => Some(
                timestamp(t).ok_or_else(|| bad(format!("export_time {t:?} is not a timestamp")))?,
            ),
        };
        Ok(Some(Line {
            day,
            service,
            sku,
            cost_type: CostType::parse(self.cell(row, "cost_type").unwrap_or("regular")),
            currency,
            cost: self.money(row, "cost")?,
            pot_credits: self.money(row, "pot_credits")?,
            other_credits: self.money(row, "other_credits")?,
            usage,
            export_time,
        }))
    }
}

/// A bounded label value from the export: trimmed, at most [`LABEL_LEN`] characters, `null`
/// when empty.
fn label(text: Option<&str>, null: &str) -> String {
    match text.map(str::trim) {
        Some(t) if !t.is_empty() => t.chars().take(LABEL_LEN).collect(),
        _ => null.to_owned(),
    }
}

/// How lines become a collection: the job's settings that shape it.
pub(super) struct Shape<'a> {
    pub(super) tax: TaxBasis,
    /// Services with their own label; the rest are `other`.
    pub(super) top_services: usize,
    /// SKUs (of `sku_services`) with their own label; the rest are `other`.
    pub(super) top_skus: usize,
    /// The configured free allowances and caps.
    pub(super) limits: &'a [UsageLimit],
    /// The currency of a month without rows.
    pub(super) currency: Currency,
}

/// Text-to-Speech voice families with a free monthly allowance, as Google's pricing page
/// lists them: (word in the SKU, resource, free characters a month).
pub(super) const TTS_FAMILIES: &[(&str, &str, f64)] = &[
    ("chirp", "tts_chirp3_hd_characters", 1_000_000.0),
    ("studio", "tts_studio_characters", 100_000.0),
    ("neural2", "tts_neural2_characters", 1_000_000.0),
    ("wavenet", "tts_wavenet_characters", 1_000_000.0),
    ("standard", "tts_standard_characters", 4_000_000.0),
];

/// Whether a service is Cloud Text-to-Speech (its SKUs count characters per voice family).
pub(super) fn is_tts(service: &str) -> bool {
    service.to_ascii_lowercase().contains("text-to-speech")
}

/// The `resource`, unit and factor to base units of a SKU's usage; `None` for a unit this
/// build does not convert (its spend still counts).
fn resource(service: &str, sku: &str, unit: &str) -> Option<(String, Unit, f64)> {
    let sku_l = sku.to_ascii_lowercase();
    let countable = matches!(
        unit,
        "" | "count" | "character" | "characters" | "byte" | "bytes"
    );
    if is_tts(service) && countable {
        let name = TTS_FAMILIES
            .iter()
            .find(|(word, _, _)| sku_l.contains(word))
            .map_or("tts_characters", |(_, r, _)| *r);
        return Some((name.to_owned(), Unit::Characters, 1.0));
    }
    let (name, unit, factor) = match unit {
        "" | "count" => {
            if sku_l.contains("token") {
                ("tokens", Unit::Tokens, 1.0)
            } else if sku_l.contains("character") {
                ("characters", Unit::Characters, 1.0)
            } else if sku_l.contains("request") {
                ("requests", Unit::Requests, 1.0)
            } else {
                ("usage", Unit::Count, 1.0)
            }
        }
        "token" | "tokens" => ("tokens", Unit::Tokens, 1.0),
        "character" | "characters" => ("characters", Unit::Characters, 1.0),
        "request" | "requests" => ("requests", Unit::Requests, 1.0),
        "byte" | "bytes" => ("bytes", Unit::Bytes, 1.0),
        "kibibyte" => ("bytes", Unit::Bytes, 1024.0),
        "mebibyte" => ("bytes", Unit::Bytes, 1_048_576.0),
        "gibibyte" => ("bytes", Unit::Bytes, 1_073_741_824.0),
        "tebibyte" => ("bytes", Unit::Bytes, 1_099_511_627_776.0),
        "second" | "seconds" | "s" => ("seconds", Unit::Seconds, 1.0),
        "minute" | "minutes" | "min" => ("seconds", Unit::Seconds, 60.0),
        "hour" | "hours" | "h" => ("seconds", Unit::Seconds, 3600.0),
        "day" | "days" | "d" => ("seconds", Unit::Seconds, 86_400.0),
        _ => return None,
    };
    Some((name.to_owned(), unit, factor))
}

/// One spend series under construction.
#[derive(Debug, Default, Clone, Copy)]
struct Amounts {
    /// Cost with the credits that scale with usage.
    gross: Decimal,
    /// Credits that are a pot for the month (negative).
    pots: Decimal,
}

type SeriesKey = (Currency, String, Option<String>, CostType);

/// One currency's series after netting, and what came off its usage series.
type Netted = (Vec<(SeriesKey, Decimal)>, Option<Credit>);

/// The collection `lines` make (the month to date, or to the end of a day for `backfill`),
/// with `data_as_of` as how far the data reaches.
pub(super) fn collection(
    lines: &[&Line],
    shape: &Shape<'_>,
    data_as_of: Option<SystemTime>,
) -> Result<Collection, CollectError> {
    let counted: Vec<&Line> = lines
        .iter()
        .copied()
        .filter(|l| l.cost_type != CostType::Tax || shape.tax == TaxBasis::Included)
        .collect();
    let net = |l: &Line| -> Result<Decimal, CollectError> {
        let mut v = l.cost;
        wire::add(&mut v, l.pot_credits, "the export's amounts")?;
        wire::add(&mut v, l.other_credits, "the export's amounts")?;
        Ok(v)
    };
    // Bound the labels: the services and SKUs with the most spend keep their names.
    let mut by_service: BTreeMap<&str, Decimal> = BTreeMap::new();
    let mut by_sku: BTreeMap<(&str, &str), Decimal> = BTreeMap::new();
    for l in &counted {
        if l.cost_type == CostType::Tax {
            continue;
        }
        let v = net(l)?.abs();
        let e = by_service.entry(l.service.as_str()).or_default();
        *e = e.saturating_add(v);
        if let Some(sku) = &l.sku {
            let e = by_sku
                .entry((l.service.as_str(), sku.as_str()))
                .or_default();
            *e = e.saturating_add(v);
        }
    }
    let services = top(by_service, shape.top_services);
    let skus = top(by_sku, shape.top_skus);
    let service_label = |l: &Line| -> String {
        if l.cost_type == CostType::Tax {
            "tax".to_owned()
        } else if services.contains(&l.service.as_str()) {
            l.service.clone()
        } else {
            OTHER.to_owned()
        }
    };
    let sku_label = |l: &Line| -> Option<String> {
        let sku = l.sku.as_deref()?;
        if l.cost_type == CostType::Tax {
            return None;
        }
        Some(if skus.contains(&(l.service.as_str(), sku)) {
            sku.to_owned()
        } else {
            OTHER.to_owned()
        })
    };

    let mut series: BTreeMap<SeriesKey, Amounts> = BTreeMap::new();
    let mut usage: BTreeMap<(String, String, String, Unit), f64> = BTreeMap::new();
    for l in &counted {
        let key = (l.currency, service_label(l), sku_label(l), l.cost_type);
        let a = series.entry(key).or_default();
        wire::add(&mut a.gross, l.cost, "the export's amounts")?;
        wire::add(&mut a.gross, l.other_credits, "the export's amounts")?;
        wire::add(&mut a.pots, l.pot_credits, "the export's amounts")?;
        if l.cost_type == CostType::Regular
            && let Some((resource, unit, value)) = &l.usage
        {
            let sku = sku_label(l).unwrap_or_else(|| OTHER.to_owned());
            *usage
                .entry((resource.clone(), service_label(l), sku, *unit))
                .or_default() += value;
        }
    }

    let mut spend = Vec::new();
    let mut credits = Vec::new();
    let currencies: BTreeSet<Currency> = series.keys().map(|k| k.0).collect();
    for currency in currencies {
        let lines: Vec<(SeriesKey, Amounts)> = series
            .iter()
            .filter(|(k, _)| k.0 == currency)
            .map(|(k, a)| (k.clone(), *a))
            .collect();
        let (netted, credit) = net_lines(lines)?;
        if let Some(c) = credit {
            credits.push(c);
        }
        for ((_, service, sku, cost_type), amount) in netted {
            let mut labels = vec![("service", service)];
            if let Some(sku) = sku {
                labels.push(("sku", sku));
            }
            labels.push(("category", cost_type.category().to_owned()));
            spend.push(Spend {
                money: Money { amount, currency },
                kind: if cost_type == CostType::Regular {
                    SpendKind::Metered
                } else {
                    SpendKind::Billed
                },
                labels,
            });
        }
    }
    if spend.is_empty() {
        // No row for the month yet: a known zero.
        spend.push(Spend {
            money: Money {
                amount: Decimal::ZERO,
                currency: shape.currency,
            },
            kind: SpendKind::Metered,
            labels: vec![],
        });
    }
    let usage = usage
        .into_iter()
        .filter(|((resource, _, sku, _), value)| {
            // A correction can leave a SKU's usage below zero: not a usage anyone had.
            let ok = value.is_finite() && *value >= 0.0;
            if !ok {
                tracing::debug!(provider = NAME, %resource, %sku, "the SKU's usage adds up to {value}: not exported");
            }
            ok
        })
        .map(|((resource, service, sku, unit), value)| Usage {
            resource,
            unit,
            value,
            labels: vec![("service", service), ("sku", sku)],
        })
        .collect();
    Ok(Collection {
        usage,
        limits: shape.limits.to_vec(),
        spend,
        data_as_of,
        credits,
        ..Collection::default()
    })
}

/// The `n` keys with the largest amounts (ties by name).
fn top<K: Ord + Copy>(amounts: BTreeMap<K, Decimal>, n: usize) -> BTreeSet<K> {
    let mut ranked: Vec<(K, Decimal)> = amounts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.into_iter().take(n).map(|(k, _)| k).collect()
}

/// Nets one currency's series so that none is negative and they still add up: each series'
/// own pot credits come off it; what is left negative (a refund, credits beyond a series'
/// cost) comes off the usage series, largest first, then the billed ones. What came off the
/// usage series beyond the credits that scale with usage is a [`Credit`]: the forecast
/// extrapolates the usage before it and deducts it once.
fn net_lines(lines: Vec<(SeriesKey, Amounts)>) -> Result<Netted, CollectError> {
    let mut covered = Decimal::ZERO;
    let mut out: Vec<(SeriesKey, Decimal)> = Vec::with_capacity(lines.len());
    let mut pool = Decimal::ZERO;
    for (key, a) in lines {
        if key.3 == CostType::Regular && a.gross.is_sign_positive() {
            wire::add(&mut covered, a.gross, "the export's amounts")?;
        }
        let mut v = a.gross;
        wire::add(&mut v, a.pots, "the export's amounts")?;
        if v.is_sign_negative() && !v.is_zero() {
            pool = pool.saturating_sub(v);
            v = Decimal::ZERO;
        }
        out.push((key, v));
    }
    let mut order: Vec<usize> = (0..out.len()).collect();
    order.sort_by(|a, b| {
        let (la, lb) = (&out[*a], &out[*b]);
        (lb.0.3 == CostType::Regular)
            .cmp(&(la.0.3 == CostType::Regular))
            .then(lb.1.cmp(&la.1))
            .then(a.cmp(b))
    });
    for i in order {
        if pool.is_zero() {
            break;
        }
        let take = out[i].1.min(pool);
        out[i].1 -= take;
        pool -= take;
    }
    if !pool.is_zero() {
        tracing::info!(
            provider = NAME,
            "{pool} of credits exceed this month's charges so far"
        );
    }
    let metered: Decimal = out
        .iter()
        .filter(|(k, _)| k.3 == CostType::Regular)
        .fold(Decimal::ZERO, |acc, (_, v)| acc.saturating_add(*v));
    let applied = (covered - metered).max(Decimal::ZERO);
    let currency = out.first().map(|(k, _)| k.0);
    let credit = match currency {
        Some(currency) if !applied.is_zero() => {
            let money = |amount| Money { amount, currency };
            // Only what was applied so far is known of a promotion's or free tier's pot.
            Some(Credit {
                covered: money(covered),
                applied: money(applied),
                total: money(applied),
            })
        }
        _ => None,
    };
    Ok((out, credit))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn line(service: &str, sku: Option<&str>, cost_type: CostType, cost: &str) -> Line {
        Line {
            day: Date::from_calendar_date(2026, time::Month::November, 3).ok(),
            service: service.into(),
            sku: sku.map(str::to_owned),
            cost_type,
            currency: Currency::USD,
            cost: d(cost),
            pot_credits: Decimal::ZERO,
            other_credits: Decimal::ZERO,
            usage: sku.map(|s| {
                let (r, u, f) = resource(service, s, "count").unwrap();
                (r, u, 1000.0 * f)
            }),
            export_time: None,
        }
    }

    fn shape(tax: TaxBasis) -> Shape<'static> {
        Shape {
            tax,
            top_services: 2,
            top_skus: 1,
            limits: &[],
            currency: Currency::EUR,
        }
    }

    fn amount(c: &Collection, labels: &[(&str, &str)]) -> Option<Decimal> {
        c.spend
            .iter()
            .find(|s| {
                labels.len() == s.labels.len()
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.contains(&(*k, (*v).to_owned())))
            })
            .map(|s| s.money.amount)
    }

    #[test]
    fn the_query_and_its_window_are_the_documented_ones() {
        let t = TableRef {
            project: "p".into(),
            dataset: "d".into(),
            table: "gcp_billing_export_v1_X".into(),
        };
        let q = sql(&t);
        assert!(q.starts_with("SELECT"));
        assert!(q.contains("FROM `p.d.gcp_billing_export_v1_X`"));
        assert!(!q.contains(';'));
        let first = Date::from_calendar_date(2026, time::Month::December, 1).unwrap();
        assert_eq!(invoice_month(first), "202612");
        let (from, to) = partitions(first);
        assert_eq!(from.to_string(), "2026-12-01");
        assert_eq!(to.to_string(), "2027-01-08");
        let p = params(first, &["Gemini API".into()]);
        assert_eq!(p[0]["parameterValue"]["value"], "202612");
        assert_eq!(
            p[3]["parameterValue"]["arrayValues"][0]["value"],
            "Gemini API"
        );
    }

    #[test]
    fn services_are_bounded_taxes_follow_the_basis_and_categories_are_billed() {
        let lines = [
            line("Compute Engine", None, CostType::Regular, "10"),
            line("Cloud Storage", None, CostType::Regular, "3"),
            line("Cloud Run", None, CostType::Regular, "1"),
            line("Cloud Storage", None, CostType::Adjustment, "2"),
            line("Invoice", None, CostType::Tax, "2.8"),
            line("Gemini API", Some("a"), CostType::Regular, "0.5"),
            line("Gemini API", Some("b"), CostType::Regular, "0.25"),
        ];
        let refs: Vec<&Line> = lines.iter().collect();
        let c = collection(&refs, &shape(TaxBasis::Excluded), None).unwrap();
        assert_eq!(
            amount(&c, &[("service", "Compute Engine"), ("category", "usage")]),
            Some(d("10"))
        );
        // Cloud Storage is second (3 + 2): its adjustment is billed, in its own series.
        let adj = c
            .spend
            .iter()
            .find(|s| s.labels.contains(&("category", "adjustment".into())))
            .unwrap();
        assert_eq!(adj.kind, SpendKind::Billed);
        assert_eq!(adj.money.amount, d("2"));
        // The rest is `other`; SKUs of the other services keep their SKU label, bounded too.
        assert_eq!(
            amount(&c, &[("service", "other"), ("category", "usage")]),
            Some(d("1"))
        );
        assert_eq!(
            amount(
                &c,
                &[("service", "other"), ("sku", "a"), ("category", "usage")]
            ),
            Some(d("0.5"))
        );
        assert_eq!(
            amount(
                &c,
                &[
                    ("service", "other"),
                    ("sku", "other"),
                    ("category", "usage")
                ]
            ),
            Some(d("0.25"))
        );
        assert!(amount(&c, &[("service", "tax"), ("category", "tax")]).is_none());
        let total: Decimal = c.spend.iter().map(|s| s.money.amount).sum();
        assert_eq!(total, d("16.75"));
        let c = collection(&refs, &shape(TaxBasis::Included), None).unwrap();
        assert_eq!(
            amount(&c, &[("service", "tax"), ("category", "tax")]),
            Some(d("2.8"))
        );
        // No row yet: a known zero in the configured currency.
        let c = collection(&[], &shape(TaxBasis::Excluded), None).unwrap();
        assert_eq!(c.spend.len(), 1);
        assert_eq!(c.spend[0].money.currency, Currency::EUR);
        assert!(c.spend[0].money.amount.is_zero());
    }

    #[test]
    fn pot_credits_are_deducted_once_and_refunds_come_off_usage() {
        let mut gemini = line("Gemini API", Some("in"), CostType::Regular, "10");
        gemini.pot_credits = d("-4");
        gemini.other_credits = d("-1");
        let mut refund = line("Cloud Storage", None, CostType::Adjustment, "-2");
        refund.pot_credits = Decimal::ZERO;
        let storage = line("Cloud Storage", None, CostType::Regular, "3");
        let lines = [gemini, refund, storage];
        let refs: Vec<&Line> = lines.iter().collect();
        let mut s = shape(TaxBasis::Excluded);
        s.top_services = 10;
        s.top_skus = 10;
        let c = collection(&refs, &s, None).unwrap();
        // 10 − 1 (a discount, netted) − 4 (a promotion) = 5; the −2 refund comes off the
        // largest usage series.
        assert_eq!(
            amount(
                &c,
                &[
                    ("service", "Gemini API"),
                    ("sku", "in"),
                    ("category", "usage")
                ]
            ),
            Some(d("3"))
        );
        assert_eq!(
            amount(
                &c,
                &[("service", "Cloud Storage"), ("category", "adjustment")]
            ),
            Some(d("0"))
        );
        let total: Decimal = c.spend.iter().map(|s| s.money.amount).sum();
        assert_eq!(total, d("6"));
        assert!(c.spend.iter().all(|s| !s.money.amount.is_sign_negative()));
        // Covered: 9 + 3 of usage; 6 came off it (the promotion and the refund).
        assert_eq!(c.credits.len(), 1);
        assert_eq!(c.credits[0].covered.amount, d("12"));
        assert_eq!(c.credits[0].applied.amount, d("6"));
        // The SKU's usage: its name says neither tokens nor characters, so a plain count.
        assert_eq!(c.usage[0].resource, "usage");
        assert_eq!(c.usage[0].unit, Unit::Count);
    }

    #[test]
    fn odd_rows_are_skipped_and_counted_and_bad_values_are_decode_errors() {
        let columns: Vec<Column> = COLUMNS
            .iter()
            .map(|(name, kinds)| Column {
                name: (*name).to_owned(),
                kind: kinds[0].to_owned(),
            })
            .collect();
        let reader = Reader::new(&columns).unwrap();
        // usage_day, service, sku, usage_unit, cost_type, currency, cost, pot, other, usage,
        // export_time
        let row = |currency: Option<&'static str>, unit: &'static str, usage: &'static str| {
            vec![
                Some("2026-11-03"),
                Some("Gemini API"),
                Some("Generate content input token count"),
                Some(unit),
                Some("regular"),
                currency,
                Some("1.5"),
                Some("0"),
                Some("-0.25"),
                Some(usage),
                Some("1.7966E9"),
            ]
        };
        let mut skipped = Skipped::default();
        let line = reader
            .line(&row(Some("USD"), "count", "2.9409958E7"), &mut skipped)
            .unwrap()
            .unwrap();
        assert_eq!(
            line.usage,
            Some(("tokens".into(), Unit::Tokens, 29_409_958.0))
        );
        assert_eq!(line.other_credits, d("-0.25"));
        assert_eq!(
            line.export_time.map(|t| t.unix_timestamp()),
            Some(1_796_600_000)
        );
        assert!(skipped.is_empty());
        assert!(
            reader
                .line(&row(None, "count", "1"), &mut skipped)
                .unwrap()
                .is_none()
        );
        assert!(
            reader
                .line(&row(Some("XYZ"), "count", "1"), &mut skipped)
                .unwrap()
                .is_none()
        );
        // Spend kept, usage left out.
        let line = reader
            .line(&row(Some("USD"), "byte-seconds", "1"), &mut skipped)
            .unwrap()
            .unwrap();
        assert_eq!(line.usage, None);
        let line = reader
            .line(&row(Some("USD"), "count", "NaN"), &mut skipped)
            .unwrap()
            .unwrap();
        assert_eq!(line.usage, None);
        let counts: Vec<(&str, u64)> = skipped.counts().collect();
        assert_eq!(
            counts,
            [
                ("missing_field", 1),
                ("non_finite_usage", 1),
                ("unknown_currency", 1),
                ("unknown_unit", 1)
            ]
        );
        // What the column's type does not allow fails the provider.
        let mut bad = row(Some("USD"), "count", "1");
        bad[6] = Some("1,5");
        assert_eq!(
            reader.line(&bad, &mut skipped).unwrap_err().reason,
            Reason::Decode
        );
    }

    #[test]
    fn sku_usage_takes_base_units_and_tts_voice_families() {
        let cases = [
            (
                "Gemini API",
                "Generate content input token count Gemini 2.5 Flash",
                "count",
                Some(("tokens", Unit::Tokens, 1.0)),
            ),
            (
                "Cloud Text-to-Speech API",
                "Text-to-Speech WaveNet characters",
                "count",
                Some(("tts_wavenet_characters", Unit::Characters, 1.0)),
            ),
            (
                "Cloud Text-to-Speech API",
                "Chirp 3: HD voices",
                "character",
                Some(("tts_chirp3_hd_characters", Unit::Characters, 1.0)),
            ),
            (
                "Cloud Text-to-Speech API",
                "Text-to-Speech Standard voices",
                "byte",
                Some(("tts_standard_characters", Unit::Characters, 1.0)),
            ),
            (
                "Cloud Text-to-Speech API",
                "Instant custom voice",
                "count",
                Some(("tts_characters", Unit::Characters, 1.0)),
            ),
            (
                "Cloud Run",
                "CPU allocation time",
                "second",
                Some(("seconds", Unit::Seconds, 1.0)),
            ),
            (
                "Cloud Storage",
                "Egress",
                "gibibyte",
                Some(("bytes", Unit::Bytes, 1_073_741_824.0)),
            ),
            ("Cloud Storage", "Standard storage", "byte-seconds", None),
        ];
        for (service, sku, unit, want) in cases {
            let got = resource(service, sku, unit);
            assert_eq!(
                got.as_ref().map(|(r, u, f)| (r.as_str(), *u, *f)),
                want,
                "{sku}"
            );
        }
    }
}
