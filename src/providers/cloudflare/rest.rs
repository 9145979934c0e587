//! The REST side: the v4 envelope (`success`, `errors`, `result`, `result_info`), this month's
//! billing history, the account's subscriptions, and Pages deployments.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use time::OffsetDateTime;
use url::Url;

use super::Cloudflare;
use crate::error::{CollectError, Reason};
use crate::http::{Auth, describe, read_capped, scrub};
use crate::money::{ConfigDecimal, Currency, Money};
use crate::providers::Context;
use crate::providers::wire;

/// Largest page read.
const BODY_LIMIT: usize = 8 << 20;
/// Items per page asked for.
const PER_PAGE: &str = "50";
/// Pages of one listing before giving up (`pagination`).
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

#[derive(Deserialize, Default, Clone, Copy)]
struct ResultInfo {
    #[serde(default)]
    total_pages: Option<u64>,
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
    pub(super) at: OffsetDateTime,
    pub(super) price: Money,
}

#[derive(Deserialize)]
struct RawSubscription {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    current_period_end: Option<String>,
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

#[derive(Deserialize)]
struct HistoryItem {
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

#[derive(Deserialize)]
struct Deployment {
    #[serde(default)]
    created_on: Option<String>,
}

fn currency(code: Option<&str>, what: &str) -> Result<Currency, CollectError> {
    let code = code.unwrap_or("USD");
    code.parse().map_err(|_| {
        CollectError::new(
            Reason::Decode,
            format!("{what}: {code:?} is not a currency"),
        )
    })
}

impl Cloudflare {
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

    /// Every page of a listing, `keep_going` deciding after each page whether to read on.
    async fn pages<T: DeserializeOwned>(
        &self,
        cx: &Context,
        path: &str,
        mut each: impl FnMut(Vec<T>) -> Result<bool, CollectError>,
    ) -> Result<(), CollectError> {
        for page in 1..=MAX_PAGES {
            let url =
                self.account_url(path, &[("page", &page.to_string()), ("per_page", PER_PAGE)]);
            let (items, info): (Vec<T>, ResultInfo) = self.get_page(cx, &url).await?;
            let empty = items.is_empty();
            if !each(items)? || empty {
                return Ok(());
            }
            if info.total_pages.is_none_or(|t| page >= t) {
                return Ok(());
            }
        }
        Err(CollectError::new(
            Reason::Pagination,
            format!("{path}: more than {MAX_PAGES} pages"),
        ))
    }

    /// This month's charges less refunds, per currency, from the billing history.
    pub(super) async fn charges(
        &self,
        cx: &Context,
    ) -> Result<BTreeMap<Currency, Decimal>, CollectError> {
        let start = cx.month_start();
        let now = OffsetDateTime::from(cx.now);
        let mut out: BTreeMap<Currency, Decimal> = BTreeMap::new();
        self.pages(cx, "/billing/history", |items: Vec<HistoryItem>| {
            for item in items {
                let this_month = item
                    .occurred_at
                    .as_deref()
                    .and_then(wire::date_time)
                    .is_some_and(|t| t >= start && t <= now);
                if !this_month {
                    continue;
                }
                let sign = match item.kind.as_deref().map(str::to_ascii_lowercase).as_deref() {
                    Some("charge") => Decimal::ONE,
                    Some("refund" | "credit") => -Decimal::ONE,
                    // Payments settle charges: counting them too would count twice.
                    _ => continue,
                };
                let cur = currency(item.currency.as_deref(), "billing history")?;
                let amount = item.amount.map(|a| a.0).unwrap_or_default().abs();
                wire::add(
                    out.entry(cur).or_default(),
                    sign * amount,
                    "billing history",
                )?;
            }
            Ok(true)
        })
        .await?;
        for amount in out.values_mut() {
            if amount.is_sign_negative() {
                // More refunded than charged this month: nothing was spent.
                *amount = Decimal::ZERO;
            }
        }
        Ok(out)
    }

    /// The account's active subscriptions with their next billing date and price.
    pub(super) async fn subscriptions(
        &self,
        cx: &Context,
    ) -> Result<Vec<Subscription>, CollectError> {
        let url = self.account_url("/subscriptions", &[]);
        let raw: Vec<RawSubscription> = self.get_result(cx, &url).await?;
        let mut out = Vec::new();
        for s in raw {
            if matches!(s.state.as_deref(), Some("Cancelled" | "Failed" | "Expired")) {
                continue;
            }
            let (Some(end), Some(price)) = (s.current_period_end.as_deref(), s.price) else {
                continue;
            };
            let at = wire::date_time(end).ok_or_else(|| {
                CollectError::new(
                    Reason::Decode,
                    format!("subscriptions: current_period_end {end:?} is not a date-time"),
                )
            })?;
            let name = s
                .rate_plan
                .as_ref()
                .and_then(|r| r.public_name.clone().or_else(|| r.id.clone()))
                .or(s.id)
                .unwrap_or_else(|| "subscription".into());
            out.push(Subscription {
                name: name.trim().chars().take(64).collect(),
                at,
                price: Money {
                    amount: price.0.max(Decimal::ZERO),
                    currency: currency(s.currency.as_deref(), "subscriptions")?,
                },
            });
        }
        Ok(out)
    }

    /// Pages deployments (builds) created this month, over every project.
    pub(super) async fn pages_builds(&self, cx: &Context) -> Result<u64, CollectError> {
        let mut projects = Vec::new();
        self.pages(cx, "/pages/projects", |items: Vec<Project>| {
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
            self.pages(cx, &path, |items: Vec<Deployment>| {
                let mut older = false;
                for d in items {
                    match d.created_on.as_deref().and_then(wire::date_time) {
                        Some(t) if t >= start => builds += 1,
                        Some(_) => older = true,
                        None => {
                            return Err(CollectError::new(
                                Reason::Decode,
                                format!("{path}: a deployment has no created_on"),
                            ));
                        }
                    }
                }
                // Deployments come newest first: past the month's start, stop reading.
                Ok(!older)
            })
            .await?;
        }
        Ok(builds)
    }
}
