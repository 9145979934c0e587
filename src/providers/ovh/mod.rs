//! OVHcloud: month-to-date spend from this month's bills less its credit notes, per service
//! (the detail lines' `domain`), in the job's tax basis and exact (micro-cent integers where OVH
//! gives them); every service's next renewal and its price; renewals due later this month and
//! not yet billed go into the forecast, never counted twice with a bill. A document, line or
//! renewal price the job cannot count (OVH's `points` and `N/A` currencies, a missing date or
//! price) is skipped and counted, never failing the rest.
//!
//! Two ways to authenticate, as OVH's own tools do: an application key, secret and consumer
//! key signing every request (`$1$` SHA-1 over exactly the URL sent, with the server's clock
//! from `/auth/time`), or an OAuth2 service account (client credentials for a bearer token; the
//! token request is the one POST, to the token endpoint only). Requests are paced under OVH's
//! informal limit of about 60 a minute.
//!
//! Parts: this file (the section, its validation, the collector), `auth` (signature, clock,
//! token, error hints), `bills` (bills, credit notes and their details), `services`
//! (renewals).

mod auth;
mod bills;
mod services;

use std::sync::Arc;

use rust_decimal::Decimal;
use serde::Deserialize;
use time::OffsetDateTime;
use url::Url;

use crate::config::{EnvVar, Section, SectionSchema};
use crate::cost::{Collection, Renewal, Spend, SpendKind};
use crate::error::CollectError;
use crate::money::{ConfigDecimal, Currency, Money, TaxBasis};
use crate::providers::pacer::Pacer;
use crate::providers::wire::net_credits;
use crate::providers::{Api, Collector, Configured, Context, Days, History, Provider};
use crate::secret::RawSecret;

use auth::Credentials;

const NAME: &str = "ovh";
/// The path of OVH's OAuth2 token endpoint: the one path the job POSTs to.
const TOKEN_PATH: &str = "/auth/oauth2/token";
/// Services whose renewals are exported, the soonest first.
const MAX_RENEWALS: usize = 100;
/// Distinct service names in spend before the rest are `other`.
const MAX_NAMES: usize = 50;

/// The registry's description of OVHcloud.
pub(crate) static PROVIDER: Provider = Provider {
    schema: SectionSchema {
        name: NAME,
        env: &[
            EnvVar {
                name: "OVH_APPLICATION_KEY",
                key: "application_key",
                help: "OVHcloud application key (with OVH_APPLICATION_SECRET and OVH_CONSUMER_KEY; a consumer key with GET-only rights).",
            },
            EnvVar {
                name: "OVH_APPLICATION_SECRET",
                key: "application_secret",
                help: "Its application secret.",
            },
            EnvVar {
                name: "OVH_CONSUMER_KEY",
                key: "consumer_key",
                help: "Its consumer key (GET on /me/bill, /me/bill/*, /me/refund, /me/refund/*, /services, /services/*).",
            },
            EnvVar {
                name: "OVH_CLIENT_ID",
                key: "client_id",
                help: "Or: an OVHcloud OAuth2 service account's client id (read-only IAM policy).",
            },
            EnvVar {
                name: "OVH_CLIENT_SECRET",
                key: "client_secret",
                help: "Its client secret.",
            },
        ],
        secrets: &[
            "application_key",
            "application_secret",
            "consumer_key",
            "client_id",
            "client_secret",
        ],
    },
    // The OAuth2 client-credentials token request.
    posts: &[TOKEN_PATH],
    configure,
};

/// `[providers.ovh]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    budget: Option<ConfigDecimal>,
    endpoint: Option<String>,
    base_url: Option<String>,
    token_url: Option<String>,
    currency: Option<String>,
    requests_per_minute: Option<u32>,
    application_key: RawSecret,
    application_secret: RawSecret,
    consumer_key: RawSecret,
    client_id: RawSecret,
    client_secret: RawSecret,
}

/// OVH's API regions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Eu,
    Ca,
    Us,
}

const ENDPOINTS: &[(&str, Endpoint)] = &[
    ("ovh-eu", Endpoint::Eu),
    ("ovh-ca", Endpoint::Ca),
    ("ovh-us", Endpoint::Us),
];

