//! Out of the box: `prune` against a real Pushgateway, shell completions and the manual page,
//! the LICENSE.

use crate::support::{self, Pushgateway};

fn fixed(pg: &str, providers: &[&str]) -> tempfile::NamedTempFile {
    let mut text = format!("currency = \"EUR\"\n[pushgateway]\nurl = \"{pg}\"\n");
    for p in providers {
        text.push_str(&format!(
            "[[fixed]]\nprovider = \"{p}\"\nname = \"plan\"\namount = 10\ncurrency = \"EUR\"\n"
        ));
    }
    support::toml(&text)
}

#[tokio::test]
async fn prune_lists_then_deletes_only_the_groups_of_removed_providers() {
    let pg = Pushgateway::start();
    let both = fixed(&pg.url, &["ionos", "hetzner"]);
    let (code, stderr) = support::push(both.path(), &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(pg.value(Some("hetzner"), "cost_spend", &[]), Some(10.0));
    // hetzner is removed from the configuration.
    let one = fixed(&pg.url, &["ionos"]);
    let path = one.path().display().to_string();
    // The Pushgateway is its own process: running the binary blocking is fine here.
    let prune = |extra: &[&str]| {
        let mut args = vec!["prune", "--config", path.as_str()];
        args.extend_from_slice(extra);
        support::run(&args, &[])
    };
    let out = prune(&[]);
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("stale     provider=hetzner"), "{stdout}");
    assert!(stdout.contains("last pushed 0.0 days ago"), "{stdout}");
    assert!(!stdout.contains("provider=ionos"), "{stdout}");
    assert!(stdout.contains("prune --delete"), "{stdout}");
    // A dry run deletes nothing.
    assert_eq!(pg.value(Some("hetzner"), "cost_spend", &[]), Some(10.0));
    let out = prune(&["--delete"]);
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("deleted   provider=hetzner"), "{stdout}");
    assert_eq!(pg.value(Some("hetzner"), "cost_spend", &[]), None);
    // The configured provider and the run-level group are untouched.
    assert_eq!(pg.value(Some("ionos"), "cost_spend", &[]), Some(10.0));
    assert!(
        pg.value(None, "cost_exporter_last_run_timestamp_seconds", &[])
            .is_some()
    );
    // Nothing left to prune.
    let out = prune(&[]);
    assert!(support::text(&out).0.contains("no stale group"));
}

#[tokio::test]
async fn prune_all_takes_every_group_of_the_job_out_and_only_with_delete() {
    let pg = Pushgateway::start();
    let cfg = fixed(&pg.url, &["ionos", "hetzner"]);
    let (code, stderr) = support::push(cfg.path(), &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    // Another job's group on the same Pushgateway must survive.
    let (status, body) = pg.send("PUT", "/metrics/job/other", "other_metric 1\n");
    assert_eq!(status, 200, "{body}");
    let path = cfg.path().display().to_string();
    let prune = |extra: &[&str]| {
        let mut args = vec!["prune", "--config", path.as_str(), "--all"];
        args.extend_from_slice(extra);
        support::run(&args, &[])
    };
    let out = prune(&[]);
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // Configured or not, every provider group is listed, and the run-level one.
    for p in ["hetzner", "ionos"] {
        assert!(
            stdout.contains(&format!("group     provider={p}")),
            "{stdout}"
        );
    }
    assert!(stdout.contains("run-level group"), "{stdout}");
    assert!(stdout.contains("prune --all --delete"), "{stdout}");
    assert_eq!(pg.value(Some("ionos"), "cost_spend", &[]), Some(10.0));
    let out = prune(&["--delete"]);
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("deleted   the run-level group"), "{stdout}");
    for p in ["hetzner", "ionos"] {
        assert_eq!(pg.value(Some(p), "cost_spend", &[]), None, "{p}");
    }
    assert_eq!(
        pg.value(None, "cost_exporter_last_run_timestamp_seconds", &[]),
        None
    );
    let (_, metrics) = pg.get("/metrics").unwrap();
    assert!(
        metrics.contains("other_metric{instance=\"\",job=\"other\"} 1"),
        "{metrics}"
    );
}

