//! The monitoring assets: rules checked and unit-tested with promtool, the Alertmanager config
//! checked with amtool, the dashboard well formed and naming only exported metrics.

use std::process::Command;

use serde_json::Value;

use crate::support;

fn run(program: &str, package: &str, args: &[&str]) -> (bool, String) {
    let bin = support::require(program, package);
    let out = Command::new(bin)
        .args(args)
        .current_dir(support::repo(""))
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn rules_pass_promtool_check_and_their_unit_tests() {
    let (ok, out) = run(
        "promtool",
        "prometheus",
        &["check", "rules", "monitoring/prometheus/rules/costs.yml"],
    );
    assert!(ok, "{out}");
    let (ok, out) = run(
        "promtool",
        "prometheus",
        &[
            "test",
            "rules",
            "monitoring/prometheus/tests/costs_test.yml",
        ],
    );
    assert!(ok, "{out}");
    // Every alert the rules define has a unit test.
    let rules =
        std::fs::read_to_string(support::repo("monitoring/prometheus/rules/costs.yml")).unwrap();
    let tests =
        std::fs::read_to_string(support::repo("monitoring/prometheus/tests/costs_test.yml"))
            .unwrap();
    for line in rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
    {
        assert!(
            tests.contains(&format!("alertname: {line}")),
            "no promtool test for {line}"
        );
    }
}

#[test]
fn alertmanager_config_passes_amtool() {
    let (ok, out) = run(
        "amtool",
        "prometheus-alertmanager",
        &["check-config", "monitoring/alertmanager/alertmanager.yml"],
    );
    assert!(ok, "{out}");
}

/// Every `expr` of the Costs dashboard.
pub fn dashboard_queries() -> Vec<(String, String)> {
    let d: Value = serde_json::from_slice(
        &std::fs::read(support::repo(
            "monitoring/grafana/provisioning/dashboards/costs.json",
        ))
        .unwrap(),
    )
    .unwrap();
    let mut out = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            out.push((
                p["title"].as_str().unwrap().to_owned(),
                t["expr"].as_str().unwrap().to_owned(),
            ));
        }
    }
    out
}

#[test]
fn the_dashboard_names_only_exported_metrics() {
    let d: Value = serde_json::from_slice(
        &std::fs::read(support::repo(
            "monitoring/grafana/provisioning/dashboards/costs.json",
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(d["title"], "Costs");
    let queries = dashboard_queries();
    assert!(queries.len() >= 12);
    let names: Vec<&str> = cost_exporter::metrics::ALL.iter().map(|m| m.name).collect();
    let re = regex::Regex::new(r"\b(cost_[a-z_]+)\b").unwrap();
    for (title, expr) in &queries {
        for m in re.captures_iter(expr) {
            assert!(
                names.contains(&&m[1]),
                "panel {title:?} uses {} which the job does not export",
                &m[1]
            );
        }
        assert!(
            expr.contains("job=\"cost-exporter\""),
            "panel {title:?} does not select the job"
        );
    }
    // The datasource the panels use is the one provisioned.
    let ds = std::fs::read_to_string(support::repo(
        "monitoring/grafana/provisioning/datasources/prometheus.yml",
    ))
    .unwrap();
    assert!(ds.contains("uid: prometheus"));
    for p in d["panels"].as_array().unwrap() {
        assert_eq!(p["datasource"]["uid"], "prometheus", "{}", p["title"]);
    }
}
