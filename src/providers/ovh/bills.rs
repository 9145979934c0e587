//! The month's bills and credit notes: `GET /me/bill` and `GET /me/refund` (ids, filtered by
//! date), each document, and its detail lines, whose `domain` names the service. A credit note
//! (OVH's "refund") is netted in the month it is issued, per service where its lines name one.
//! Amounts are exact: micro-cent integers (`priceInUcents`) where OVH gives them, decimals
//! otherwise.
//!
//! OVH's description marks no field required, and its currency enum has two codes that are no
//! money (`points`, `N/A`) and one this build cannot convert (`LTL`, retired): a document
//! without a date or a price, or in such a currency, is left out and counted as skipped
//! (`missing_field`, `non_money_currency`, `unknown_currency`, `mixed_currency`); a detail
//! line the job cannot place is counted the same way and its amount stays in its document's
//! total as `unattributed`. A currency outside the enum is an answer the description does not
//! allow: a `decode` error.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use rust_decimal::Decimal;
use serde::Deserialize;
use time::{Date, OffsetDateTime};

use super::auth::Session;
use super::{NAME, Ovh};
use crate::calendar::{Calendar, Month};
use crate::cost::Skipped;
use crate::error::{CollectError, Reason};
use crate::money::{ConfigDecimal, Currency, Money, TaxBasis};
use crate::providers::Context;
use crate::providers::wire;

/// Documents of one kind in one query before giving up (`pagination`): OVH does not page
/// `/me/bill` nor `/me/refund`.
const MAX_BILLS: usize = 500;
/// Detail lines of one document before giving up.
const MAX_DETAILS: usize = 1000;
/// The label of amounts no detail line names.
const UNATTRIBUTED: &str = "unattributed";
/// `order.CurrencyCodeEnum`: the codes OVH's description allows.
const OVH_CURRENCIES: &[&str] = &[
    "AUD", "CAD", "CZK", "EUR", "GBP", "INR", "LTL", "MAD", "N/A", "PLN", "SGD", "TND", "USD",
    "XOF", "points",
];
/// Codes of the enum that are no money.
const NON_MONEY: &[&str] = &["N/A", "points"];

/// Whether OVH's description lets an amount be in `currency`: the codes of its enum that are
/// money.
pub(super) fn ovh_bills_in(currency: Currency) -> bool {
    let code = currency.code();
    OVH_CURRENCIES.contains(&code) && !NON_MONEY.contains(&code)
}

/// The codes of OVH's enum that are money, for messages.
pub(super) fn ovh_money_codes() -> String {
    OVH_CURRENCIES
        .iter()
        .filter(|c| !NON_MONEY.contains(c))
        .copied()
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a record is left out: the `reason` it is counted under, and what to say.
pub(super) type Skip = (&'static str, String);

/// OVH's `order.Price`.
#[derive(Debug, Deserialize)]
pub(super) struct Price {
    #[serde(rename = "currencyCode", default)]
    currency_code: Option<String>,
    #[serde(rename = "priceInUcents", default)]
    price_in_ucents: Option<i64>,
    #[serde(default)]
    value: Option<ConfigDecimal>,
}

impl Price {
    /// The amount, exact: micro-cents (10^-8 of the unit) when given, else the decimal value.
    /// `Ok(Err(..))`: a price the description allows that is no money the job can count;
    /// `Err`: a currency outside the description's enum.
    pub(super) fn money(&self) -> Result<Result<Money, Skip>, String> {
        let Some(code) = self.currency_code.as_deref() else {
            return Ok(Err((
                "missing_field",
                "a price without currencyCode".into(),
            )));
        };
        if !OVH_CURRENCIES.contains(&code) {
            let code: String = code.chars().take(32).collect();
            return Err(format!(
                "currencyCode {code:?} is not in the description's enum"
            ));
        }
        if NON_MONEY.contains(&code) {
            return Ok(Err((
                "non_money_currency",
                format!("a price in {code:?}, no money"),
            )));
        }
        let Ok(currency) = code.parse::<Currency>() else {
            return Ok(Err((
                "unknown_currency",
                format!("a price in {code}, a currency this build cannot convert"),
            )));
        };
        let amount = match (self.price_in_ucents, self.value) {
            (Some(u), _) => Decimal::new(u, 8).normalize(),
            (None, Some(v)) => v.0,
            (None, None) => {
                return Ok(Err((
                    "missing_field",
                    "a price with neither priceInUcents nor value".into(),
                )));
            }
        };
        Ok(Ok(Money { amount, currency }))
    }
}

/// A bill (`billing.Bill`) or a credit note (`billing.Refund`): the fields the job reads.
#[derive(Debug, Deserialize)]
pub(super) struct Document {
    #[serde(default)]
    date: Option<String>,
    #[serde(rename = "priceWithoutTax", default)]
    without_tax: Option<Price>,
    #[serde(rename = "priceWithTax", default)]
    with_tax: Option<Price>,
    #[serde(default)]
    tax: Option<Price>,
}

/// A detail line (`billing.BillDetail` or `billing.RefundDetail`).
#[derive(Debug, Deserialize)]
pub(super) struct Detail {
    #[serde(default)]
    domain: Option<String>,
    /// Bills' lines only.
    #[serde(rename = "periodStart", default)]
    period_start: Option<String>,
    #[serde(rename = "totalPrice", default)]
    total_price: Option<Price>,
}

/// Which kind of document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `/me/bill`: amounts charged.
    Bill,
    /// `/me/refund`: a credit note, amounts given back.
    Refund,
}

impl Kind {
    fn path(self) -> &'static str {
        match self {
            Kind::Bill => "/me/bill",
            Kind::Refund => "/me/refund",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Bill => "bill",
            Kind::Refund => "credit note",
        }
    }
}

