//! The REST side: the v4 envelope (`success`, `errors`, `result`, `result_info`) and its
//! pagination as the SDK's `V4PagePaginationArray` promises it, this month's billing history
//! (the account endpoint, or the deprecated user one where that is absent), the account's
//! subscriptions, and Pages deployments. Items that cannot be placed are skipped by reason.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use time::OffsetDateTime;
use url::Url;

use super::Cloudflare;
use crate::cost::Skipped;
use crate::error::{CollectError, Reason};
use crate::http::{Auth, describe, read_capped, scrub};
use crate::money::{ConfigDecimal, Currency, Money};
use crate::providers::Context;
use crate::providers::wire;

/// Largest page read.
const BODY_LIMIT: usize = 8 << 20;
/// Items per page asked for: within every listing's documented range (Pages deployments take
/// at most 25).
const PER_PAGE: u64 = 25;
/// Pages of one listing before giving up (`pagination`): 1,000 items.
const MAX_PAGES: u64 = 40;
/// Pages projects whose builds are counted.
const MAX_PROJECTS: usize = 100;

#[derive(Deserialize)]
struct Envelope<T> {
    success: bool,
    #[serde(default)]
    errors: Vec<Value>,
    result: Option<T>,
    #[serde(default)]
    result_info: Option<ResultInfo>,
}

/// v4 page information: `V4PagePaginationArray` promises `page` and `per_page` only (no
/// `total_pages`).
#[derive(Deserialize, Default, Clone)]
struct ResultInfo {
    #[serde(default)]
    per_page: Option<Value>,
}

impl ResultInfo {
    /// The page size the answer states, where it states one.
    fn per_page(&self) -> Option<u64> {
        self.per_page.as_ref().and_then(Value::as_u64)
    }
}

/// What to fix, for Cloudflare's authentication errors.
pub(super) fn hint(e: CollectError) -> CollectError {
    e.hint_on(
        &[401, 403],
        "the token is invalid, expired, or lacks a read permission this collector needs: Account Analytics, Billing, Workers Scripts, Workers R2 Storage and Pages, each Read; README: Cloudflare",
    )
}

/// A subscription's next renewal.
pub(super) struct Subscription {
    pub(super) name: String,
    /// The subscription's id, where given.
    pub(super) id: Option<String>,
    pub(super) at: OffsetDateTime,
    pub(super) price: Money,
    /// Whether it renews every week (the description's `frequency = "weekly"`): the only
    /// period short enough to renew again within the month.
    pub(super) weekly: bool,
}

/// A subscription (`Subscription` in the SDK's `shared.ts`): every field optional.
#[derive(Deserialize)]
struct RawSubscription {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    current_period_end: Option<String>,
    #[serde(default)]
    frequency: Option<String>,
    #[serde(default)]
    price: Option<ConfigDecimal>,
    #[serde(default)]
    rate_plan: Option<RatePlan>,
    #[serde(default)]
    state: Option<String>,
}

#[derive(Deserialize)]
struct RatePlan {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    public_name: Option<String>,
}

/// A billing history item: every field optional at `/accounts/{id}/billing/history`, all
/// required at the deprecated `/user/billing/history`; `type` is a free string.
#[derive(Deserialize)]
struct HistoryItem {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    amount: Option<ConfigDecimal>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    occurred_at: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct Project {
    name: String,
}

/// A Pages deployment: `created_on` is required.
#[derive(Deserialize)]
struct Deployment {
    created_on: String,
}

/// A provider's free text in a warning: printable, at most 40 characters.
fn shown(text: &str) -> String {
    let t: String = text.chars().filter(|c| !c.is_control()).take(40).collect();
    format!("{t:?}")
}

/// Whether an answer of the account billing history says the endpoint is not there for this
/// account or token, so that the documented user endpoint is read instead: 404 and 405 (no
/// such route), 501, 400 with Cloudflare's routing codes 7000 ("No route for that URI") or
/// 7003 ("Could not route to …"), and 403 (a token whose permissions predate the endpoint).
fn history_absent(e: &CollectError) -> bool {
    match e.status {
        Some(403 | 404 | 405 | 501) => true,
        Some(400) => matches!(e.code.as_deref(), Some("7000" | "7003")),
        _ => false,
    }
}

impl Cloudflare {
    /// Counts a skipped item, its warning scrubbed of the token (an answer may echo it).
    fn skip(&self, skipped: &mut Skipped, reason: &'static str, what: String) {
        skipped.record(reason, scrub(&what, Some(&self.token)));
    }

