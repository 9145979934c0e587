//! Renewals: `GET /services` (ids) and each service's billing: the next billing date, the
//! renewal price for its period, whether it renews by itself, and its state. A renewal priced
//! in no money the job can count (`points`, `N/A`, a currency it cannot convert) is left out
//! and counted as skipped.

use serde::Deserialize;
use time::OffsetDateTime;

use super::Ovh;
use super::auth::Session;
use super::bills::{Price, parse_time};
use crate::cost::Skipped;
use crate::error::{CollectError, Reason};
use crate::money::Money;
use crate::providers::Context;

/// Services read before giving up (`pagination`).
const MAX_SERVICES: usize = 1000;

/// One service's renewal facts; `None` where OVH leaves them out.
#[derive(Debug)]
pub(super) struct ServiceInfo {
    /// The service id (`GET /services/{id}`).
    pub(super) id: u64,
    /// `resource.name`: the name bill details use as `domain`.
    pub(super) name: String,
    /// The next billing date.
    pub(super) next: Option<OffsetDateTime>,
    /// The renewal price for the service's period (without tax).
    pub(super) price: Option<Money>,
    /// Whether it renews by itself.
    pub(super) automatic: Option<bool>,
    /// Not deleted, terminated or suspended.
    pub(super) active: bool,
}

/// `services.expanded.Service`: the description marks no field required.
#[derive(Deserialize)]
struct Service {
    #[serde(default)]
    resource: Option<Resource>,
    #[serde(default)]
    billing: Option<Billing>,
}

#[derive(Deserialize)]
struct Resource {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    state: Option<String>,
}

#[derive(Deserialize)]
struct Billing {
    #[serde(rename = "nextBillingDate", default)]
    next_billing_date: Option<String>,
    #[serde(default)]
    pricing: Option<Pricing>,
    #[serde(default)]
    renew: Option<Renew>,
    #[serde(default)]
    lifecycle: Option<Lifecycle>,
}

#[derive(Deserialize)]
struct Pricing {
    #[serde(default)]
    price: Option<Price>,
}

#[derive(Deserialize)]
struct Renew {
    #[serde(default)]
    current: Option<RenewCurrent>,
}

#[derive(Deserialize)]
struct RenewCurrent {
    #[serde(default)]
    mode: Option<String>,
    #[serde(rename = "nextDate", default)]
    next_date: Option<String>,
}

#[derive(Deserialize)]
struct Lifecycle {
    #[serde(default)]
    current: Option<LifecycleCurrent>,
}

#[derive(Deserialize)]
struct LifecycleCurrent {
    #[serde(default)]
    state: Option<String>,
}

impl Ovh {
    /// Every service with its renewal facts; a renewal price the job cannot count is left
    /// out into `skipped`.
    pub(super) async fn services(
        &self,
        cx: &Context,
        session: &Session,
        skipped: &mut Skipped,
    ) -> Result<Vec<ServiceInfo>, CollectError> {
        let ids: Vec<u64> = self
            .get_json(cx, session, &self.url("/services", &[]))
            .await?;
        if ids.len() > MAX_SERVICES {
            return Err(CollectError::new(
                Reason::Pagination,
                format!("more than {MAX_SERVICES} services"),
            ));
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let what = format!("service {id}");
            let s: Service = self
                .get_json(cx, session, &self.url(&format!("/services/{id}"), &[]))
                .await?;
            let billing = s.billing;
            let renew = billing
                .as_ref()
                .and_then(|b| b.renew.as_ref())
                .and_then(|r| r.current.as_ref());
            let lifecycle = billing
                .as_ref()
                .and_then(|b| b.lifecycle.as_ref())
                .and_then(|l| l.current.as_ref())
                .and_then(|c| c.state.as_deref());
            let state = s.resource.as_ref().and_then(|r| r.state.as_deref());
            let active = !matches!(state, Some("deleted" | "suspended" | "toDelete"))
                && !matches!(lifecycle, Some("terminated" | "unrenewed"));
            let next_text = billing
                .as_ref()
                .and_then(|b| b.next_billing_date.clone())
                .or_else(|| renew.and_then(|r| r.next_date.clone()));
            let next = match next_text {
                None => None,
                Some(t) => Some(parse_time(&t).ok_or_else(|| {
                    let t: String = t.chars().take(40).collect();
                    CollectError::new(
                        Reason::Decode,
                        format!("{what}: nextBillingDate {t:?} is not a date"),
                    )
                })?),
            };
            let pricing = billing
                .as_ref()
                .and_then(|b| b.pricing.as_ref())
                .and_then(|p| p.price.as_ref());
            // The name bill lines use as `domain`: without it a renewal cannot be told apart.
            let name: String = match s.resource.as_ref().and_then(|r| r.name.as_deref()) {
                Some(n) => n.trim().chars().take(64).collect(),
                None => {
                    if active && pricing.is_some() {
                        skipped.record("missing_field", format!("{what}: no resource.name"));
                    }
                    continue;
                }
            };
            let price = match pricing {
                None => None,
                Some(p) => match p
                    .money()
                    .map_err(|e| CollectError::new(Reason::Decode, format!("{what}: {e}")))?
                {
                    Ok(m) => Some(m),
                    Err((reason, why)) => {
                        if active {
                            skipped.record(reason, format!("{what} ({name}), its renewal: {why}"));
                        }
                        None
                    }
                },
            };
            out.push(ServiceInfo {
                id,
                name,
                next,
                price,
                automatic: renew
                    .and_then(|r| r.mode.as_deref())
                    .map(|m| m == "automatic"),
                active,
            });
        }
        Ok(out)
    }
}