/// A document read, with its id (from the list), kind, date and detail lines.
#[derive(Debug)]
pub(super) struct Dated {
    pub(super) id: String,
    pub(super) kind: Kind,
    pub(super) date: OffsetDateTime,
    pub(super) doc: Document,
    pub(super) details: Vec<Detail>,
}

/// What the month's bills and credit notes say.
#[derive(Debug, Default)]
pub(super) struct MonthBills {
    /// Per currency and service: amounts without tax (detail lines, and what the lines do not
    /// explain of a document's total as `unattributed`); credit notes negative.
    without_tax: BTreeMap<Currency, BTreeMap<String, Decimal>>,
    /// Per currency: the tax of the bills less that of the credit notes.
    tax: BTreeMap<Currency, Decimal>,
    /// Σ priceWithTax and Σ priceWithoutTax of the bills, for the tax rate.
    totals: (Decimal, Decimal),
    /// Every bill line's service and period start: what was billed.
    billed: Vec<(String, Option<Date>)>,
    /// The currency of the first document read, for a zero when there is none.
    pub(super) currency_hint: Option<Currency>,
    /// Documents and lines left out, by reason.
    pub(super) skipped: Skipped,
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

/// The day `t` falls on in Paris time, where OVH cuts its days and months.
pub(super) fn paris_day(t: OffsetDateTime) -> Date {
    Calendar::Paris.local(t.into()).date()
}

/// `t` as a `date.from`/`date.to` filter: RFC 3339 in Paris time, as OVH dates its bills
/// (`2026-12-01T00:00:00+01:00`), so the filter covers OVH's month whether the server compares
/// instants or the local times it stores.
pub(super) fn query_time(t: SystemTime) -> String {
    wire::rfc3339(Calendar::Paris.local(t))
}

const TOO_LARGE: &str = "the amounts are too large to add up (beyond 7.9e28)";

/// `a + b`, or an error when no decimal can hold it.
fn add(a: Decimal, b: Decimal) -> Result<Decimal, String> {
    a.checked_add(b).ok_or_else(|| TOO_LARGE.to_owned())
}

/// A credit note's amount as a deduction: negative whatever sign OVH writes it with (the
/// description does not say).
fn credit(amount: Decimal) -> Decimal {
    -amount.abs()
}

impl MonthBills {
    /// Spend per currency and service in `basis`: the services by amount, at most `max`
    /// names (the rest `other`), and with tax included the bills' tax as `tax`. A service
    /// whose credit notes exceed its bills is negative here: the caller nets it.
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