#[test]
fn completions_and_the_manual_come_from_the_command_line_definition() {
    for shell in ["bash", "zsh", "fish"] {
        let out = support::run(&["completions", shell], &[]);
        let (stdout, stderr) = support::text(&out);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        for sub in ["push", "collect", "report", "check", "backfill", "prune"] {
            assert!(stdout.contains(sub), "{shell} completion lacks {sub}");
        }
    }
    let out = support::run(&["completions", "tcsh"], &[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
    let out = support::run(&["man"], &[]);
    let (stdout, _) = support::text(&out);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout.contains(".TH cost-exporter 1") && stdout.contains("backfill"));
}

#[test]
fn the_license_file_matches_the_manifest() {
    let manifest = std::fs::read_to_string(support::repo("Cargo.toml")).unwrap();
    assert!(manifest.contains("license = \"Apache-2.0\""));
    let license = std::fs::read_to_string(support::repo("LICENSE")).unwrap();
    assert!(license.contains("Apache License") && license.contains("Version 2.0, January 2004"));
    assert!(license.contains("END OF TERMS AND CONDITIONS"));
}

/// Posts one alert to Alertmanager's API, as Prometheus would.
fn fire(am: &support::Alertmanager, name: &str) {
    let body = serde_json::json!([{
        "labels": {"alertname": name, "job": "cost-exporter", "provider": "vercel"},
        "annotations": {"summary": "vercel spend is at 85% of its budget", "description": "d",
                        "runbook_url": "https://github.com/cost-exporter/cost-exporter/blob/main/README.md#budgetwarning"}
    }])
    .to_string();
    let (status, text) = support::http(
        "POST",
        &format!("{}/api/v2/alerts", am.url),
        None,
        Some(&body),
    )
    .unwrap();
    assert_eq!(status, 200, "{text}");
}

/// Waits for `mock` to have received a request on `path`; its body.
async fn delivered(mock: &wiremock::MockServer, path: &str) -> String {
    for _ in 0..100 {
        if let Some(r) = mock
            .received_requests()
            .await
            .unwrap()
            .into_iter()
            .find(|r| r.url.path() == path)
        {
            return String::from_utf8_lossy(&r.body).into_owned();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("nothing delivered to {path}");
}

#[tokio::test]
async fn one_environment_variable_makes_alerts_reach_someone() {
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    // A generic webhook, set directly.
    let am = support::Alertmanager::start_from_env(&[(
        "ALERT_WEBHOOK_URL",
        &format!("{}/hook", receiver.uri()),
    )]);
    fire(&am, "BudgetWarning");
    let body = delivered(&receiver, "/hook").await;
    assert!(
        body.contains("BudgetWarning") && body.contains("85% of its budget"),
        "{body}"
    );
    // A Slack incoming webhook, from a secret file (as Docker and Kubernetes mount them).
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("slack_url");
    std::fs::write(&secret, format!("{}/services/T0/B0/secret", receiver.uri())).unwrap();
    let am = support::Alertmanager::start_from_env(&[
        ("ALERT_SLACK_WEBHOOK_URL_FILE", secret.to_str().unwrap()),
        ("ALERT_SLACK_CHANNEL", "#money"),
    ]);
    fire(&am, "BudgetExceeded");
    let body = delivered(&receiver, "/services/T0/B0/secret").await;
    assert!(
        body.contains("#money") && body.contains("85% of its budget"),
        "{body}"
    );
    assert!(
        body.contains("README.md#budgetwarning"),
        "the runbook link travels: {body}"
    );
}

#[test]
fn the_alertmanager_entrypoint_renders_valid_configurations() {
    let amtool = support::require("amtool", "prometheus-alertmanager");
    for env in [
        vec![],
        vec![("ALERT_WEBHOOK_URL", "https://hooks.example/x?token=a'b")],
        vec![(
            "ALERT_SLACK_WEBHOOK_URL",
            "https://hooks.slack.com/services/T/B/X",
        )],
        vec![
            ("ALERT_EMAIL_TO", "team@example.com"),
            ("ALERT_SMTP_SMARTHOST", "smtp.example.com:587"),
            ("ALERT_SMTP_FROM", "alerts@example.com"),
            ("ALERT_SMTP_USERNAME", "alerts@example.com"),
            ("ALERT_SMTP_PASSWORD", "p'ss \"word\""),
        ],
    ] {
        let dir = tempfile::tempdir().unwrap();
        let rendered = dir.path().join("am.yml");
        let mut cmd = std::process::Command::new("/bin/sh");
        cmd.arg(support::repo("monitoring/alertmanager/entrypoint.sh"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env(
                "ALERTMANAGER_TEMPLATE",
                support::repo("monitoring/alertmanager/alertmanager.yml"),
            )
            .env("ALERTMANAGER_CONFIG", &rendered)
            // Instead of running Alertmanager, render and stop; amtool checks the file.
            .env("ALERTMANAGER_BIN", "/bin/true");
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{:?}: {}",
            env,
            String::from_utf8_lossy(&out.stderr)
        );
        let check = std::process::Command::new(&amtool)
            .args(["check-config"])
            .arg(&rendered)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{env:?}: {}\n{}",
            String::from_utf8_lossy(&check.stdout),
            std::fs::read_to_string(&rendered).unwrap()
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&rendered).unwrap().permissions(),
        );
        assert_eq!(
            mode & 0o077,
            0,
            "the rendered file holds secrets: not readable by others"
        );
    }
    // E-mail without its server is refused with the variable named.
    let out = std::process::Command::new("/bin/sh")
        .arg(support::repo("monitoring/alertmanager/entrypoint.sh"))
        .env(
            "ALERTMANAGER_TEMPLATE",
            support::repo("monitoring/alertmanager/alertmanager.yml"),
        )
        .env(
            "ALERTMANAGER_CONFIG",
            tempfile::tempdir().unwrap().path().join("x.yml"),
        )
        .env("ALERT_EMAIL_TO", "team@example.com")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ALERT_SMTP_SMARTHOST"));
}

#[tokio::test]
async fn the_pushgateway_persistence_file_keeps_the_groups_and_counters_across_a_restart() {
    // The compose stack's flags (--persistence.file, --persistence.interval) on the real
    // Pushgateway: push, stop it as `docker compose restart` does (SIGTERM), start it again on
    // the same file.
    let bin = support::require("prometheus-pushgateway", "prometheus-pushgateway");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pushgateway.db");
    let start = |port: u16| {
        std::process::Command::new(&bin)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--persistence.file={}", file.display()))
            .arg("--persistence.interval=1m")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let ready = |port: u16| {
        for _ in 0..100 {
            if let Ok((200, _)) = support::http(
                "GET",
                &format!("http://127.0.0.1:{port}/-/ready"),
                None,
                None,
            ) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("the Pushgateway did not start");
    };
    let port = support::free_port();
    let mut pg = start(port);
    ready(port);
    let url = format!("http://127.0.0.1:{port}");
    let cfg = fixed(&url, &["ionos"]);
    let (code, stderr) = support::push(cfg.path(), &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    std::process::Command::new("kill")
        .args(["-TERM", &pg.id().to_string()])
        .status()
        .unwrap();
    pg.wait().unwrap();
    assert!(file.exists(), "written on shutdown");
    let port2 = support::free_port();
    let mut pg2 = start(port2);
    ready(port2);
    let (_, body) = support::http(
        "GET",
        &format!("http://127.0.0.1:{port2}/api/v1/metrics"),
        None,
        None,
    )
    .unwrap();
    let _ = pg2.kill();
    let _ = pg2.wait();
    assert!(body.contains("\"provider\":\"ionos\""), "{body}");
    assert!(
        body.contains("cost_collector_errors_total"),
        "the counters survive too"
    );
}

#[test]
fn a_directory_of_credential_files_is_read_like_the_environment() {
    // A Kubernetes Secret mounted as a volume, or systemd's LoadCredential=.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("VERCEL_API_TOKEN"), "vercel-from-a-file\n").unwrap();
    let cfg = support::toml("[providers.vercel]\nbudget = 5\n");
    let out = support::run(
        &[
            "check",
            "--settings",
            "--config",
            cfg.path().to_str().unwrap(),
        ],
        &[("CREDENTIALS_DIRECTORY", dir.path().to_str().unwrap())],
    );
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("providers.vercel.token = ***")
            && stdout.contains("(in CREDENTIALS_DIRECTORY)"),
        "{stdout}"
    );
    assert!(!stdout.contains("vercel-from-a-file"));
    // The summary names the file the credential came from too.
    let summary = stdout.split("effective settings").next().unwrap();
    assert!(
        summary.contains("credentials: token from file")
            && summary.contains("(in CREDENTIALS_DIRECTORY)"),
        "{summary}"
    );
    // The environment still wins, and a variable without a file is simply unset.
    let out = support::run(
        &["check", "--config", cfg.path().to_str().unwrap()],
        &[
            ("CREDENTIALS_DIRECTORY", dir.path().to_str().unwrap()),
            ("VERCEL_API_TOKEN", "from-env"),
        ],
    );
    let (stdout, _) = support::text(&out);
    assert!(
        stdout.contains("environment variable VERCEL_API_TOKEN"),
        "{stdout}"
    );
}

#[tokio::test]
async fn prune_deletes_exactly_the_stale_group_whatever_its_name() {
    use base64::Engine;
    let pg = Pushgateway::start();
    let cfg = fixed(&pg.url, &["ionos"]);
    let (code, stderr) = support::push(cfg.path(), &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    // Stale groups named like the configured provider but for a line break, a carriage
    // return or a tab, and groups named `.` and `..` (pushed as @base64, as any client may).
    let stale = ["ionos\n", "ionos\r", "ion\tos", ".", ".."];
    for name in stale {
        let enc = base64::engine::general_purpose::URL_SAFE.encode(name);
        let (status, body) = pg.send(
            "PUT",
            &format!("/metrics/job/cost-exporter/provider@base64/{enc}"),
            "# TYPE cost_spend gauge\ncost_spend{currency=\"EUR\"} 1\n",
        );
        assert_eq!(status, 200, "{name:?}: {body}");
    }
    let path = cfg.path().display().to_string();
    let out = support::run(&["prune", "--delete", "--config", &path], &[]);
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let left: Vec<String> = pg
        .groups()
        .iter()
        .filter_map(|g| g["labels"]["provider"].as_str().map(str::to_owned))
        .collect();
    // Names are printed with their control characters escaped.
    assert!(
        stdout.contains("deleted   provider=ionos\\n  ("),
        "{stdout}"
    );
    // Every stale group is gone; the configured provider's group was never touched.
    assert_eq!(left, vec!["ionos".to_owned()], "{stdout}");
    assert_eq!(pg.value(Some("ionos"), "cost_spend", &[]), Some(10.0));
}
