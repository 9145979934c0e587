//! This month's bills: `GET /me/bill` (ids, filtered by date), each bill, and each bill's
//! detail lines, whose `domain` names the service. Amounts are exact: micro-cent integers
//! (`priceInUcents`) where OVH gives them, decimals otherwise.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::Deserialize;
use time::{Date, OffsetDateTime};

use super::auth::Session;
use super::{NAME, Ovh};
use crate::error::{CollectError, Reason};
use crate::money::{ConfigDecimal, Currency, Money, TaxBasis};
use crate::providers::Context;
use crate::providers::wire;

/// Bills in one query before giving up (`pagination`): OVH does not page `/me/bill`.
const MAX_BILLS: usize = 500;
/// Detail lines of one bill before giving up.
const MAX_DETAILS: usize = 1000;
/// The label of amounts no detail line names.
const UNATTRIBUTED: &str = "unattributed";

/// OVH's `order.Price`.
#[derive(Debug, Deserialize)]
pub(super) struct Price {
    #[serde(rename = "currencyCode")]
    currency_code: String,
    #[serde(rename = "priceInUcents", default)]
    price_in_ucents: Option<i64>,
    #[serde(default)]
    value: Option<ConfigDecimal>,
}

impl Price {
    /// The amount, exact: micro-cents (10^-8 of the unit) when given, else the decimal value.
    pub(super) fn money(&self) -> Result<Money, String> {
        let currency = self
            .currency_code
            .parse::<Currency>()
            .map_err(|_| format!("currency {:?} is not a currency", self.currency_code))?;
        let amount = match (self.price_in_ucents, self.value) {
            (Some(u), _) => Decimal::new(u, 8).normalize(),
            (None, Some(v)) => v.0,
            (None, None) => return Err("a price has neither priceInUcents nor value".into()),
        };
        Ok(Money { amount, currency })
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct Bill {
    #[serde(rename = "billId")]
    bill_id: String,
    date: String,
    #[serde(rename = "priceWithoutTax")]
    without_tax: Price,
    #[serde(rename = "priceWithTax")]
    with_tax: Price,
    tax: Price,
}

#[derive(Debug, Deserialize)]
pub(super) struct Detail {
    #[serde(default)]
    domain: Option<String>,
    #[serde(rename = "periodStart", default)]
    period_start: Option<String>,
    #[serde(rename = "totalPrice")]
    total_price: Price,
}

/// What this month's bills say.
#[derive(Debug, Default)]
pub(super) struct MonthBills {
    /// Per currency and service: amounts without tax (detail lines, and what the lines do not
    /// explain of a bill's total as `unattributed`).
    without_tax: BTreeMap<Currency, BTreeMap<String, Decimal>>,
    /// Per currency: the bills' tax.
    tax: BTreeMap<Currency, Decimal>,
    /// Σ priceWithTax and Σ priceWithoutTax, for the tax rate.
    totals: (Decimal, Decimal),
    /// Every detail line's service and period start: what was billed.
    billed: Vec<(String, Option<Date>)>,
    /// The currency of the first bill read, for a zero when there is none.
    pub(super) currency_hint: Option<Currency>,
}

fn bad(what: &str, e: impl std::fmt::Display) -> CollectError {
    CollectError::new(Reason::Decode, format!("{what}: {e}"))
}

/// `domain` as a bounded label value.
fn service_label(domain: Option<&str>) -> String {
    match domain.map(str::trim) {
        Some(d) if !d.is_empty() => d.chars().take(64).collect(),
        _ => UNATTRIBUTED.to_owned(),
    }
}

/// A date-time or a date, as OVH sends either.
pub(super) fn parse_time(text: &str) -> Option<OffsetDateTime> {
    wire::date_time(text)
}

const TOO_LARGE: &str = "the amounts are too large to add up (beyond 7.9e28)";

/// `a + b`, or an error when no decimal can hold it.
fn add(a: Decimal, b: Decimal) -> Result<Decimal, String> {
    a.checked_add(b).ok_or_else(|| TOO_LARGE.to_owned())
}

impl MonthBills {
    /// Spend per currency and service in `basis`: the services by amount, at most `max`
    /// names (the rest `other`), and with tax included the bills' tax as `tax`.
    pub(super) fn spend(
        &self,
        basis: TaxBasis,
        max: usize,
    ) -> Vec<(Currency, Vec<(String, Decimal)>)> {
        let mut out = Vec::new();
        for (currency, names) in &self.without_tax {
            let mut ranked: Vec<(String, Decimal)> =
                names.iter().map(|(n, a)| (n.clone(), *a)).collect();
            ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            if ranked.len() > max {
                let rest = ranked[max..]
                    .iter()
                    .fold(Decimal::ZERO, |acc, (_, a)| acc.saturating_add(*a));
                ranked.truncate(max);
                ranked.push(("other".to_owned(), rest));
            }
            if basis == TaxBasis::Included
                && let Some(tax) = self.tax.get(currency)
                && !tax.is_zero()
            {
                ranked.push(("tax".to_owned(), *tax));
            }
            out.push((*currency, ranked));
        }
        out
    }

    /// Σ with tax ÷ Σ without tax of the month's bills, when there is a bill with an amount.
    pub(super) fn tax_ratio(&self) -> Option<Decimal> {
        let (with, without) = self.totals;
        with.checked_div(without)
    }

    /// Whether a detail line for `name` covers a period starting on or after `at`'s day: the
    /// renewal at `at` is billed already (an early renewal).
    pub(super) fn billed(&self, name: &str, at: OffsetDateTime) -> bool {
        self.billed
            .iter()
            .any(|(n, start)| n == name && start.is_some_and(|s| s >= at.date()))
    }

    /// Adds a bill and its detail lines; an inconsistent bill is a `decode` error.
    pub(super) fn add(&mut self, bill: &Bill, details: Vec<Detail>) -> Result<(), CollectError> {
        self.add_bill(bill, details)
            .map_err(|e| bad(&format!("bill {}", bill.bill_id), e))
    }

    fn add_bill(&mut self, bill: &Bill, details: Vec<Detail>) -> Result<(), String> {
        let without = bill.without_tax.money()?;
        let with = bill.with_tax.money()?;
        let tax = bill.tax.money()?;
        let currency = without.currency;
        if with.currency != currency || tax.currency != currency {
            return Err("the bill's prices are in different currencies".into());
        }
        self.currency_hint.get_or_insert(currency);
        let names = self.without_tax.entry(currency).or_default();
        let mut explained = Decimal::ZERO;
        for d in details {
            let line = d.total_price.money()?;
            if line.currency != currency {
                return Err(format!(
                    "a detail line is in {}, the bill in {currency}",
                    line.currency
                ));
            }
            let name = service_label(d.domain.as_deref());
            explained = add(explained, line.amount)?;
            let e = names.entry(name.clone()).or_default();
            *e = add(*e, line.amount)?;
            let start = d
                .period_start
                .as_deref()
                .and_then(parse_time)
                .map(|t| t.date());
            self.billed.push((name, start));
        }
        let rest = without.amount.checked_sub(explained).ok_or(TOO_LARGE)?;
        if !rest.is_zero() {
            let e = names.entry(UNATTRIBUTED.to_owned()).or_default();
            *e = add(*e, rest)?;
        }
        let t = self.tax.entry(currency).or_default();
        *t = add(*t, tax.amount)?;
        self.totals.0 = add(self.totals.0, with.amount)?;
        self.totals.1 = add(self.totals.1, without.amount)?;
        Ok(())
    }
}

impl Ovh {
    /// The bills dated this month (to now) with their details.
    pub(super) async fn bills(
        &self,
        cx: &Context,
        session: &Session,
    ) -> Result<MonthBills, CollectError> {
        let start = cx.month_start();
        let now = OffsetDateTime::from(cx.now);
        let mut month = MonthBills::default();
        for (_, bill, details) in self.bills_between(cx, session, start, now).await? {
            month.add(&bill, details)?;
        }
        Ok(month)
    }

    /// The bills dated from `start` to `end` (within one month), each with its date and
    /// details, oldest first.
    pub(super) async fn bills_between(
        &self,
        cx: &Context,
        session: &Session,
        start: OffsetDateTime,
        end: OffsetDateTime,
    ) -> Result<Vec<(OffsetDateTime, Bill, Vec<Detail>)>, CollectError> {
        let (from, to) = (wire::rfc3339(start), wire::rfc3339(end));
        let list = self.url("/me/bill", &[("date.from", &from), ("date.to", &to)]);
        let ids: Vec<String> = self.get_json(cx, session, &list).await?;
        if ids.len() > MAX_BILLS {
            return Err(CollectError::new(
                Reason::Pagination,
                format!("more than {MAX_BILLS} bills in a month"),
            ));
        }
        let mut out = Vec::new();
        for id in ids {
            let id = wire::path_segment(&id)
                .ok_or_else(|| bad("GET /me/bill", format!("{id:?} is not a bill id")))?;
            let what = format!("bill {id}");
            let bill: Bill = self
                .get_json(cx, session, &self.url(&format!("/me/bill/{id}"), &[]))
                .await?;
            let date = parse_time(&bill.date)
                .ok_or_else(|| bad(&what, format!("date {:?} is not a date-time", bill.date)))?;
            if date < start || date > end {
                // The list's date filter is the server's; a bill outside the window is not
                // the window's spend.
                tracing::debug!(provider = NAME, bill = %bill.bill_id, "dated outside the window; not counted");
                continue;
            }
            let detail_ids: Vec<String> = self
                .get_json(
                    cx,
                    session,
                    &self.url(&format!("/me/bill/{id}/details"), &[]),
                )
                .await?;
            if detail_ids.len() > MAX_DETAILS {
                return Err(CollectError::new(
                    Reason::Pagination,
                    format!("{what}: more than {MAX_DETAILS} detail lines"),
                ));
            }
            let mut details = Vec::with_capacity(detail_ids.len());
            for d in detail_ids {
                let d = wire::path_segment(&d)
                    .ok_or_else(|| bad(&what, format!("{d:?} is not a detail id")))?;
                details.push(
                    self.get_json::<Detail>(
                        cx,
                        session,
                        &self.url(&format!("/me/bill/{id}/details/{d}"), &[]),
                    )
                    .await?,
                );
            }
            out.push((date, bill, details));
        }
        out.sort_by_key(|(date, _, _)| *date);
        Ok(out)
    }

    /// The tax rate of the most recent bill of the last three months, for renewal prices
    /// when this month has no bill yet.
    pub(super) async fn recent_tax_ratio(
        &self,
        cx: &Context,
        session: &Session,
    ) -> Result<Option<Decimal>, CollectError> {
        let to = cx.month_start();
        let from = to - time::Duration::days(92);
        let list = self.url(
            "/me/bill",
            &[
                ("date.from", &wire::rfc3339(from)),
                ("date.to", &wire::rfc3339(to)),
            ],
        );
        let ids: Vec<String> = self.get_json(cx, session, &list).await?;
        let mut latest: Option<(OffsetDateTime, Decimal)> = None;
        for id in ids.iter().take(12) {
            let Some(id) = wire::path_segment(id) else {
                continue;
            };
            let bill: Bill = self
                .get_json(cx, session, &self.url(&format!("/me/bill/{id}"), &[]))
                .await?;
            let (Some(date), Ok(with), Ok(without)) = (
                parse_time(&bill.date),
                bill.with_tax.money(),
                bill.without_tax.money(),
            ) else {
                continue;
            };
            if without.amount.is_zero() {
                continue;
            }
            if latest.is_none_or(|(d, _)| date > d) {
                latest = Some((date, with.amount / without.amount));
            }
        }
        Ok(latest.map(|(_, r)| r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(ucents: Option<i64>, value: Option<&str>) -> Price {
        Price {
            currency_code: "EUR".into(),
            price_in_ucents: ucents,
            value: value.map(|v| ConfigDecimal(v.parse().unwrap())),
        }
    }

    #[test]
    fn micro_cents_are_exact_and_preferred() {
        let m = price(Some(6_250_000_000), Some("62.4999999"))
            .money()
            .unwrap();
        assert_eq!(m.amount, Decimal::new(625, 1));
        let m = price(None, Some("37.87")).money().unwrap();
        assert_eq!(m.amount.to_string(), "37.87");
        assert!(price(None, None).money().is_err());
        let mut p = price(Some(1), None);
        p.currency_code = "points".into();
        assert!(p.money().is_err());
    }

    #[test]
    fn lines_the_details_do_not_explain_are_unattributed_and_tax_is_its_own_series() {
        let bill = Bill {
            bill_id: "FR1".into(),
            date: "2026-11-04T10:00:00+01:00".into(),
            without_tax: price(Some(10_000_000_000), None),
            with_tax: price(Some(12_000_000_000), None),
            tax: price(Some(2_000_000_000), None),
        };
        let details = vec![
            Detail {
                domain: Some("ns1.example".into()),
                period_start: Some("2026-11-04".into()),
                total_price: price(Some(6_000_000_000), None),
            },
            Detail {
                domain: Some("ns2.example".into()),
                period_start: None,
                total_price: price(Some(3_000_000_000), None),
            },
        ];
        let mut m = MonthBills::default();
        m.add_bill(&bill, details).unwrap();
        let excl = m.spend(TaxBasis::Excluded, 50);
        let sum: Decimal = excl[0].1.iter().map(|(_, a)| *a).sum();
        assert_eq!(sum, Decimal::from(100));
        assert!(
            excl[0]
                .1
                .contains(&(UNATTRIBUTED.into(), Decimal::from(10)))
        );
        let incl = m.spend(TaxBasis::Included, 50);
        let sum: Decimal = incl[0].1.iter().map(|(_, a)| *a).sum();
        assert_eq!(sum, Decimal::from(120));
        assert_eq!(m.tax_ratio(), Some(Decimal::new(12, 1)));
        let at = parse_time("2026-11-04T00:00:00Z").unwrap();
        assert!(m.billed("ns1.example", at));
        assert!(!m.billed("ns2.example", at));
    }
}