impl Endpoint {
    /// The API base (<https://github.com/ovh/go-ovh>, `ovh/ovh.go`).
    fn api(self) -> &'static str {
        match self {
            Endpoint::Eu => "https://eu.api.ovh.com/1.0",
            Endpoint::Ca => "https://ca.api.ovh.com/1.0",
            Endpoint::Us => "https://api.us.ovhcloud.com/1.0",
        }
    }

    /// The OAuth2 token endpoint of the region.
    fn token(self) -> &'static str {
        match self {
            Endpoint::Eu => "https://www.ovh.com/auth/oauth2/token",
            Endpoint::Ca => "https://ca.ovh.com/auth/oauth2/token",
            Endpoint::Us => "https://us.ovhcloud.com/auth/oauth2/token",
        }
    }

    /// The currency accounts of the region are billed in, unless configured.
    fn currency(self) -> Currency {
        match self {
            Endpoint::Eu => Currency::EUR,
            Endpoint::Ca => "CAD".parse().unwrap_or(Currency::USD),
            Endpoint::Us => Currency::USD,
        }
    }
}

fn configure(s: &mut Section<'_>) -> Option<Configured> {
    let raw: Config = s.extract()?;
    let budget = s.budget(raw.budget);
    let endpoint = s
        .choice("endpoint", raw.endpoint.as_deref(), ENDPOINTS)
        .unwrap_or(Endpoint::Eu);
    let base = s.url(
        "base_url",
        raw.base_url.as_deref().unwrap_or(endpoint.api()),
    );
    let token_url = s.url(
        "token_url",
        raw.token_url.as_deref().unwrap_or(endpoint.token()),
    );
    if let Some(t) = &token_url
        && !t.path().ends_with(TOKEN_PATH)
    {
        s.fail(
            "token_url",
            format!(
                "{:?} does not end in {TOKEN_PATH}, the one path the job may POST to",
                t.as_str()
            ),
        );
    }
    let currency = match raw.currency.as_deref() {
        None => Some(endpoint.currency()),
        Some(c) => match c.parse::<Currency>() {
            Ok(c) if bills::ovh_bills_in(c) => Some(c),
            Ok(c) => {
                s.fail(
                    "currency",
                    format!(
                        "OVHcloud bills in none but {}; {c} is not one of them",
                        bills::ovh_money_codes()
                    ),
                );
                None
            }
            Err(e) => {
                s.fail("currency", e);
                None
            }
        },
    };
    let per_minute = s.count_in("requests_per_minute", raw.requests_per_minute, 1..=6000, 60);
    let credentials = auth::credentials(s, &raw);
    let api = match credentials {
        None => Api::NoCredentials,
        Some(credentials) => {
            let currency = currency?;
            s.bills_in(currency);
            // About 60 requests a minute per consumer key (or service account): paced per
            // credential, so accounts sharing one take turns.
            let pacer = Pacer::shared(
                Pacer::scope(NAME, &credentials.secrets()),
                10.0,
                per_minute as f64 / 60.0,
            );
            Api::Collector(Arc::new(Ovh {
                base: base?,
                token_url: token_url?,
                credentials,
                tax: s.tax(),
                pacer,
            }))
        }
    };
    Some(Configured { budget, api })
}

/// The OVHcloud collector.
struct Ovh {
    base: Url,
    token_url: Url,
    credentials: Credentials,
    tax: TaxBasis,
    pacer: Arc<Pacer>,
}

impl Ovh {
    /// `base` + `path`, with `query`.
    fn url(&self, path: &str, query: &[(&str, &str)]) -> Url {
        let mut url = crate::http::join(&self.base, path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }
}

impl Ovh {
    /// What the month's bills say, per service, in the job's tax basis; a known zero before
    /// the first bill.
    fn spend(&self, month: &bills::MonthBills) -> Vec<Spend> {
        let mut spend = Vec::new();
        for (currency, names) in month.spend(self.tax, MAX_NAMES) {
            for (name, amount) in net_credits(names) {
                spend.push(Spend {
                    money: Money { amount, currency },
                    kind: SpendKind::Billed,
                    labels: vec![("name", name)],
                });
            }
        }
        if spend.is_empty() {
            spend.push(Spend {
                money: Money {
                    amount: Decimal::ZERO,
                    currency: month.currency_hint.unwrap_or(Currency::EUR),
                },
                kind: SpendKind::Billed,
                labels: vec![],
            });
        }
        spend
    }
}

/// The first of the month after `now`'s, 00:00 UTC.
fn month_end(start: OffsetDateTime) -> OffsetDateTime {
    let (y, m) = match start.month() {
        time::Month::December => (start.year() + 1, time::Month::January),
        m => (start.year(), m.next()),
    };
    time::Date::from_calendar_date(y, m, 1)
        .map(|d| d.midnight().assume_utc())
        .unwrap_or(start)
}

#[async_trait::async_trait]
impl Collector for Ovh {
    fn provider(&self) -> &str {
        NAME
    }