    /// Whether a bill line for `name` covers a period starting on or after `at`'s day (in
    /// Paris time): the renewal at `at` is billed already (early, or on its day).
    pub(super) fn billed(&self, name: &str, at: OffsetDateTime) -> bool {
        let day = paris_day(at);
        self.billed
            .iter()
            .any(|(n, start)| n == name && start.is_some_and(|s| s >= day))
    }

    /// Adds a bill or credit note and its lines. One the job cannot count is skipped (and
    /// counted); one the description does not allow, or amounts no decimal can hold, are a
    /// `decode` error.
    pub(super) fn add(&mut self, d: &Dated) -> Result<(), CollectError> {
        let what = format!("{} {}", d.kind.name(), d.id);
        match self.add_document(d) {
            Ok(Ok(())) => Ok(()),
            Ok(Err((reason, why))) => {
                self.skipped.record(reason, format!("{what}: {why}"));
                Ok(())
            }
            Err(e) => Err(bad(&what, e)),
        }
    }

    fn add_document(&mut self, d: &Dated) -> Result<Result<(), Skip>, String> {
        let price = |p: &Option<Price>, field: &str| -> Result<Result<Money, Skip>, String> {
            match p {
                None => Ok(Err(("missing_field", format!("no {field}")))),
                Some(p) => Ok(p
                    .money()?
                    .map_err(|(r, why)| (r, format!("{field}: {why}")))),
            }
        };
        let without = match price(&d.doc.without_tax, "priceWithoutTax")? {
            Ok(m) => m,
            Err(skip) => return Ok(Err(skip)),
        };
        let with = match price(&d.doc.with_tax, "priceWithTax")? {
            Ok(m) => m,
            Err(skip) => return Ok(Err(skip)),
        };
        let tax = match price(&d.doc.tax, "tax")? {
            Ok(m) => m,
            Err(skip) => return Ok(Err(skip)),
        };
        let currency = without.currency;
        if with.currency != currency || tax.currency != currency {
            return Ok(Err((
                "mixed_currency",
                "its prices are in different currencies".into(),
            )));
        }
        // Lines first: a document fails or counts whole.
        let sign = |a: Decimal| match d.kind {
            Kind::Bill => a,
            Kind::Refund => credit(a),
        };
        let mut lines = Vec::with_capacity(d.details.len());
        let mut explained = Decimal::ZERO;
        for (i, line) in d.details.iter().enumerate() {
            let at = format!("{} {}, line {}", d.kind.name(), d.id, i + 1);
            let money = match &line.total_price {
                None => Err(("missing_field", "no totalPrice".to_owned())),
                Some(p) => p.money()?,
            };
            let money = match money {
                Ok(m) if m.currency != currency => Err((
                    "mixed_currency",
                    format!("in {}, the document in {currency}", m.currency),
                )),
                other => other,
            };
            match money {
                Ok(m) => {
                    let amount = sign(m.amount);
                    explained = add(explained, amount)?;
                    lines.push((service_label(line.domain.as_deref()), amount, line));
                }
                Err((reason, why)) => {
                    // Its amount stays in the document's total, as unattributed.
                    self.skipped.record(reason, format!("{at}: {why}"));
                }
            }
        }
        let total = sign(without.amount);
        let rest = total.checked_sub(explained).ok_or(TOO_LARGE)?;
        self.currency_hint.get_or_insert(currency);
        let names = self.without_tax.entry(currency).or_default();
        for (name, amount, line) in lines {
            let e = names.entry(name.clone()).or_default();
            *e = add(*e, amount)?;
            if d.kind == Kind::Bill {
                let start = line
                    .period_start
                    .as_deref()
                    .and_then(parse_time)
                    .map(paris_day);
                self.billed.push((name, start));
            }
        }
        if !rest.is_zero() {
            let e = names.entry(UNATTRIBUTED.to_owned()).or_default();
            *e = add(*e, rest)?;
        }
        let t = self.tax.entry(currency).or_default();
        *t = add(*t, sign(tax.amount))?;
        if d.kind == Kind::Bill {
            self.totals.0 = add(self.totals.0, with.amount)?;
            self.totals.1 = add(self.totals.1, without.amount)?;
        }
        Ok(Ok(()))
    }
}

impl Ovh {
    /// The bills and credit notes dated in OVH's `month` (Paris time) up to now, with their
    /// details.
    pub(super) async fn bills(
        &self,
        cx: &Context,
        session: &Session,
        month: &Month,
    ) -> Result<MonthBills, CollectError> {
        let start = OffsetDateTime::from(month.start);
        let now = OffsetDateTime::from(cx.now.min(month.end - Duration::from_secs(1)));
        let mut month = MonthBills::default();
        for d in self
            .documents_between(cx, session, start, now, &mut month.skipped)
            .await?
        {
            month.add(&d)?;
        }
        Ok(month)
    }