    /// One GET, its envelope checked: the `result` and the paging information.
    async fn get_page<T: DeserializeOwned>(
        &self,
        cx: &Context,
        url: &Url,
    ) -> Result<(T, ResultInfo), CollectError> {
        let what = format!("GET {}", describe(url));
        let resp = cx
            .http
            .get(url, Auth::Bearer(&self.token), &[])
            .await
            .map_err(|e| hint(e.into()))?;
        let body = read_capped(resp, &what, BODY_LIMIT).await?;
        let env: Envelope<T> = serde_json::from_slice(&body).map_err(|e| {
            CollectError::new(
                Reason::Decode,
                format!("{what}: not the v4 envelope with the documented result ({e})"),
            )
        })?;
        if !env.success {
            let first = env
                .errors
                .first()
                .map(|e| scrub(&e.to_string(), Some(&self.token)))
                .unwrap_or_default();
            return Err(CollectError::new(
                Reason::Query,
                format!("{what}: success is false: {first}"),
            ));
        }
        let result = env
            .result
            .ok_or_else(|| CollectError::new(Reason::Decode, format!("{what}: no result")))?;
        Ok((result, env.result_info.unwrap_or_default()))
    }

    /// One GET's `result`.
    pub(super) async fn get_result<T: DeserializeOwned>(
        &self,
        cx: &Context,
        url: &Url,
    ) -> Result<T, CollectError> {
        Ok(self.get_page(cx, url).await?.0)
    }

    /// Every page of a v4 listing at `url`, `each` deciding after each page whether to read on.
    ///
    /// As the SDK's `V4PagePaginationArray` pages: the next page is `page + 1`, and a page
    /// without items ends the listing; a page shorter than the `per_page` its answer states is
    /// the last too. `total_pages` is not promised and not read. At most [`MAX_PAGES`].
    async fn pages<T: DeserializeOwned>(
        &self,
        cx: &Context,
        url: &Url,
        mut each: impl FnMut(Vec<T>) -> Result<bool, CollectError>,
    ) -> Result<(), CollectError> {
        for page in 1..=MAX_PAGES {
            let mut url = url.clone();
            url.query_pairs_mut()
                .append_pair("page", &page.to_string())
                .append_pair("per_page", &PER_PAGE.to_string());
            let (items, info): (Vec<T>, ResultInfo) = self.get_page(cx, &url).await?;
            let n = items.len() as u64;
            if n == 0 || !each(items)? {
                return Ok(());
            }
            if info.per_page().is_some_and(|p| n < p) {
                return Ok(());
            }
        }
        Err(CollectError::new(
            Reason::Pagination,
            format!(
                "GET {}: more than {MAX_PAGES} pages of {PER_PAGE}",
                describe(url)
            ),
        ))
    }

    /// The billing history: the account's (`/accounts/{id}/billing/history`), or, where that
    /// endpoint is absent or refused ([`history_absent`]), the documented user endpoint
    /// (`/user/billing/history`, deprecated but the only one older accounts and tokens have).
    async fn history(&self, cx: &Context) -> Result<Vec<HistoryItem>, CollectError> {
        let mut items = Vec::new();
        let account = self.account_url("/billing/history", &[]);
        let first = self
            .pages(cx, &account, |page: Vec<HistoryItem>| {
                items.extend(page);
                Ok(true)
            })
            .await;
        match first {
            Ok(()) => Ok(items),
            Err(e) if history_absent(&e) => {
                tracing::info!(
                    provider = super::NAME,
                    status = e.status.unwrap_or_default(),
                    "the account billing history is not available to this token; reading /user/billing/history"
                );
                items.clear();
                let user = crate::http::join(&self.base, "/user/billing/history");
                self.pages(cx, &user, |page: Vec<HistoryItem>| {
                    items.extend(page);
                    Ok(true)
                })
                .await
                .map_err(|u| {
                    u.context(&format!(
                        "the account billing history answered {} and the user one failed",
                        e.status.unwrap_or_default()
                    ))
                })?;
                Ok(items)
            }
            Err(e) => Err(e),
        }
    }

