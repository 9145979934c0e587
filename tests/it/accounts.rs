//! Named accounts end to end: three accounts on two providers (two Vercel teams sharing a token,
//! a Hostinger account with its own) pushed to the real Pushgateway, one failing on the second
//! run while the others update, budgets per account and per provider alerting in a real
//! Prometheus with the shipped rules, `--only provider/account`, `prune` of a removed account,
//! and a provider without accounts exactly as before.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::contract::Spec;
use crate::support::{self, Prometheus, Pushgateway};

const VERCEL_TOKEN: &str = "vercel-accounts-token-2718";

/// Vercel's billing charges for a team: one usage record of `BilledCost` from the team's
/// amount, held to the pinned description; a team the mock does not know is refused.
struct Charges {
    amounts: BTreeMap<&'static str, f64>,
}

impl Respond for Charges {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let q: BTreeMap<String, String> = req.url.query_pairs().into_owned().collect();
        let auth = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if auth != Some(&format!("Bearer {VERCEL_TOKEN}")) {
            return ResponseTemplate::new(403).set_body_json(
                json!({"error": {"code": "forbidden", "message": "Not authorized"}}),
            );
        }
        let Some(amount) = q.get("teamId").and_then(|t| self.amounts.get(t.as_str())) else {
            return ResponseTemplate::new(404)
                .set_body_json(json!({"error": {"code": "not_found", "message": "no such team"}}));
        };
        let start = support::month_start();
        let record = json!({
            "BilledCost": amount, "BillingCurrency": "USD", "ChargeCategory": "Usage",
            "ChargePeriodStart": start.format(&time::format_description::well_known::Rfc3339).unwrap(),
            "ChargePeriodEnd": (start + time::Duration::HOUR).format(&time::format_description::well_known::Rfc3339).unwrap(),
            "ConsumedQuantity": 1000, "ConsumedUnit": "Invocations", "EffectiveCost": amount,
            "RegionId": "iad1", "RegionName": "Washington, D.C., USA",
            "ServiceName": "Function Invocations", "ServiceCategory": "Compute",
            "ServiceProviderName": "Vercel", "PricingCategory": "Standard",
            "PricingCurrency": "USD", "PricingQuantity": 0.075, "PricingUnit": "MIUs",
            "Tags": {"ProjectId": "prj_web", "ProjectName": "web"}
        });
        let violations = Spec::load("vercel/openapi.json").value_violations("FocusCharge", &record);
        assert!(violations.is_empty(), "{violations:#?}");
        ResponseTemplate::new(200)
            .insert_header("content-type", "application/jsonl")
            .set_body_string(format!("{record}\n"))
    }
}

async fn vercel(amounts: &[(&'static str, f64)]) -> MockServer {
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/billing/charges"))
        .respond_with(Charges {
            amounts: amounts.iter().copied().collect(),
        })
        .mount(&mock)
        .await;
    mock
}

/// A server that answers 500 to everything.
async fn broken() -> MockServer {
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500).set_body_string("down"))
        .mount(&mock)
        .await;
    mock
}

/// Three named accounts on two providers; `hostinger` is client-a's Hostinger API.
fn config(pg: &str, vercel: &str, hostinger: &str) -> tempfile::NamedTempFile {
    support::toml(&format!(
        "currency = \"USD\"\n[fx]\nEUR = 1.1\n[pushgateway]\nurl = \"{pg}\"\n[http]\nretries = 0\n\
         [providers.vercel]\nbase_url = \"{vercel}\"\nsource = \"charges\"\nplan = \"pro\"\nbudget = 12\n\
         [providers.vercel.accounts.client-a]\nteam_id = \"team_a\"\nbudget = 10\n\
         [providers.vercel.accounts.client-b]\nteam_id = \"team_b\"\nbudget = 50\n\
         [providers.hostinger.accounts.client-a]\nbase_url = \"{hostinger}\"\nbudget = 100\n"
    ))
}

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        // One token for both teams, inherited; Hostinger's for its account only.
        ("VERCEL_API_TOKEN", VERCEL_TOKEN),
        ("HOSTINGER_API_TOKEN__CLIENT_A", crate::hostinger::TOKEN),
    ]
}