    /// The bills and credit notes dated from `start` to `end`, both included (within one
    /// month), each with its details, oldest first. One without a date is skipped into
    /// `skipped`.
    pub(super) async fn documents_between(
        &self,
        cx: &Context,
        session: &Session,
        start: OffsetDateTime,
        end: OffsetDateTime,
        skipped: &mut Skipped,
    ) -> Result<Vec<Dated>, CollectError> {
        let mut out = Vec::new();
        for kind in [Kind::Bill, Kind::Refund] {
            self.read_kind(cx, session, kind, start, end, skipped, &mut out)
                .await?;
        }
        out.sort_by_key(|d| d.date);
        Ok(out)
    }

    /// One kind of document dated from `start` to `end`, appended to `out`.
    #[allow(clippy::too_many_arguments)]
    async fn read_kind(
        &self,
        cx: &Context,
        session: &Session,
        kind: Kind,
        start: OffsetDateTime,
        end: OffsetDateTime,
        skipped: &mut Skipped,
        out: &mut Vec<Dated>,
    ) -> Result<(), CollectError> {
        let (from, to) = (query_time(start.into()), query_time(end.into()));
        let list = self.url(kind.path(), &[("date.from", &from), ("date.to", &to)]);
        let ids: Vec<String> = self.get_json(cx, session, &list).await?;
        if ids.len() > MAX_BILLS {
            return Err(CollectError::new(
                Reason::Pagination,
                format!("more than {MAX_BILLS} {}s in a month", kind.name()),
            ));
        }
        for id in ids {
            let id = wire::path_segment(&id)
                .ok_or_else(|| {
                    bad(
                        &format!("GET {}", kind.path()),
                        format!("{:?} is not an id", id.chars().take(40).collect::<String>()),
                    )
                })?
                .to_owned();
            let what = format!("{} {id}", kind.name());
            let doc: Document = self
                .get_json(
                    cx,
                    session,
                    &self.url(&format!("{}/{id}", kind.path()), &[]),
                )
                .await?;
            let Some(text) = doc.date.as_deref() else {
                skipped.record("missing_field", format!("{what}: no date"));
                continue;
            };
            let date = parse_time(text).ok_or_else(|| {
                let text: String = text.chars().take(40).collect();
                bad(&what, format!("date {text:?} is not a date-time"))
            })?;
            if date < start || date > end {
                // The list's date filter is the server's; a document outside the window is
                // not the window's.
                tracing::debug!(provider = NAME, document = %id, "dated outside the window; not counted");
                continue;
            }
            let detail_ids: Vec<String> = self
                .get_json(
                    cx,
                    session,
                    &self.url(&format!("{}/{id}/details", kind.path()), &[]),
                )
                .await?;
            if detail_ids.len() > MAX_DETAILS {
                return Err(CollectError::new(
                    Reason::Pagination,
                    format!("{what}: more than {MAX_DETAILS} detail lines"),
                ));
            }
            let mut details = Vec::with_capacity(detail_ids.len());
            for line in detail_ids {
                let line = wire::path_segment(&line).ok_or_else(|| {
                    bad(
                        &what,
                        format!(
                            "{:?} is not a detail id",
                            line.chars().take(40).collect::<String>()
                        ),
                    )
                })?;
                details.push(
                    self.get_json::<Detail>(
                        cx,
                        session,
                        &self.url(&format!("{}/{id}/details/{line}", kind.path()), &[]),
                    )
                    .await?,
                );
            }
            out.push(Dated {
                id,
                kind,
                date,
                doc,
                details,
            });
        }
        Ok(())
    }

