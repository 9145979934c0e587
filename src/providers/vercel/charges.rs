//! `GET /v1/billing/charges`: FOCUS 1.3 records as JSON Lines (gzip), parsed as they arrive
//! ([`ChargesParser`]): memory is bounded by the longest line and the number of distinct
//! (service, project) pairs, not by the body.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::SystemTime;

use rust_decimal::Decimal;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{RESOURCES, Vercel};
use crate::cost::{Collection, Credit, Skipped, Spend, SpendKind, Unit, Usage};
use crate::error::{CollectError, Reason};
use crate::http::{Auth, describe};
use crate::money::{ConfigDecimal, Currency, Money, TaxBasis};
use crate::providers::wire::{self, LineSplitter, Num, net_credits};
use crate::providers::{Context, Days, History};
use crate::secret::Secret;

/// The resources a successful charges read reports as 0 when no record names them.
const CORE: &[&str] = &[
    "function_invocations",
    "fast_data_transfer",
    "edge_requests",
    "active_cpu",
    "provisioned_memory",
];

/// Projects beyond the top N by spend are summed under this label value.
const OTHER: &str = "other";
/// The project label of records without `Tags.ProjectName`.
const UNATTRIBUTED: &str = "unattributed";
/// Distinct service names kept before the rest are summed as `other`.
const MAX_SERVICES: usize = 64;
/// Distinct projects tracked while streaming; charges of further projects are summed as
/// `other` at once, so memory does not grow with what the API sends.
const MAX_PROJECTS: usize = 5000;

impl Vercel {
    /// Requests the charges from `from` to `to`: the response, and what to call it in errors.
    async fn get_charges(
        &self,
        cx: &Context,
        from: &str,
        to: &str,
    ) -> Result<(reqwest::Response, String), CollectError> {
        let url = self.url("/v1/billing/charges", &[("from", from), ("to", to)]);
        let what = format!("GET {}", describe(&url));
        let resp = cx
            .http
            .get(
                &url,
                Auth::Bearer(&self.token),
                &[(
                    "accept",
                    "application/jsonl, application/x-ndjson, application/json",
                )],
            )
            .await?;
        Ok((resp, what))
    }

    pub(super) async fn charges(
        &self,
        cx: &Context,
        from: &str,
        to: &str,
    ) -> Result<Collection, CollectError> {
        let (resp, what) = self.get_charges(cx, from, to).await?;
        let parser = ChargesParser::scrubbing(self.token.clone(), self.tax);
        let totals = read_with(resp, &what, parser).await?;
        tracing::debug!(records = totals.records, "read the billing charges");
        let mut c = totals
            .into_collection(self.top_n, cx.now)
            .map_err(|e| e.context(&what))?;
        c.limits = self.limits.clone();
        Ok(c)
    }

    /// The charges of `days`, as month-to-date collections at the end of each day.
    pub(super) async fn charges_history(
        &self,
        cx: &Context,
        days: Days,
    ) -> Result<History, CollectError> {
        let (from, to) = (wire::rfc3339(days.start()), wire::rfc3339(days.end()));
        let (resp, what) = self.get_charges(cx, &from, &to).await?;
        let mut parser = DailyChargesParser::new(days, Some(self.token.clone()), self.tax);
        crate::http::pipelined(resp, &what, |chunk| {
            parser.feed(chunk).map_err(|e| e.context(&what))
        })
        .await?;
        let daily = parser.finish().map_err(|e| e.context(&what))?;
        daily
            .into_iter()
            .map(|(day, totals)| {
                let mut c = totals
                    .into_collection(self.top_n, Days::end_of(day))
                    .map_err(|e| e.context(&what))?;
                c.limits = self.limits.clone();
                Ok((day, c))
            })
            .collect()
    }
}

/// Reads a charges body (inflated by the client as it arrives) and sums it: the body is read
/// on its own task while this one parses, so inflating and parsing use two cores.
pub async fn read_charges(resp: reqwest::Response, what: &str) -> Result<Totals, CollectError> {
    read_with(resp, what, ChargesParser::default()).await
}

/// [`read_charges`] with a given parser.
async fn read_with(
    resp: reqwest::Response,
    what: &str,
    mut parser: ChargesParser,
) -> Result<Totals, CollectError> {
    crate::http::pipelined(resp, what, |chunk| {
        parser.feed(chunk).map_err(|e| e.context(what))
    })
    .await?;
    parser.finish().map_err(|e| e.context(what))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Charge<'a> {
    #[serde(default)]
    billed_cost: Option<ConfigDecimal>,
    #[serde(default)]
    effective_cost: Option<ConfigDecimal>,
    #[serde(default, borrow)]
    billing_currency: Option<Cow<'a, str>>,
    #[serde(default)]
    consumed_quantity: Option<Num>,
    #[serde(default, borrow)]
    consumed_unit: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    service_name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    charge_category: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    charge_period_start: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    charge_period_end: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    tags: Option<Tags<'a>>,
}