    /// This month's charges less refunds and credits, per currency, from the billing history
    /// (items from the month's start, 00:00 UTC, up to the run);
    /// items that cannot be placed are skipped (`type` is a free string: only `charge`,
    /// `refund`, `credit` and `payment` are known, and payments settle charges, so they are
    /// not counted again).
    pub(super) async fn charges(
        &self,
        cx: &Context,
        skipped: &mut Skipped,
    ) -> Result<BTreeMap<Currency, Decimal>, CollectError> {
        let start = cx.month_start();
        let now = OffsetDateTime::from(cx.now);
        let mut out: BTreeMap<Currency, Decimal> = BTreeMap::new();
        for item in self.history(cx).await? {
            let id = item
                .id
                .as_deref()
                .map(shown)
                .unwrap_or_else(|| "without an id".into());
            let Some(occurred) = item.occurred_at.as_deref() else {
                self.skip(
                    skipped,
                    "missing_field",
                    format!("billing history item {id} has no occurred_at"),
                );
                continue;
            };
            let Some(at) = wire::date_time(occurred) else {
                self.skip(
                    skipped,
                    "bad_date",
                    format!(
                        "billing history item {id}: occurred_at {} is not a date-time",
                        shown(occurred)
                    ),
                );
                continue;
            };
            if at < start || at > now {
                continue;
            }
            let sign = match item.kind.as_deref().map(str::to_ascii_lowercase).as_deref() {
                Some("charge") => Decimal::ONE,
                Some("refund" | "credit") => -Decimal::ONE,
                // Payments settle charges: counting them too would count twice.
                Some("payment") => continue,
                Some(_) => {
                    self.skip(skipped,
                        "unknown_type",
                        format!(
                            "billing history item {id} has type {}, not a charge, refund, credit or payment",
                            shown(item.kind.as_deref().unwrap_or_default())
                        ),
                    );
                    continue;
                }
                None => {
                    self.skip(
                        skipped,
                        "missing_field",
                        format!("billing history item {id} has no type"),
                    );
                    continue;
                }
            };
            let Some(amount) = item.amount else {
                self.skip(
                    skipped,
                    "missing_field",
                    format!("billing history item {id} has no amount"),
                );
                continue;
            };
            let Some(code) = item.currency.as_deref() else {
                self.skip(
                    skipped,
                    "missing_field",
                    format!("billing history item {id} has no currency"),
                );
                continue;
            };
            let Ok(cur) = code.trim().parse::<Currency>() else {
                self.skip(
                    skipped,
                    "unknown_currency",
                    format!(
                        "billing history item {id} is in {}, not a known currency",
                        shown(code)
                    ),
                );
                continue;
            };
            wire::add(
                out.entry(cur).or_default(),
                sign * amount.0.abs(),
                "billing history",
            )?;
        }
        for amount in out.values_mut() {
            if amount.is_sign_negative() {
                // More refunded than charged this month: nothing was spent.
                *amount = Decimal::ZERO;
            }
        }
        Ok(out)
    }