/// The labels of every group of the job, without `job`, sorted.
fn groups(pg: &Pushgateway) -> Vec<BTreeMap<String, String>> {
    let mut out: Vec<BTreeMap<String, String>> = pg
        .groups()
        .iter()
        .map(|g| {
            g["labels"]
                .as_object()
                .unwrap()
                .iter()
                .filter(|(k, _)| k.as_str() != "job")
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect()
        })
        .collect();
    out.sort();
    out
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// `name` in the group of `provider`/`account` (exact grouping labels).
fn value(
    pg: &Pushgateway,
    provider: &str,
    account: &str,
    name: &str,
    extra: &[(&str, &str)],
) -> Option<f64> {
    let groups = pg.groups();
    let group = groups.iter().find(|g| {
        g["labels"]["provider"] == provider
            && g["labels"]["account"].as_str().unwrap_or("") == account
    })?;
    let fam = group.get(name)?;
    fam["metrics"].as_array()?.iter().find_map(|m| {
        extra
            .iter()
            .all(|(k, v)| m["labels"][*k] == *v)
            .then(|| m["value"].as_str()?.parse().ok())
            .flatten()
    })
}

fn prometheus(pg: &Pushgateway) -> Prometheus {
    let shipped =
        std::fs::read_to_string(support::repo("monitoring/prometheus/prometheus.yml")).unwrap();
    let rules = support::repo("monitoring/prometheus/rules");
    let adapted = shipped
        .replace("scrape_interval: 60s", "scrape_interval: 1s")
        .replace("evaluation_interval: 60s", "evaluation_interval: 1s")
        .replace("rules/*.yml", &format!("{}/*.yml", rules.display()))
        .replace("alertmanager:9093", "127.0.0.1:9")
        .replace("pushgateway:9091", pg.url.trim_start_matches("http://"));
    assert_ne!(adapted, shipped);
    Prometheus::start(&adapted)
}

#[tokio::test]
async fn each_account_is_its_own_group_keeps_its_last_good_figures_and_alerts_on_its_budget() {
    let pg = Pushgateway::start();
    let dates = crate::ovh::Dates::now();
    let hostinger = crate::hostinger::mock(&dates).await;
    let api = vercel(&[("team_a", 9.0), ("team_b", 1.0)]).await;
    let cfg = config(&pg.url, &api.uri(), &hostinger.uri());
    let (code, stderr) = support::push(cfg.path(), &env()).await;
    assert_eq!(code, Some(0), "{stderr}");
    // One group per account, the provider's own group for its total budget, the run's.
    assert_eq!(
        groups(&pg),
        vec![
            labels(&[]),
            labels(&[("account", "client-a"), ("provider", "hostinger")]),
            labels(&[("account", "client-a"), ("provider", "vercel")]),
            labels(&[("account", "client-b"), ("provider", "vercel")]),
            labels(&[("provider", "vercel")]),
        ]
    );
    let spend = |account| value(&pg, "vercel", account, "cost_spend", &[("project", "web")]);
    assert_eq!(spend("client-a"), Some(9.0));
    assert_eq!(spend("client-b"), Some(1.0));
    assert_eq!(
        value(&pg, "vercel", "client-a", "cost_budget", &[]),
        Some(10.0)
    );
    assert_eq!(value(&pg, "vercel", "", "cost_budget", &[]), Some(12.0));
    assert!(value(&pg, "hostinger", "client-a", "cost_spend", &[]).is_some());
    // Every series of a named account carries its account label, in the group and when scraped.
    let scraped = pg.get("/metrics").unwrap().1;
    for line in scraped.lines().filter(|l| l.starts_with("cost_spend{")) {
        assert!(line.contains("account=\"client-"), "{line}");
    }

    // The shipped rules on the real Prometheus: client-a is at 90 % of its budget, client-b at
    // 2 %, the provider's two accounts at 10 of 12 (83 %).
    let prom = prometheus(&pg);
    prom.wait_for(
        r#"count(ALERTS{alertname="BudgetWarning",provider="vercel",account="client-a",resource="spend"})"#,
        |v| v == 1.0,
        Duration::from_secs(30),
    );
    prom.wait_for(
        r#"count(ALERTS{alertname="BudgetWarning",provider="vercel",scope="accounts"})"#,
        |v| v == 1.0,
        Duration::from_secs(30),
    );
    assert!(
        prom.query(r#"ALERTS{alertname="BudgetWarning",account="client-b"}"#)
            .unwrap()["result"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Run 2: Hostinger's account fails, Vercel's client-a grew. The failing account keeps its
    // last good figures and counts its own error; the others update.
    let hostinger_spend = value(&pg, "hostinger", "client-a", "cost_spend", &[]);
    let down = broken().await;
    let api2 = vercel(&[("team_a", 11.0), ("team_b", 1.0)]).await;
    let cfg = config(&pg.url, &api2.uri(), &down.uri());
    let (code, stderr) = support::push(cfg.path(), &env()).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert_eq!(spend("client-a"), Some(11.0));
    assert_eq!(
        value(&pg, "hostinger", "client-a", "cost_collector_up", &[]),
        Some(0.0)
    );
    assert_eq!(
        value(&pg, "hostinger", "client-a", "cost_spend", &[]),
        hostinger_spend
    );
    assert_eq!(
        value(
            &pg,
            "hostinger",
            "client-a",
            "cost_collector_errors_total",
            &[("reason", "http_5xx")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &pg,
            "vercel",
            "client-a",
            "cost_collector_errors_total",
            &[("reason", "http_5xx")]
        ),
        Some(0.0)
    );
    drop(prom);
}

#[tokio::test]
async fn only_one_account_is_touched_and_a_removed_account_is_pruned() {
    let pg = Pushgateway::start();
    let dates = crate::ovh::Dates::now();
    let hostinger = crate::hostinger::mock(&dates).await;
    let api = vercel(&[("team_a", 9.0), ("team_b", 1.0)]).await;
    let cfg = config(&pg.url, &api.uri(), &hostinger.uri());
    let path = cfg.path().display().to_string();
    let mut env = env();
    env.push(("RUST_LOG", "info"));
    let out = support::run_async(
        &["push", "--only", "vercel/client-a", "--config", &path],
        &env,
    )
    .await;
    let (_, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let requests = api.received_requests().await.unwrap();
    assert!(!requests.is_empty());
    assert!(
        requests
            .iter()
            .all(|r| r.url.query().unwrap_or("").contains("teamId=team_a")),
        "only client-a's team was asked"
    );
    assert!(hostinger.received_requests().await.unwrap().is_empty());
    assert_eq!(
        groups(&pg),
        vec![
            labels(&[]),
            labels(&[("account", "client-a"), ("provider", "vercel")]),
            labels(&[("provider", "vercel")]),
        ]
    );
    // An account --only does not know is a configuration error naming what it knows.
    let out = support::run(
        &["collect", "--only", "vercel/client-z", "--config", &path],
        &env,
    );
    let (_, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("vercel/client-a, vercel/client-b"),
        "{stderr}"
    );

    // client-b is removed from the configuration: its group is stale, the others are not.
    let (code, stderr) = support::push(cfg.path(), &env).await;
    assert_eq!(code, Some(0), "{stderr}");
    let without_b = support::toml(&std::fs::read_to_string(cfg.path()).unwrap().replace(
        "[providers.vercel.accounts.client-b]\nteam_id = \"team_b\"\nbudget = 50\n",
        "",
    ));
    let path = without_b.path().display().to_string();
    let out = support::run(&["prune", "--config", &path], &env);
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("stale     provider=vercel  account=client-b"),
        "{stdout}"
    );
    assert!(!stdout.contains("client-a"), "{stdout}");
    let out = support::run(&["prune", "--delete", "--config", &path], &env);
    assert_eq!(out.status.code(), Some(0));
    let left = groups(&pg);
    assert!(!left.contains(&labels(&[("account", "client-b"), ("provider", "vercel")])));
    assert!(left.contains(&labels(&[("account", "client-a"), ("provider", "vercel")])));
    assert!(left.contains(&labels(&[("provider", "vercel")])));
}

#[test]
fn account_variables_inheritance_and_names_are_checked_before_any_request() {
    let counter = support::Counter::start(None);
    let cfg = support::toml(&format!(
        "[providers.vercel]\nbase_url = \"{}\"\nplan = \"pro\"\n\
         [providers.vercel.accounts.client-a]\nteam_id = \"team_a\"\n\
         [providers.vercel.accounts.\"Client B\"]\nteam_id = \"team_b\"\n\
         [providers.vercel.accounts.client_c]\nplan = \"platinum\"\n\
         [providers.vercel.accounts.client-c]\n",
        counter.url
    ));
    let path = cfg.path().display().to_string();
    let out = support::run(
        &["collect", "--config", &path],
        &[
            ("VERCEL_API_TOKEN", VERCEL_TOKEN),
            ("VERCEL_TEAM_ID__CLIENT_D", "team_d"),
        ],
    );
    let (_, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for needle in [
        // A name outside the charset.
        "`providers.vercel.accounts.Client B`: an account name is 1 to 32 lowercase letters",
        // Two names spelled alike in variables.
        "accounts \"client-c\" and \"client_c\" of vercel are spelled alike in variable names (CLIENT_C)",
        // A variable for an account nobody declared.
        "environment variable VERCEL_TEAM_ID__CLIENT_D names account \"client_d\" of vercel",
    ] {
        assert!(stderr.contains(needle), "{needle} not in {stderr}");
    }
    assert_eq!(
        counter.connections(),
        0,
        "no request before the configuration is valid"
    );

    // An inherited value that is wrong is named where it was set, for the account.
    let cfg = support::toml(
        "[providers.vercel]\nplan = \"platinum\"\n[providers.vercel.accounts.client-a]\nteam_id = \"team_a\"\n",
    );
    let out = support::run(
        &["check", "--config", cfg.path().to_str().unwrap()],
        &[("VERCEL_API_TOKEN", VERCEL_TOKEN)],
    );
    let (_, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`providers.vercel.plan` in") && stderr.contains("for account client-a"),
        "{stderr}"
    );

    // Each account's secret from its own variable, _FILE and the credentials directory: check
    // lists each account with where its credentials came from, never the secrets.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("VERCEL_API_TOKEN__CLIENT_B"),
        "s3cret-b-from-dir\n",
    )
    .unwrap();
    let file = dir.path().join("token-a");
    std::fs::write(&file, "s3cret-a-from-file").unwrap();
    let cfg = support::toml(
        "[providers.vercel]\nplan = \"pro\"\n\
         [providers.vercel.accounts.client-a]\nteam_id = \"team_a\"\n\
         [providers.vercel.accounts.client-b]\nteam_id = \"team_b\"\n",
    );
    let out = support::run(
        &["check", "--config", cfg.path().to_str().unwrap()],
        &[
            ("VERCEL_API_TOKEN__CLIENT_A_FILE", file.to_str().unwrap()),
            ("CREDENTIALS_DIRECTORY", dir.path().to_str().unwrap()),
        ],
    );
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("vercel/client-a"), "{stdout}");
    assert!(
        stdout.contains("VERCEL_API_TOKEN__CLIENT_A_FILE"),
        "{stdout}"
    );
    assert!(stdout.contains("VERCEL_API_TOKEN__CLIENT_B"), "{stdout}");
    assert!(
        !stdout.contains("s3cret") && !stderr.contains("s3cret"),
        "{stdout}"
    );
}

/// Normalises what changes from run to run: durations and timestamps.
fn normalised(exposition: &str) -> String {
    exposition
        .lines()
        .map(|l| {
            let timed = [
                "cost_collector_duration_seconds",
                "cost_exporter_run_duration_seconds",
                "cost_collector_last_attempt_timestamp_seconds",
                "cost_collector_last_success_timestamp_seconds",
                "cost_collector_data_as_of_timestamp_seconds",
                "cost_exporter_last_run_timestamp_seconds",
            ];
            if !l.starts_with('#') && timed.iter().any(|m| l.starts_with(m)) {
                let (series, _) = l.rsplit_once(' ').unwrap();
                format!("{series} T")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_provider_without_accounts_prints_exactly_what_it_printed_before_accounts() {
    // A configuration of fixed subscriptions and a provider without credentials, collected by
    // the build before accounts existed (`tests/fixtures/accounts/before.toml`, its output
    // beside it; timestamps and durations normalised, the clock set by COST_EXPORTER_NOW).
    let config = support::fixture("accounts/before.toml");
    let out = support::run(
        &["collect", "--config", config.to_str().unwrap()],
        &[("COST_EXPORTER_NOW", "2026-12-07T06:17:00Z")],
    );
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let before = std::fs::read_to_string(support::fixture("accounts/before.prom")).unwrap();
    assert_eq!(normalised(&stdout), normalised(&before));
    assert!(!stdout.contains("account="), "{stdout}");
}