#[derive(Deserialize, Default)]
struct Tags<'a> {
    #[serde(rename = "ProjectName", default, borrow)]
    project_name: Option<Cow<'a, str>>,
}

/// Parses the FOCUS JSON Lines stream chunk by chunk and sums it.
#[derive(Default)]
pub struct ChargesParser {
    lines: LineSplitter,
    totals: Totals,
}

impl ChargesParser {
    /// A parser whose warnings are scrubbed of `secret`, its money in the job's `tax` basis.
    pub(crate) fn scrubbing(secret: Secret, tax: TaxBasis) -> ChargesParser {
        let mut p = ChargesParser::default();
        p.totals.secret = Some(secret);
        p.totals.tax = tax;
        p
    }

    /// Feeds one chunk of the (decompressed) body.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), CollectError> {
        let totals = &mut self.totals;
        self.lines.feed(chunk, |n, line| totals.add_line(n, line))
    }

    /// Ends the stream and returns the sums.
    pub fn finish(mut self) -> Result<Totals, CollectError> {
        let totals = &mut self.totals;
        self.lines.finish(|n, line| totals.add_line(n, line))?;
        Ok(self.totals)
    }
}

/// Parses the FOCUS stream of a month into one [`Totals`] per day (by `ChargePeriodStart`,
/// UTC), for history: memory is one month's sums, not the body.
pub(crate) struct DailyChargesParser {
    lines: LineSplitter,
    days: Days,
    totals: Vec<Totals>,
}

impl DailyChargesParser {
    /// A parser for the days of `days`, its warnings scrubbed of `secret`, its money in the
    /// job's `tax` basis.
    pub(crate) fn new(days: Days, secret: Option<Secret>, tax: TaxBasis) -> DailyChargesParser {
        DailyChargesParser {
            lines: LineSplitter::default(),
            totals: days
                .iter()
                .map(|_| Totals {
                    secret: secret.clone(),
                    tax,
                    ..Totals::default()
                })
                .collect(),
            days,
        }
    }

    /// Feeds one chunk of the (decompressed) body.
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Result<(), CollectError> {
        let (days, totals) = (self.days, &mut self.totals);
        self.lines
            .feed(chunk, |n, line| add_to_day(days, totals, n, line))
    }

    /// Ends the stream: the month-to-date sums at the end of each day.
    pub(crate) fn finish(mut self) -> Result<Vec<(time::Date, Totals)>, CollectError> {
        let (days, totals) = (self.days, &mut self.totals);
        self.lines
            .finish(|n, line| add_to_day(days, totals, n, line))?;
        let mut running = Totals::default();
        Ok(days
            .iter()
            .zip(self.totals)
            .map(|(day, t)| {
                running.merge(&t);
                (day, running.clone())
            })
            .collect())
    }
}

/// Adds a record to the sums of the day its charge period starts on (records outside the days
/// count on the nearest one).
fn add_to_day(
    days: Days,
    totals: &mut [Totals],
    n: usize,
    line: &[u8],
) -> Result<(), CollectError> {
    let c = parse_line(n, line)?;
    let when = c
        .charge_period_start
        .as_deref()
        .or(c.charge_period_end.as_deref())
        .map(|t| {
            OffsetDateTime::parse(t.trim(), &Rfc3339).map_err(|e| {
                CollectError::new(
                    Reason::Decode,
                    format!("line {n}: ChargePeriodStart {t:?} is not a date-time ({e})"),
                )
            })
        })
        .transpose()?;
    let day = when
        .map_or(days.first, Days::day_of)
        .clamp(days.first, days.last);
    let i = (day - days.first).whole_days().max(0) as usize;
    match totals.get_mut(i) {
        Some(t) => t.add(n, c),
        None => Ok(()),
    }
}

/// Month-to-date sums of the charges, before the project breakdown is bounded.
#[derive(Debug, Default, Clone)]
pub struct Totals {
    /// Records read.
    pub records: u64,
    usage: HashMap<(String, Unit, String), f64>,
    /// Billed cost per (project, charge category, currency).
    billed: HashMap<(String, &'static str, Currency), Decimal>,
    effective: HashMap<(String, Currency), Decimal>,
    /// Per project: billed usage (all currencies) and records, for ranking.
    projects: HashMap<String, (Decimal, u64)>,
    services: HashSet<String>,
    latest_end: Option<OffsetDateTime>,
    /// A sum no decimal can hold was met: `into_collection` fails with `decode`.
    overflow: bool,
    /// [`MAX_PROJECTS`] was reached (logged once).
    projects_capped: bool,
    /// Records (or their usage) left out: a category or currency this build does not know, a
    /// negative quantity.
    skipped: Skipped,
    /// The token, scrubbed from the warnings that name a skipped record (an answer may echo it).
    secret: Option<Secret>,
    /// The job's tax basis: with taxes excluded (the default), `Tax` records are left out.
    tax: TaxBasis,
}

/// `*acc += v`, remembering in `overflow` a sum no decimal can hold.
fn sum(overflow: &mut bool, acc: &mut Decimal, v: Decimal) {
    match acc.checked_add(v) {
        Some(x) => *acc = x,
        None => *overflow = true,
    }
}

/// A line as a FOCUS record, or a `decode` error naming the line.
fn parse_line(n: usize, line: &[u8]) -> Result<Charge<'_>, CollectError> {
    serde_json::from_slice(line).map_err(|e| {
        CollectError::new(
            Reason::Decode,
            format!("line {n}: not a FOCUS record ({e})"),
        )
    })
}

