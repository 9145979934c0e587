//! End to end, with the real Pushgateway, Prometheus and Alertmanager on loopback, the shipped
//! Prometheus and Alertmanager configs (addresses and intervals adapted) and rules, the real
//! binary against loopback provider mocks (Vercel, Supabase) and a real S3 server (Wasabi):
//! (1) every dashboard query answers, with current-month numbers for Vercel, Supabase and
//! Wasabi; (2) a Vercel invocation limit of 1, exceeded, fires BudgetWarning in Prometheus and
//! reaches Alertmanager and its webhook; (3) a provider answering 500 does not stop the run,
//! which exits 3, and its cost_collector_errors_total rises in Prometheus.

use std::time::{Duration, Instant};

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::monitoring::dashboard_queries;
use crate::support::{self, Alertmanager, Prometheus, Pushgateway, S3Server};

fn prometheus_config(pg: &Pushgateway, am: &Alertmanager) -> String {
    let shipped =
        std::fs::read_to_string(support::repo("monitoring/prometheus/prometheus.yml")).unwrap();
    let rules = support::repo("monitoring/prometheus/rules");
    let pg_addr = pg.url.trim_start_matches("http://");
    let adapted = shipped
        .replace("scrape_interval: 60s", "scrape_interval: 1s")
        .replace("evaluation_interval: 60s", "evaluation_interval: 1s")
        .replace("rules/*.yml", &format!("{}/*.yml", rules.display()))
        .replace("alertmanager:9093", &am.addr)
        .replace("pushgateway:9091", pg_addr);
    assert_ne!(adapted, shipped);
    assert!(adapted.contains("honor_labels: true"));
    adapted
}