    /// The account's subscriptions with their next billing date and price; those that cannot
    /// be placed are skipped.
    pub(super) async fn subscriptions(
        &self,
        cx: &Context,
        skipped: &mut Skipped,
    ) -> Result<Vec<Subscription>, CollectError> {
        let url = self.account_url("/subscriptions", &[]);
        let raw: Vec<RawSubscription> = self.get_result(cx, &url).await?;
        let mut out = Vec::new();
        for s in raw {
            let id =
                s.id.as_deref()
                    .map(shown)
                    .unwrap_or_else(|| "without an id".into());
            match s.state.as_deref() {
                None | Some("Trial" | "Provisioned" | "Paid" | "AwaitingPayment") => {}
                Some("Cancelled" | "Failed" | "Expired") => continue,
                Some(other) => {
                    self.skip(
                        skipped,
                        "unknown_enum",
                        format!(
                            "subscription {id} is in state {}, which the description does not list",
                            shown(other)
                        ),
                    );
                    continue;
                }
            }
            let Some(price) = s.price else {
                self.skip(
                    skipped,
                    "missing_field",
                    format!("subscription {id} has no price"),
                );
                continue;
            };
            if price.0.is_zero() {
                continue;
            }
            let Some(end) = s.current_period_end.as_deref() else {
                self.skip(
                    skipped,
                    "missing_field",
                    format!("subscription {id} has no current_period_end"),
                );
                continue;
            };
            let Some(at) = wire::date_time(end) else {
                self.skip(
                    skipped,
                    "bad_date",
                    format!(
                        "subscription {id}: current_period_end {} is not a date-time",
                        shown(end)
                    ),
                );
                continue;
            };
            // The price is "in US dollars" unless the subscription names its currency.
            let currency = match s.currency.as_deref() {
                None => Currency::USD,
                Some(code) => match code.trim().parse::<Currency>() {
                    Ok(c) => c,
                    Err(_) => {
                        self.skip(
                            skipped,
                            "unknown_currency",
                            format!(
                                "subscription {id} is in {}, not a known currency",
                                shown(code)
                            ),
                        );
                        continue;
                    }
                },
            };
            // The period the price is for; a frequency beyond the description's list is skipped
            // (its renewals cannot be placed), one absent is taken as a single renewal.
            let weekly = match s.frequency.as_deref() {
                Some("weekly") => true,
                None | Some("monthly" | "quarterly" | "yearly") => false,
                Some(other) => {
                    self.skip(
                        skipped,
                        "unknown_enum",
                        format!(
                            "subscription {id} renews {}, which the description does not list",
                            shown(other)
                        ),
                    );
                    continue;
                }
            };
            let name = s
                .rate_plan
                .as_ref()
                .and_then(|r| r.public_name.clone().or_else(|| r.id.clone()))
                .or(s.id.clone())
                .unwrap_or_else(|| "subscription".into());
            out.push(Subscription {
                name: name.trim().chars().take(64).collect(),
                id: s.id.map(|i| i.trim().chars().take(40).collect()),
                at,
                price: Money {
                    amount: price.0.max(Decimal::ZERO),
                    currency,
                },
                weekly,
            });
        }
        Ok(out)
    }

    /// Pages deployments (builds) created this month, over every project.
    pub(super) async fn pages_builds(&self, cx: &Context) -> Result<u64, CollectError> {
        let mut projects = Vec::new();
        let url = self.account_url("/pages/projects", &[]);
        self.pages(cx, &url, |items: Vec<Project>| {
            projects.extend(items.into_iter().map(|p| p.name));
            Ok(projects.len() < MAX_PROJECTS)
        })
        .await?;
        if projects.len() > MAX_PROJECTS {
            tracing::warn!(
                provider = super::NAME,
                "{} Pages projects; builds are counted for the first {MAX_PROJECTS}",
                projects.len()
            );
            projects.truncate(MAX_PROJECTS);
        }
        let start = cx.month_start();
        let mut builds = 0u64;
        for name in projects {
            let Some(name) = wire::path_segment(&name) else {
                return Err(CollectError::new(
                    Reason::Decode,
                    format!("pages: {name:?} is not a project name"),
                ));
            };
            let path = format!("/pages/projects/{name}/deployments");
            let url = self.account_url(&path, &[]);
            self.pages(cx, &url, |items: Vec<Deployment>| {
                let mut older = false;
                for d in items {
                    match wire::date_time(&d.created_on) {
                        Some(t) if t >= start => builds += 1,
                        Some(_) => older = true,
                        None => {
                            return Err(CollectError::new(
                                Reason::Decode,
                                format!(
                                    "{path}: created_on {} is not a date-time",
                                    shown(&d.created_on)
                                ),
                            ));
                        }
                    }
                }
                // Deployments come newest first (what the API does; not a documented
                // promise): past the month's start, stop reading.
                Ok(!older)
            })
            .await?;
        }
        Ok(builds)
    }
}