impl Totals {
    /// Counts a skipped record, its warning scrubbed of the token.
    fn skip(&mut self, reason: &'static str, what: String) {
        self.skipped
            .record(reason, crate::http::scrub(&what, self.secret.as_ref()));
    }

    fn add_line(&mut self, n: usize, line: &[u8]) -> Result<(), CollectError> {
        let c = parse_line(n, line)?;
        self.add(n, c)
    }

    fn add(&mut self, n: usize, c: Charge<'_>) -> Result<(), CollectError> {
        let bad = |msg: String| CollectError::new(Reason::Decode, format!("line {n}: {msg}"));
        self.records += 1;
        // What the job cannot place is left out with a warning, the rest still counts: a
        // ChargeCategory or BillingCurrency beyond the description's enums (a later version may
        // add one).
        let Some(category) = category(c.charge_category.as_deref()) else {
            self.skip(
                "unknown_enum",
                format!(
                    "line {n}: ChargeCategory {} is not one the description lists",
                    shown(c.charge_category.as_deref().unwrap_or_default())
                ),
            );
            return Ok(());
        };
        if category == TAX && self.tax == TaxBasis::Excluded {
            // FOCUS gives taxes as records of their own: the job's tax basis leaves them out.
            return Ok(());
        }
        let currency = match c.billing_currency.as_deref() {
            None | Some("") => Currency::USD,
            Some(code) => match code.parse::<Currency>() {
                Ok(c) => c,
                Err(_) => {
                    self.skip(
                        "unknown_currency",
                        format!(
                            "line {n}: BillingCurrency {} is not a known currency",
                            shown(code)
                        ),
                    );
                    return Ok(());
                }
            },
        };
        let project = self.bounded(project_label(
            c.tags
                .as_ref()
                .and_then(|t| t.project_name.as_deref())
                .unwrap_or(""),
        ));
        let service_name = c.service_name.as_deref().unwrap_or("").trim();
        let (unit, factor) = c
            .consumed_unit
            .as_deref()
            .map_or((Unit::Count, 1.0), parse_unit);
        let known = classify(service_name);
        let resource = match known {
            Some((name, expected)) if compatible(expected, unit) => name.to_owned(),
            _ => self.service(normalise(service_name)),
        };
        if let Some(q) = c.consumed_quantity.filter(|q| q.0 < 0.0) {
            // A number the description allows, but no usage: the cost still counts.
            self.skip(
                "negative_quantity",
                format!(
                    "line {n}: ConsumedQuantity {} of {} is negative; its usage is left out",
                    q.0,
                    shown(service_name)
                ),
            );
        } else if let Some(q) = c.consumed_quantity {
            let unit = match known {
                Some((name, expected)) if name == resource && unit == Unit::Count => expected,
                _ => unit,
            };
            *self
                .usage
                .entry((resource.clone(), unit, project.clone()))
                .or_default() += q.0 * factor;
        }
        let rank = self.projects.entry(project.clone()).or_default();
        rank.1 += 1;
        if let Some(b) = c.billed_cost {
            if category == USAGE {
                sum(&mut self.overflow, &mut rank.0, b.0);
            }
            sum(
                &mut self.overflow,
                self.billed
                    .entry((project.clone(), category, currency))
                    .or_default(),
                b.0,
            );
        }
        if let Some(e) = c.effective_cost {
            sum(
                &mut self.overflow,
                self.effective.entry((project, currency)).or_default(),
                e.0,
            );
        }
        if let Some(end) = c.charge_period_end.as_deref() {
            let end = OffsetDateTime::parse(end.trim(), &Rfc3339)
                .map_err(|e| bad(format!("ChargePeriodEnd {end:?} is not a date-time ({e})")))?;
            if self.latest_end.is_none_or(|l| end > l) {
                self.latest_end = Some(end);
            }
        }
        Ok(())
    }

    /// `project`, or `other` once [`MAX_PROJECTS`] distinct projects are tracked.
    fn bounded(&mut self, project: String) -> String {
        if self.projects.len() < MAX_PROJECTS || self.projects.contains_key(&project) {
            return project;
        }
        if !self.projects_capped {
            self.projects_capped = true;
            tracing::warn!(
                "more than {MAX_PROJECTS} projects in the charges: the rest are summed as \"other\""
            );
        }
        OTHER.to_owned()
    }