    fn source(&self) -> &'static str {
        NAME
    }

    async fn collect(&self, cx: &Context) -> Result<Collection, CollectError> {
        let session = self.session(cx).await?;
        let mut month = self.bills(cx, &session).await?;
        let services = self.services(cx, &session, &mut month.skipped).await?;

        let spend = self.spend(&month);

        // Renewal prices are without tax; with tax included they take the bills' tax rate.
        let ratio = match self.tax {
            TaxBasis::Excluded => Decimal::ONE,
            TaxBasis::Included => match month.tax_ratio() {
                Some(r) => r,
                None => self.recent_tax_ratio(cx, &session).await?.unwrap_or_else(|| {
                    tracing::warn!(
                        provider = NAME,
                        "no bill in the last three months to read the tax rate from: renewal prices are shown without tax"
                    );
                    Decimal::ONE
                }),
            },
        };
        let now = OffsetDateTime::from(cx.now);
        let end = month_end(cx.month_start());
        let mut renewals = Vec::new();
        let mut due = Vec::new();
        let mut upcoming: Vec<services::ServiceInfo> = services
            .into_iter()
            .filter(|s| s.active && s.next.is_some() && s.price.is_some())
            .collect();
        upcoming.sort_by_key(|s| s.next);
        if upcoming.len() > MAX_RENEWALS {
            tracing::warn!(
                provider = NAME,
                "{} services renew; only the {MAX_RENEWALS} soonest are exported",
                upcoming.len()
            );
            upcoming.truncate(MAX_RENEWALS);
        }
        for s in upcoming {
            let (Some(at), Some(price)) = (s.next, s.price) else {
                continue;
            };
            let price = Money {
                amount: crate::providers::wire::mul(price.amount, ratio, "a renewal price")?
                    .round_dp(6),
                currency: price.currency,
            };
            if at > now && at <= end && s.automatic != Some(false) && !month.billed(&s.name, at) {
                due.push(Spend {
                    money: price,
                    kind: SpendKind::Billed,
                    labels: vec![("name", s.name.clone())],
                });
            }
            renewals.push(Renewal {
                name: s.name,
                id: Some(s.id.to_string()),
                at: at.into(),
                price,
                current_price: None,
                automatic: s.automatic,
            });
        }
        Ok(Collection {
            spend,
            due,
            renewals,
            data_as_of: Some(cx.now),
            skipped: month.skipped,
            ..Collection::default()
        })
    }

    /// The bills to each day. Renewals then due are not part of it: a service's past
    /// renewal dates are not kept, so a day's forecast is what was billed by then.
    async fn history(&self, cx: &Context, days: Days) -> Result<Option<History>, CollectError> {
        let session = self.session(cx).await?;
        let end = days.end() - time::Duration::SECOND;
        let mut month = bills::MonthBills::default();
        let mut documents = self
            .documents_between(cx, &session, days.start(), end, &mut month.skipped)
            .await?
            .into_iter()
            .peekable();
        let mut out = Vec::new();
        for day in days.iter() {
            while let Some(d) = documents.peek()
                && Days::day_of(d.date) <= day
            {
                if let Some(d) = documents.next() {
                    month.add(&d)?;
                }
            }
            out.push((
                day,
                Collection {
                    spend: self.spend(&month),
                    data_as_of: Some(Days::end_of(day)),
                    ..Collection::default()
                },
            ));
        }
        Ok(Some(out))
    }

    async fn probe(&self, cx: &Context) -> Result<String, CollectError> {
        let session = self.session(cx).await?;
        let (from, to) = cx.month_window();
        let query = [("date.from", from.as_str()), ("date.to", to.as_str())];
        let bills: Vec<String> = self
            .get_json(cx, &session, &self.url("/me/bill", &query))
            .await?;
        // A key made before credit notes were read may lack their rights: say so here.
        let refunds: Vec<String> = self
            .get_json(cx, &session, &self.url("/me/refund", &query))
            .await?;
        Ok(format!(
            "the {} reads the bills ({} this month) and the credit notes ({})",
            self.credentials.describe(),
            bills.len(),
            refunds.len()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_month_ends_on_the_first_of_the_next() {
        let at = |y, m, d| {
            time::Date::from_calendar_date(y, m, d)
                .unwrap()
                .midnight()
                .assume_utc()
        };
        assert_eq!(
            month_end(at(2026, time::Month::November, 1)),
            at(2026, time::Month::December, 1)
        );
        assert_eq!(
            month_end(at(2026, time::Month::December, 1)),
            at(2027, time::Month::January, 1)
        );
    }
}