/// Credentials for the mocked providers.
const ENV: &[(&str, &str)] = &[
    ("VERCEL_API_TOKEN", "vercel-e2e-token"),
    ("SUPABASE_ACCESS_TOKEN", crate::supabase::TOKEN),
    ("SUPABASE_PROJECT_REF", crate::supabase::REF),
    ("WASABI_ACCESS_KEY", support::S3_ACCESS),
    ("WASABI_SECRET_KEY", support::S3_SECRET),
    ("OVH_APPLICATION_KEY", crate::ovh::SIGNED_ENV[0].1),
    ("OVH_APPLICATION_SECRET", crate::ovh::SIGNED_ENV[1].1),
    ("OVH_CONSUMER_KEY", crate::ovh::SIGNED_ENV[2].1),
    ("HOSTINGER_API_TOKEN", crate::hostinger::TOKEN),
    ("CLOUDFLARE_API_TOKEN", crate::cloudflare::TOKEN),
    ("CLOUDFLARE_ACCOUNT_ID", crate::cloudflare::ACCOUNT),
    ("ELEVENLABS_API_KEY", crate::elevenlabs::KEY),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_the_alert_and_a_failing_provider_end_to_end() {
    // Providers.
    let vercel = MockServer::start().await;
    let charges = std::fs::read(support::fixture("vercel/charges.jsonl")).unwrap();
    Mock::given(method("GET"))
        .and(path("/v1/billing/charges"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(charges))
        .mount(&vercel)
        .await;
    let supabase = MockServer::start().await;
    crate::supabase::mount_api(&supabase).await;
    let root = tempfile::tempdir().unwrap();
    let bucket = root.path().join("ecotrans-backups/db");
    std::fs::create_dir_all(&bucket).unwrap();
    for i in 0..30 {
        std::fs::write(bucket.join(format!("dump-{i}.sql")), vec![1u8; 1000 + i]).unwrap();
    }
    let s3 = S3Server::start(root.path());
    // OVHcloud's API replaces its [[fixed]] entry and brings renewals.
    let ovh = MockServer::start().await;
    crate::ovh::mount(
        &ovh,
        &crate::ovh::Dates::paris(),
        crate::ovh::Behaviour::signed(),
    )
    .await;
    let hostinger = crate::hostinger::mock(&crate::ovh::Dates::now()).await;
    // The free tiers.
    let cloudflare = MockServer::start().await;
    crate::cloudflare::mount(&cloudflare).await;
    let elevenlabs =
        crate::elevenlabs::mock(time::OffsetDateTime::now_utc().unix_timestamp() + 86_400).await;

    // Monitoring.
    let webhook = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/alerts"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&webhook)
        .await;
    let pg = Pushgateway::start();
    // Configured the way a user does: one environment variable.
    let am = Alertmanager::start_from_env(&[(
        "ALERT_WEBHOOK_URL",
        &format!("{}/alerts", webhook.uri()),
    )]);
    let prom = Prometheus::start(&prometheus_config(&pg, &am));

    let cfg = support::toml(&format!(
        "currency = \"EUR\"\n[fx]\nUSD = 0.92\n[pushgateway]\nurl = \"{}\"\n[http]\nretries = 0\n\
         [providers.vercel]\nbase_url = \"{}\"\nplan = \"hobby\"\nbudget = 0\n\
         [providers.vercel.limits]\nfunction_invocations = 1\n\
         [providers.supabase]\nbase_url = \"{}\"\nplan = \"pro\"\nbudget = 40\n\
         [providers.wasabi]\nendpoint = \"{}\"\nregion = \"eu-central-1\"\nbuckets = [\"ecotrans-backups\"]\nbudget = 15\n\
         [[fixed]]\nprovider = \"ovh\"\nname = \"bms-1\"\namount = 62.5\ncurrency = \"EUR\"\n{}\
         [providers.hostinger]\nbase_url = \"{}\"\n{}\
         [providers.elevenlabs]\nbase_url = \"{}\"\n",
        pg.url,
        vercel.uri(),
        supabase.uri(),
        s3.url,
        crate::ovh::section(&ovh, None),
        hostinger.uri(),
        crate::cloudflare::section(&cloudflare),
        elevenlabs.uri()
    ));
    let (code, stderr) = support::push(cfg.path(), ENV).await;
    assert_eq!(code, Some(0), "{stderr}");

    // (1) Every panel query is valid; the Vercel, Supabase and Wasabi ones have this month's figures.
    let prom = std::sync::Arc::new(prom);
    let p = std::sync::Arc::clone(&prom);
    tokio::task::spawn_blocking(move || {
        p.wait_for(
            r#"cost_exporter_last_run_timestamp_seconds{job="cost-exporter"}"#,
            |_| true,
            Duration::from_secs(30),
        );
        p.wait_for(
            r#"count(cost_usage{job="cost-exporter",provider="wasabi"})"#,
            |v| v > 0.0,
            Duration::from_secs(30),
        );
        let month_start = support::month_start().unix_timestamp() as f64;
        let last = p.wait_for(
            r#"min(cost_collector_last_success_timestamp_seconds{job="cost-exporter"})"#,
            |_| true,
            Duration::from_secs(5),
        );
        assert!(last >= month_start, "figures are from this month");
        for (title, expr) in dashboard_queries() {
            let data = p
                .query(&expr)
                .unwrap_or_else(|e| panic!("panel {title:?}: {e}"));
            let n = data["result"].as_array().map_or(0, Vec::len);
            // Panels of the providers this run collects, and the overall ones, answer; any
            // other panel that is empty shows the sentence that says what to configure.
            let specific = ["vercel", "supabase", "wasabi", "cloudflare"]
                .iter()
                .any(|x| {
                    expr.contains(&format!("provider=\"{x}\"")) || expr.contains(&format!("\"{x}|"))
                });
            let general = !expr.contains("provider=\"")
                && !expr.contains("provider=~\"anthropic")
                && !expr.contains("provider=~\"cloudflare")
                && !title.contains("errors");
            if specific || general {
                assert!(n > 0, "panel {title:?} returned nothing: {expr}");
            } else if n == 0 {
                assert!(
                    crate::monitoring::no_data_text(&title).is_some(),
                    "panel {title:?} is empty without saying why"
                );
            }
        }
    })
    .await
    .unwrap();

    // (2) function_invocations = 1, exceeded: BudgetWarning fires and reaches Alertmanager and
    // the webhook.
    let p = std::sync::Arc::clone(&prom);
    tokio::task::spawn_blocking(move || {
        p.wait_for(
            r#"ALERTS{alertname="BudgetWarning",alertstate="firing",provider="vercel",resource="function_invocations"}"#,
            |v| v == 1.0,
            Duration::from_secs(30),
        );
    })
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let alerts = am.alerts();
        let found = alerts.as_array().into_iter().flatten().any(|a| {
            a["labels"]["alertname"] == "BudgetWarning"
                && a["labels"]["provider"] == "vercel"
                && a["labels"]["job"] == "cost-exporter"
        });
        if found {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "BudgetWarning never reached Alertmanager: {alerts}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Usage is far above 1, so BudgetExceeded fires too and, by the shipped inhibit rule,
    // is what the webhook receives for the same provider and resource.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = webhook.received_requests().await.unwrap_or_default();
        if got.iter().any(|r| {
            let body = String::from_utf8_lossy(&r.body);
            body.contains("BudgetExceeded")
                && body.contains("function_invocations")
                && body.contains("vercel")
        }) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the webhook never received the Vercel alert"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let warning = am
        .alerts()
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| {
            a["labels"]["alertname"] == "BudgetWarning" && a["labels"]["provider"] == "vercel"
        })
        .cloned()
        .unwrap();
    assert_eq!(
        warning["status"]["state"], "suppressed",
        "inhibited by BudgetExceeded: {warning}"
    );

    // (3) Vercel answers 500: the run completes, exits 3, and the error counter rises.
    vercel.reset().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(500)
                .set_body_string("{\"error\":{\"code\":\"internal_server_error\"}}"),
        )
        .mount(&vercel)
        .await;
    let (code, stderr) = support::push(cfg.path(), ENV).await;
    assert_eq!(code, Some(3), "{stderr}");
    let p = std::sync::Arc::clone(&prom);
    tokio::task::spawn_blocking(move || {
        p.wait_for(
            r#"cost_collector_errors_total{job="cost-exporter",provider="vercel",reason="http_5xx"}"#,
            |v| v == 1.0,
            Duration::from_secs(30),
        );
        p.wait_for(r#"cost_collector_up{job="cost-exporter",provider="vercel"}"#, |v| v == 0.0, Duration::from_secs(30));
        // The other providers were collected in the same run.
        p.wait_for(r#"cost_collector_up{job="cost-exporter",provider="supabase"}"#, |v| v == 1.0, Duration::from_secs(5));
        // The last good Vercel figures are still there.
        p.wait_for(r#"sum(cost_usage{job="cost-exporter",provider="vercel",resource="function_invocations"})"#, |v| v > 1.0, Duration::from_secs(5));
    })
    .await
    .unwrap();
}