    /// Adds another day's sums, keeping the bounds on distinct services and projects.
    fn merge(&mut self, o: &Totals) {
        self.records += o.records;
        for ((r, u, p), v) in &o.usage {
            let r = if o.services.contains(r) {
                self.service(r.clone())
            } else {
                r.clone()
            };
            let p = self.bounded(p.clone());
            *self.usage.entry((r, *u, p)).or_default() += v;
        }
        for ((p, cat, cur), v) in &o.billed {
            let p = self.bounded(p.clone());
            sum(
                &mut self.overflow,
                self.billed.entry((p, cat, *cur)).or_default(),
                *v,
            );
        }
        for ((p, cur), v) in &o.effective {
            let p = self.bounded(p.clone());
            sum(
                &mut self.overflow,
                self.effective.entry((p, *cur)).or_default(),
                *v,
            );
        }
        for (p, (b, n)) in &o.projects {
            let p = self.bounded(p.clone());
            let e = self.projects.entry(p).or_default();
            sum(&mut self.overflow, &mut e.0, *b);
            e.1 += n;
        }
        self.overflow |= o.overflow;
        self.skipped.merge(o.skipped.clone());
        self.latest_end = self.latest_end.max(o.latest_end);
    }

    /// Bounds the number of distinct services: past [`MAX_SERVICES`], new ones are `other`.
    fn service(&mut self, name: String) -> String {
        if self.services.contains(&name) {
            return name;
        }
        if self.services.len() >= MAX_SERVICES {
            return OTHER.to_owned();
        }
        self.services.insert(name.clone());
        name
    }

    /// The collection: the top `top_n` projects by billed usage (then by record count), the
    /// rest summed as `project="other"`; charges without a project keep `unattributed`. Spend is
    /// per project and charge category, credits netted (`net`).
    pub fn into_collection(
        self,
        top_n: usize,
        now: SystemTime,
    ) -> Result<Collection, CollectError> {
        if self.overflow {
            return Err(CollectError::new(
                Reason::Decode,
                "the charges are too large to add up (beyond 7.9e28)",
            ));
        }
        let mut overflow = false;
        let mut ranked: Vec<(&String, &(Decimal, u64))> = self.projects.iter().collect();
        ranked.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(b.1.1.cmp(&a.1.1)).then(a.0.cmp(b.0)));
        let kept: HashSet<&String> = ranked
            .iter()
            .filter(|(p, _)| p.as_str() != UNATTRIBUTED)
            .take(top_n)
            .map(|(p, _)| *p)
            .collect();
        // Charges without a project (plan fees, taxes, team-wide usage) keep their own label.
        let label = |p: &String| {
            if kept.contains(p) || p == UNATTRIBUTED {
                p.clone()
            } else {
                OTHER.to_owned()
            }
        };

        let mut usage: std::collections::BTreeMap<(String, Unit, String), f64> = Default::default();
        for ((r, u, p), v) in &self.usage {
            *usage.entry((r.clone(), *u, label(p))).or_default() += v;
        }
        for core in CORE {
            let unit = RESOURCES
                .iter()
                .find(|(n, _)| n == core)
                .map_or(Unit::Count, |(_, u)| *u);
            if !usage.keys().any(|(r, u, _)| r == core && *u == unit) {
                usage.insert(((*core).to_owned(), unit, String::new()), 0.0);
            }
        }
        let usage = usage
            .into_iter()
            .map(|((resource, unit, project), value)| Usage {
                resource,
                unit,
                value,
                labels: if project.is_empty() {
                    vec![]
                } else {
                    vec![("project", project)]
                },
            })
            .collect();