    /// The tax rate of the most recent bill of the three months before `month`, for renewal
    /// prices when this month has no bill yet. A rate no decimal can hold is a `decode` error.
    pub(super) async fn recent_tax_ratio(
        &self,
        cx: &Context,
        session: &Session,
        month: &Month,
    ) -> Result<Option<Decimal>, CollectError> {
        let to = month.start;
        let from = to - Duration::from_secs(92 * 86_400);
        let list = self.url(
            "/me/bill",
            &[
                ("date.from", &query_time(from)),
                ("date.to", &query_time(to)),
            ],
        );
        let ids: Vec<String> = self.get_json(cx, session, &list).await?;
        let mut latest: Option<(OffsetDateTime, Decimal)> = None;
        for id in ids.iter().take(12) {
            let Some(id) = wire::path_segment(id) else {
                continue;
            };
            let bill: Document = self
                .get_json(cx, session, &self.url(&format!("/me/bill/{id}"), &[]))
                .await?;
            let money = |p: &Option<Price>| p.as_ref().and_then(|p| p.money().ok()?.ok());
            let (Some(date), Some(with), Some(without)) = (
                bill.date.as_deref().and_then(parse_time),
                money(&bill.with_tax),
                money(&bill.without_tax),
            ) else {
                continue;
            };
            if without.amount.is_zero() {
                continue;
            }
            if latest.is_none_or(|(d, _)| date > d) {
                let ratio = with.amount.checked_div(without.amount).ok_or_else(|| {
                    bad(
                        &format!("bill {id}"),
                        "its tax rate (with tax ÷ without) is beyond a decimal",
                    )
                })?;
                latest = Some((date, ratio));
            }
        }
        Ok(latest.map(|(_, r)| r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price_in(currency: &str, ucents: Option<i64>, value: Option<&str>) -> Price {
        Price {
            currency_code: Some(currency.into()),
            price_in_ucents: ucents,
            value: value.map(|v| ConfigDecimal(v.parse().unwrap())),
        }
    }

    fn price(ucents: Option<i64>, value: Option<&str>) -> Price {
        price_in("EUR", ucents, value)
    }

    fn money(p: &Price) -> Money {
        p.money().unwrap().unwrap()
    }

    #[test]
    fn micro_cents_are_exact_and_preferred() {
        let m = money(&price(Some(6_250_000_000), Some("62.4999999")));
        assert_eq!(m.amount, Decimal::new(625, 1));
        let m = money(&price(None, Some("37.87")));
        assert_eq!(m.amount.to_string(), "37.87");
        let reason = |p: Price| p.money().unwrap().unwrap_err().0;
        assert_eq!(reason(price(None, None)), "missing_field");
        assert_eq!(
            reason(price_in("points", Some(1), None)),
            "non_money_currency"
        );
        assert_eq!(reason(price_in("N/A", Some(0), None)), "non_money_currency");
        assert_eq!(reason(price_in("LTL", Some(1), None)), "unknown_currency");
        let mut p = price(Some(1), None);
        p.currency_code = None;
        assert_eq!(reason(p), "missing_field");
        // Outside the description's enum: not an answer OVH may send.
        assert!(price_in("XBT", Some(1), None).money().is_err());
    }

    fn document(without: i64, with: i64, tax: i64) -> Document {
        Document {
            date: Some("2026-11-04T10:00:00+01:00".into()),
            without_tax: Some(price(Some(without), None)),
            with_tax: Some(price(Some(with), None)),
            tax: Some(price(Some(tax), None)),
        }
    }

    fn line(domain: &str, start: Option<&str>, p: Price) -> Detail {
        Detail {
            domain: Some(domain.into()),
            period_start: start.map(str::to_owned),
            total_price: Some(p),
        }
    }

    fn dated(id: &str, kind: Kind, doc: Document, details: Vec<Detail>) -> Dated {
        Dated {
            id: id.into(),
            kind,
            date: parse_time("2026-11-04T10:00:00+01:00").unwrap(),
            doc,
            details,
        }
    }

    #[test]
    fn lines_the_details_do_not_explain_are_unattributed_and_tax_is_its_own_series() {
        let details = vec![
            line(
                "ns1.example",
                Some("2026-11-04"),
                price(Some(6_000_000_000), None),
            ),
            line("ns2.example", None, price(Some(3_000_000_000), None)),
        ];
        let mut m = MonthBills::default();
        m.add(&dated(
            "FR1",
            Kind::Bill,
            document(10_000_000_000, 12_000_000_000, 2_000_000_000),
            details,
        ))
        .unwrap();
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
        assert!(m.skipped.is_empty());
    }

    #[test]
    fn a_credit_note_is_deducted_per_service_whatever_its_sign() {
        let mut m = MonthBills::default();
        m.add(&dated(
            "FR1",
            Kind::Bill,
            document(10_000_000_000, 12_000_000_000, 2_000_000_000),
            vec![line("ns1.example", None, price(Some(10_000_000_000), None))],
        ))
        .unwrap();
        // One credit note written negative, one positive: both are given back.
        for (id, sign) in [("AFR1", -1), ("AFR2", 1)] {
            m.add(&dated(
                id,
                Kind::Refund,
                document(
                    sign * 1_000_000_000,
                    sign * 1_200_000_000,
                    sign * 200_000_000,
                ),
                vec![line(
                    "ns1.example",
                    None,
                    price(Some(sign * 500_000_000), None),
                )],
            ))
            .unwrap();
        }
        let excl = m.spend(TaxBasis::Excluded, 50);
        // 100 less 2 × 5 on the service, and 2 × 5 the lines do not explain.
        assert!(
            excl[0]
                .1
                .contains(&("ns1.example".into(), Decimal::from(90)))
        );
        assert!(
            excl[0]
                .1
                .contains(&(UNATTRIBUTED.into(), Decimal::from(-10)))
        );
        let incl = m.spend(TaxBasis::Included, 50);
        assert!(incl[0].1.contains(&("tax".into(), Decimal::new(16, 0))));
        // The tax rate is the bills'.
        assert_eq!(m.tax_ratio(), Some(Decimal::new(12, 1)));
        // Credit notes are no early renewal.
        let at = parse_time("2026-11-04T00:00:00Z").unwrap();
        assert!(!m.billed("ns1.example", at));
    }

    #[test]
    fn documents_and_lines_that_cannot_be_counted_are_skipped() {
        let mut m = MonthBills::default();
        let mut no_tax = document(100_000_000, 100_000_000, 0);
        no_tax.tax = None;
        m.add(&dated("FR1", Kind::Bill, no_tax, vec![])).unwrap();
        let mut mixed = document(100_000_000, 100_000_000, 0);
        mixed.tax = Some(price_in("USD", Some(0), None));
        m.add(&dated("FR2", Kind::Bill, mixed, vec![])).unwrap();
        m.add(&dated(
            "FR3",
            Kind::Bill,
            document(300_000_000, 300_000_000, 0),
            vec![
                line("a", None, price(Some(100_000_000), None)),
                line("b", None, price_in("N/A", Some(0), None)),
                line("c", None, price_in("USD", Some(200_000_000), None)),
                Detail {
                    domain: Some("d".into()),
                    period_start: None,
                    total_price: None,
                },
            ],
        ))
        .unwrap();
        let counts: Vec<(&str, u64)> = m.skipped.counts().collect();
        assert_eq!(
            counts,
            vec![
                ("missing_field", 2),
                ("mixed_currency", 2),
                ("non_money_currency", 1)
            ]
        );
        // FR3's 3.00: 1.00 on a, the rest unattributed.
        let excl = m.spend(TaxBasis::Excluded, 50);
        assert_eq!(
            excl[0].1,
            vec![
                (UNATTRIBUTED.to_owned(), Decimal::from(2)),
                ("a".to_owned(), Decimal::from(1))
            ]
        );
        // A currency outside the enum fails the document.
        let mut outside = document(100_000_000, 100_000_000, 0);
        outside.with_tax = Some(price_in("XBT", Some(1), None));
        assert!(m.add(&dated("FR4", Kind::Bill, outside, vec![])).is_err());
    }
}
