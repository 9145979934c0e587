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
    let run = |args: &'static [&'static str]| {
        let path = path.clone();
        move || {
            let mut all = vec!["prune", "--config", path.as_str()];
            all.extend_from_slice(args);
            support::run(&all, &[])
        }
    };
    let out = tokio::task::spawn_blocking(run(&[])).await.unwrap();
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("stale     provider=hetzner"), "{stdout}");
    assert!(stdout.contains("last pushed 0.0 days ago"), "{stdout}");
    assert!(!stdout.contains("provider=ionos"), "{stdout}");
    assert!(stdout.contains("prune --delete"), "{stdout}");
    // A dry run deletes nothing.
    assert_eq!(pg.value(Some("hetzner"), "cost_spend", &[]), Some(10.0));
    let out = tokio::task::spawn_blocking(run(&["--delete"]))
        .await
        .unwrap();
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
    let out = tokio::task::spawn_blocking(run(&[])).await.unwrap();
    assert!(support::text(&out).0.contains("no stale group"));
}

#[test]
fn completions_and_the_manual_come_from_the_command_line_definition() {
    for shell in ["bash", "zsh", "fish"] {
        let out = support::run(&["completions", shell], &[]);
        let (stdout, stderr) = support::text(&out);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        for sub in ["push", "collect", "check", "backfill", "prune"] {
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