        // Billed: per currency, (project, category) lines, credits netted (see `net`).
        let mut by_currency: BTreeMap<Currency, BTreeMap<(String, &'static str), Decimal>> =
            BTreeMap::new();
        for ((p, cat, cur), v) in &self.billed {
            sum(
                &mut overflow,
                by_currency
                    .entry(*cur)
                    .or_default()
                    .entry((label(p), cat))
                    .or_default(),
                *v,
            );
        }
        let mut spend = Vec::new();
        let mut credits = Vec::new();
        for (currency, lines) in by_currency {
            let mut covered = Decimal::ZERO;
            for ((_, c), v) in &lines {
                if *c == USAGE && !v.is_sign_negative() {
                    sum(&mut overflow, &mut covered, *v);
                }
            }
            let (lines, credit) = net(lines);
            if !credit.is_zero() {
                // Credits as they come: what was applied is all that is known of them.
                let money = |amount| Money { amount, currency };
                credits.push(Credit {
                    covered: money(covered),
                    applied: money(credit),
                    total: money(credit),
                });
            }
            for ((project, category), amount) in lines {
                spend.push(Spend {
                    money: Money { amount, currency },
                    kind: if category == USAGE {
                        SpendKind::Metered
                    } else {
                        SpendKind::Billed
                    },
                    labels: vec![("project", project), ("category", category.to_owned())],
                });
            }
        }
        if spend.is_empty() {
            // The month has no charge yet: a known zero.
            spend.push(Spend {
                money: Money {
                    amount: Decimal::ZERO,
                    currency: Currency::USD,
                },
                kind: SpendKind::Metered,
                labels: vec![],
            });
        }
        // Effective (amortized) cost per project, credits netted across projects.
        let mut effective: BTreeMap<Currency, BTreeMap<String, Decimal>> = BTreeMap::new();
        for ((p, c), v) in &self.effective {
            sum(
                &mut overflow,
                effective
                    .entry(*c)
                    .or_default()
                    .entry(label(p))
                    .or_default(),
                *v,
            );
        }
        if overflow {
            return Err(CollectError::new(
                Reason::Decode,
                "the charges are too large to add up (beyond 7.9e28)",
            ));
        }
        let effective_spend = effective
            .into_iter()
            .flat_map(|(currency, projects)| {
                net_credits(projects.into_iter().collect()).into_iter().map(
                    move |(project, amount)| Spend {
                        money: Money { amount, currency },
                        kind: SpendKind::Metered,
                        labels: vec![("project", project)],
                    },
                )
            })
            .collect();
        let data_as_of = self
            .latest_end
            .map(SystemTime::from)
            .map_or(now, |t| t.min(now));
        Ok(Collection {
            usage,
            limits: vec![],
            spend,
            effective_spend,
            data_as_of: Some(data_as_of),
            source: Some("charges"),
            credits,
            skipped: self.skipped,
            ..Collection::default()
        })
    }
}

/// The `category` of usage charges, the only ones the forecast extrapolates.
const USAGE: &str = "usage";
/// The `category` of taxes, counted only with `tax = "included"`.
const TAX: &str = "tax";

/// FOCUS `ChargeCategory` → the `category` label: `Usage` (or none, as in records before
/// FOCUS 1.0) is `usage`; `Purchase` (plan fees, add-ons), `Tax`, `Adjustment` and `Credit`
/// are billed as they come. A value the description does not list is `None`: the record is
/// skipped.
fn category(raw: Option<&str>) -> Option<&'static str> {
    Some(
        match raw.map(|c| c.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("usage") => USAGE,
            Some("purchase") => "purchase",
            Some("tax") => TAX,
            Some("adjustment") => "adjustment",
            Some("credit") => "credit",
            Some(_) => return None,
        },
    )
}

/// A provider's free text in a warning: printable, at most 40 characters, quoted.
fn shown(text: &str) -> String {
    let t: String = text.chars().filter(|c| !c.is_control()).take(40).collect();
    format!("{t:?}")
}

/// One spend line: (project, category) and its amount.
type Line = ((String, &'static str), Decimal);

/// Nets credits out of one currency's (project, category) lines so that no series is
/// negative and the lines still add up to the total: a project's credits come off its own usage
/// first; what is left, and any negative line, comes off the usage lines (largest first), then
/// the billed ones. Credit lines left at zero are dropped. Returns the lines and how much came
/// off usage lines, which the forecast deducts once instead of extrapolating.
fn net(lines: BTreeMap<(String, &'static str), Decimal>) -> (Vec<Line>, Decimal) {
    let mut lines: Vec<Line> = lines.into_iter().collect();
    let mut applied = Decimal::ZERO;
    // A project's credit against its own usage.
    let credits: Vec<(String, Decimal)> = lines
        .iter()
        .filter(|((_, c), v)| *c == "credit" && v.is_sign_negative())
        .map(|((p, _), v)| (p.clone(), -*v))
        .collect();
    for (project, mut credit) in credits {
        if let Some((_, usage)) = lines
            .iter_mut()
            .find(|((p, c), _)| *p == project && *c == USAGE)
        {
            let take = (*usage).max(Decimal::ZERO).min(credit);
            *usage -= take;
            applied = applied.saturating_add(take);
            credit -= take;
        }
        if let Some((_, line)) = lines
            .iter_mut()
            .find(|((p, c), _)| *p == project && *c == "credit")
        {
            *line = -credit;
        }
    }
    // The rest: every negative line into a pool, off usage then billed lines, largest first.
    let mut pool = Decimal::ZERO;
    for (_, v) in lines.iter_mut() {
        if v.is_sign_negative() {
            pool = pool.saturating_sub(*v);
            *v = Decimal::ZERO;
        }
    }
    let mut order: Vec<usize> = (0..lines.len()).collect();
    order.sort_by(|a, b| {
        let (la, lb) = (&lines[*a], &lines[*b]);
        (lb.0.1 == USAGE)
            .cmp(&(la.0.1 == USAGE))
            .then(lb.1.cmp(&la.1))
            .then(a.cmp(b))
    });
    for i in order {
        if pool.is_zero() {
            break;
        }
        let take = lines[i].1.min(pool);
        lines[i].1 -= take;
        pool -= take;
        if lines[i].0.1 == USAGE {
            applied = applied.saturating_add(take);
        }
    }
    if !pool.is_zero() {
        tracing::info!("{pool} of credits exceed this month's charges so far");
    }
    lines.retain(|((_, c), v)| *c != "credit" || !v.is_zero());
    (lines, applied)
}

/// A bounded project label: trimmed, at most 64 characters, `unattributed` when absent.
fn project_label(name: &str) -> String {
    let name = name.trim();
    if name.is_empty() {
        return UNATTRIBUTED.to_owned();
    }
    name.chars().take(64).collect()
}

/// Matches a service by what it is, not by its exact display string.
fn classify(service: &str) -> Option<(&'static str, Unit)> {
    let s = service.to_ascii_lowercase();
    let has = |w: &str| s.contains(w);
    let name = if has("edge function") || has("middleware") {
        "edge_function_invocations"
    } else if has("invocation") {
        "function_invocations"
    } else if has("origin transfer") {
        "fast_origin_transfer"
    } else if has("data transfer") || has("bandwidth") {
        "fast_data_transfer"
    } else if has("edge request") {
        "edge_requests"
    } else if has("active cpu") {
        "active_cpu"
    } else if has("provisioned memory") || has("function duration") {
        "provisioned_memory"
    } else if has("build") && (has("minute") || has("time") || has("cpu")) {
        "build_time"
    } else {
        return None;
    };
    RESOURCES.iter().find(|(n, _)| *n == name).copied()
}

/// Whether a record's unit fits a known resource (a plain count fits a count of requests).
fn compatible(expected: Unit, got: Unit) -> bool {
    expected == got || (got == Unit::Count && matches!(expected, Unit::Requests | Unit::Count))
}

/// `ConsumedUnit` → base unit and factor. Unknown units are a plain count.
fn parse_unit(raw: &str) -> (Unit, f64) {
    let u = raw.trim().to_ascii_lowercase().replace(['_', ' '], "-");
    match u.as_str() {
        "b" | "byte" | "bytes" => (Unit::Bytes, 1.0),
        "kb" | "kilobytes" => (Unit::Bytes, 1e3),
        "mb" | "megabytes" => (Unit::Bytes, 1e6),
        "gb" | "gigabytes" => (Unit::Bytes, 1e9),
        "tb" | "terabytes" => (Unit::Bytes, 1e12),
        "kib" => (Unit::Bytes, 1024.0),
        "mib" => (Unit::Bytes, 1024.0 * 1024.0),
        "gib" => (Unit::Bytes, 1024.0 * 1024.0 * 1024.0),
        "ms" | "milliseconds" | "cpu-ms" => (Unit::Seconds, 1e-3),
        "s" | "sec" | "secs" | "seconds" | "cpu-seconds" => (Unit::Seconds, 1.0),
        "min" | "mins" | "minutes" | "build-minutes" => (Unit::Seconds, 60.0),
        "h" | "hr" | "hrs" | "hour" | "hours" | "cpu-hours" | "cpu-hrs" => (Unit::Seconds, 3600.0),
        "gb-hrs" | "gb-hr" | "gb-hours" | "gb-hour" | "gbh" | "gb-h" => (Unit::GigabyteHours, 1.0),
        "mb-hrs" | "mb-hours" => (Unit::GigabyteHours, 1e-3),
        "requests" | "request" | "invocations" | "invocation" | "executions" | "calls" => {
            (Unit::Requests, 1.0)
        }
        _ => (Unit::Count, 1.0),
    }
}

/// A display name as a resource name: `Image Optimization – Transformations` →
/// `image_optimization_transformations`.
fn normalise(service: &str) -> String {
    let mut out = String::new();
    for c in service.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    let out = out.trim_end_matches('_');
    let out: String = out.chars().take(48).collect();
    if out.is_empty() {
        "unknown".to_owned()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Totals, CollectError> {
        let mut p = ChargesParser::default();
        // Feed in awkward pieces to exercise the line splitting.
        for chunk in text.as_bytes().chunks(7) {
            p.feed(chunk)?;
        }
        p.finish()
    }

    #[test]
    fn services_are_matched_by_meaning_and_unit() {
        assert_eq!(
            classify("Function Invocations").unwrap().0,
            "function_invocations"
        );
        assert_eq!(
            classify("FAST DATA TRANSFER").unwrap().0,
            "fast_data_transfer"
        );
        assert_eq!(classify("Edge Requests").unwrap().0, "edge_requests");
        assert_eq!(classify("Active CPU").unwrap().0, "active_cpu");
        assert_eq!(
            classify("Provisioned Memory").unwrap().0,
            "provisioned_memory"
        );
        assert_eq!(
            classify("Edge Function Invocations").unwrap().0,
            "edge_function_invocations"
        );
        assert!(classify("Image Optimization").is_none());
        assert_eq!(parse_unit("GB"), (Unit::Bytes, 1e9));
        assert_eq!(parse_unit("GB-Hrs"), (Unit::GigabyteHours, 1.0));
        assert_eq!(parse_unit("Hours"), (Unit::Seconds, 3600.0));
        assert_eq!(parse_unit("MIUs"), (Unit::Count, 1.0));
        assert_eq!(
            normalise("Image Optimization – Transformations"),
            "image_optimization_transformations"
        );
        assert_eq!(normalise("  "), "unknown");
    }

    #[test]
    fn a_known_service_in_an_unexpected_unit_keeps_its_own_name() {
        let t = parse(
            r#"{"ServiceName":"Fast Data Transfer","ConsumedQuantity":5,"ConsumedUnit":"Invocations","BilledCost":0}"#,
        )
        .unwrap();
        let c = t.into_collection(10, SystemTime::now()).unwrap();
        assert!(c.usage.iter().any(|u| u.resource == "fast_data_transfer"
            && u.unit == Unit::Bytes
            && u.value == 0.0));
        assert!(c.usage.iter().any(|u| u.resource == "fast_data_transfer"
            && u.unit == Unit::Requests
            && u.value == 5.0));
    }

    #[test]
    fn malformed_lines_name_their_number() {
        let err = parse("{\"ServiceName\":\"x\"}\n\n{not json}\n").unwrap_err();
        assert_eq!(err.reason, Reason::Decode);
        assert!(err.message.starts_with("line 3:"), "{}", err.message);
    }

    #[test]
    fn records_that_cannot_be_placed_are_skipped_not_fatal() {
        let t = parse(
            "{\"ServiceName\":\"x\",\"BillingCurrency\":\"ZZZ\",\"BilledCost\":3}\n\
             {\"ServiceName\":\"x\",\"ChargeCategory\":\"Commitment\",\"BilledCost\":4}\n\
             {\"ServiceName\":\"Function Invocations\",\"ConsumedQuantity\":-1,\"BilledCost\":2}\n",
        )
        .unwrap();
        let counts: Vec<(&str, u64)> = t.skipped.counts().collect();
        assert_eq!(
            counts,
            vec![
                ("negative_quantity", 1),
                ("unknown_currency", 1),
                ("unknown_enum", 1)
            ]
        );
        let c = t.into_collection(10, SystemTime::now()).unwrap();
        // The negative quantity's cost counts, its usage does not; the others count not at all.
        let total: Decimal = c.spend.iter().map(|s| s.money.amount).sum();
        assert_eq!(total, Decimal::from(2));
        assert!(c.usage.iter().all(|u| u.value == 0.0));
        assert_eq!(c.skipped.counts().count(), 3);
    }

    #[test]
    fn projects_beyond_the_top_n_are_other() {
        let mut text = String::new();
        for (p, cost) in [("a", "5"), ("b", "3"), ("c", "1"), ("d", "0.5")] {
            text.push_str(&format!(
                "{{\"ServiceName\":\"Function Invocations\",\"ConsumedQuantity\":10,\"ConsumedUnit\":\"Invocations\",\"BilledCost\":{cost},\"EffectiveCost\":{cost},\"Tags\":{{\"ProjectName\":\"{p}\"}}}}\n"
            ));
        }
        let c = parse(&text)
            .unwrap()
            .into_collection(2, SystemTime::now())
            .unwrap();
        let projects: Vec<&str> = c.spend.iter().map(|s| s.labels[0].1.as_str()).collect();
        assert_eq!(projects, vec!["a", "b", "other"]);
        assert_eq!(c.spend[2].money.amount, Decimal::new(15, 1));
        let other = c
            .usage
            .iter()
            .find(|u| u.labels == vec![("project", "other".to_owned())])
            .unwrap();
        assert_eq!(other.value, 20.0);
    }

    fn line(category: &str, cost: &str, project: Option<&str>) -> String {
        let tags = project.map_or(String::new(), |p| {
            format!(",\"Tags\":{{\"ProjectName\":\"{p}\"}}")
        });
        format!(
            "{{\"ChargeCategory\":\"{category}\",\"ServiceName\":\"x\",\"BilledCost\":{cost}{tags}}}\n"
        )
    }

    fn amount(c: &Collection, project: &str, category: &str) -> Option<(Decimal, SpendKind)> {
        c.spend
            .iter()
            .find(|s| {
                s.labels
                    == vec![
                        ("project", project.to_owned()),
                        ("category", category.to_owned()),
                    ]
            })
            .map(|s| (s.money.amount, s.kind))
    }

    #[test]
    fn projects_beyond_the_tracking_bound_are_summed_as_other_while_streaming() {
        let mut text = String::new();
        for i in 0..MAX_PROJECTS + 50 {
            text.push_str(&line("Usage", "1", Some(&format!("p{i}"))));
        }
        let t = parse(&text).unwrap();
        assert!(t.projects.len() <= MAX_PROJECTS + 1, "{}", t.projects.len());
        let c = t.into_collection(10, SystemTime::now()).unwrap();
        let total: Decimal = c.spend.iter().map(|s| s.money.amount).sum();
        assert_eq!(
            total,
            Decimal::from(MAX_PROJECTS as u64 + 50),
            "nothing is lost"
        );
    }

    #[test]
    fn sums_no_decimal_can_hold_are_decode_errors() {
        let max = "50000000000000000000000000000";
        let text = [line("Usage", max, Some("a")), line("Usage", max, Some("a"))].concat();
        let e = parse(&text)
            .unwrap()
            .into_collection(10, SystemTime::now())
            .unwrap_err();
        assert_eq!(e.reason, Reason::Decode);
        let text = [line("Usage", max, Some("a")), line("Usage", max, Some("b"))].concat();
        assert!(
            parse(&text)
                .unwrap()
                .into_collection(10, SystemTime::now())
                .is_err()
        );
    }

    #[test]
    fn only_usage_is_metered_purchases_taxes_and_adjustments_are_billed() {
        let text = [
            line("Usage", "12", Some("web")),
            line("Purchase", "20", None),
            line("Tax", "1.6", None),
            line("Adjustment", "0.4", Some("web")),
        ]
        .concat();
        let mut p = ChargesParser::default();
        p.totals.tax = TaxBasis::Included;
        p.feed(text.as_bytes()).unwrap();
        let c = p
            .finish()
            .unwrap()
            .into_collection(10, SystemTime::now())
            .unwrap();
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(
            amount(&c, "web", "usage"),
            Some((d("12"), SpendKind::Metered))
        );
        assert_eq!(
            amount(&c, "unattributed", "purchase"),
            Some((d("20"), SpendKind::Billed))
        );
        assert_eq!(
            amount(&c, "unattributed", "tax"),
            Some((d("1.6"), SpendKind::Billed))
        );
        // With taxes excluded (the job's default), the tax record is left out, nothing else.
        let c = parse(&text)
            .unwrap()
            .into_collection(10, SystemTime::now())
            .unwrap();
        assert_eq!(amount(&c, "unattributed", "tax"), None);
        assert_eq!(
            amount(&c, "unattributed", "purchase"),
            Some((d("20"), SpendKind::Billed))
        );
        assert_eq!(
            amount(&c, "web", "adjustment"),
            Some((d("0.4"), SpendKind::Billed))
        );
        assert!(c.credits.is_empty());
    }

    #[test]
    fn credits_come_off_their_projects_usage_then_the_largest_and_are_reported() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        // web: 3 of usage and a 5 credit: 3 off web's usage, 2 off the largest other usage
        // (api, 10). A negative adjustment of 1 comes off usage too (api, then 7).
        let text = [
            line("Usage", "3", Some("web")),
            line("Usage", "10", Some("api")),
            line("Credit", "-5", Some("web")),
            line("Purchase", "20", None),
            line("Adjustment", "-1", None),
        ]
        .concat();
        let c = parse(&text)
            .unwrap()
            .into_collection(10, SystemTime::now())
            .unwrap();
        assert_eq!(amount(&c, "web", "usage").unwrap().0, d("0"));
        assert_eq!(amount(&c, "api", "usage").unwrap().0, d("7"));
        assert_eq!(amount(&c, "unattributed", "purchase").unwrap().0, d("20"));
        // No credit series is left, nothing is negative, and the lines add up to the total.
        assert!(amount(&c, "web", "credit").is_none());
        assert!(c.spend.iter().all(|s| !s.money.amount.is_sign_negative()));
        let total: Decimal = c.spend.iter().map(|s| s.money.amount).sum();
        assert_eq!(total, d("27"));
        // 6 came off usage: the forecast deducts it once.
        assert_eq!(c.credits.len(), 1);
        assert_eq!(c.credits[0].applied.amount, d("6"));
        assert_eq!(c.credits[0].covered.amount, d("13"));
        // Credits beyond usage come off billed lines.
        let text = [
            line("Usage", "1", Some("web")),
            line("Credit", "-4", Some("web")),
            line("Purchase", "20", None),
        ]
        .concat();
        let c = parse(&text)
            .unwrap()
            .into_collection(10, SystemTime::now())
            .unwrap();
        assert_eq!(amount(&c, "unattributed", "purchase").unwrap().0, d("17"));
        assert_eq!(c.credits[0].applied.amount, d("1"));
    }
}
