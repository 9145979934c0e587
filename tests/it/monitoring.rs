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

/// The Costs dashboard.
pub fn dashboard() -> Value {
    serde_json::from_slice(
        &std::fs::read(support::repo(
            "monitoring/grafana/provisioning/dashboards/costs.json",
        ))
        .unwrap(),
    )
    .unwrap()
}

/// Every panel with queries (rows' panels included).
pub fn query_panels(d: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        if p["type"] == "row" {
            out.extend(p["panels"].as_array().cloned().unwrap_or_default());
        } else {
            out.push(p.clone());
        }
    }
    out
}

/// Every `expr` of the Costs dashboard with the variables as "All" gives them (`$provider`
/// → `.*`): (panel title, expr).
pub fn dashboard_queries() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in query_panels(&dashboard()) {
        for t in p["targets"].as_array().unwrap() {
            out.push((
                p["title"].as_str().unwrap().to_owned(),
                t["expr"].as_str().unwrap().replace("$provider", ".*"),
            ));
        }
    }
    out
}

/// The text a panel shows when its query returns nothing.
pub fn no_data_text(title: &str) -> Option<String> {
    query_panels(&dashboard())
        .into_iter()
        .find(|p| p["title"] == title)
        .and_then(|p| {
            p["fieldConfig"]["defaults"]["noValue"]
                .as_str()
                .map(str::to_owned)
        })
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
    // Portable: every panel and query uses the datasource variable, which import asks for
    // (`__inputs`); provider and currency are variables; every panel says what to configure
    // when it has no data; money panels say their currency.
    let vars: Vec<&str> = d["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(vars, ["datasource", "provider", "currency"]);
    assert_eq!(d["templating"]["list"][0]["type"], "datasource");
    assert_eq!(d["__inputs"][0]["name"], "DS_PROMETHEUS");
    assert_eq!(d["__inputs"][0]["pluginId"], "prometheus");
    assert!(
        !d.to_string().contains("\"uid\":\"prometheus\""),
        "no hard-coded datasource uid"
    );
    for p in query_panels(&d) {
        let title = p["title"].as_str().unwrap();
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
        for t in p["targets"].as_array().unwrap() {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{title}");
            assert!(
                t["expr"].as_str().unwrap().contains("$provider"),
                "{title}: the provider variable does not filter it"
            );
        }
        assert!(
            p["fieldConfig"]["defaults"]["noValue"]
                .as_str()
                .is_some_and(|t| !t.is_empty()),
            "{title}: no no-data text"
        );
        // Tables built by merging queries need them as tables.
        if p["transformations"].to_string().contains("Value #") {
            for t in p["targets"].as_array().unwrap() {
                assert_eq!(t["format"], "table", "{title}");
            }
        }
    }
    // Rows per concern.
    let rows: Vec<&str> = d["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] == "row")
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    assert!(rows.len() >= 5, "{rows:?}");
    // Money shows its currency: in the stat's name, or in the title.
    for p in query_panels(&d) {
        let expr = p["targets"][0]["expr"].as_str().unwrap();
        if expr.contains("cost_spend")
            || expr.contains("cost_forecast")
            || expr.contains("cost_budget")
        {
            let shown = p["title"].as_str().unwrap().contains("${currency}")
                || p["fieldConfig"]["defaults"]["displayName"]
                    .as_str()
                    .is_some_and(|n| n.contains("currency"))
                || d["panels"].as_array().unwrap().iter().any(|r| {
                    r["type"] == "row"
                        && r["title"].as_str().unwrap().contains("${currency}")
                        && r["panels"].as_array().is_none_or(|ps| ps.is_empty())
                });
            assert!(shown, "{}: money without its currency", p["title"]);
        }
    }
}

/// The dashboard against Grafana's published schema types (npm `@grafana/schema`), compiled
/// with `tsc --strict` as an object literal, so that an unknown key fails; and a control copy
/// with one unknown key must fail.
#[test]
fn the_dashboard_type_checks_against_grafana_s_schema() {
    let dir = support::grafana_schema();
    let mut d = dashboard();
    let obj = d.as_object_mut().unwrap();
    // Import metadata, not part of the dashboard model.
    obj.remove("__inputs");
    obj.remove("__requires");
    let check = |value: &Value, name: &str| -> (bool, String) {
        let file = dir.join(format!("{name}.ts"));
        // JSON holds a TypeScript string enum's value as a string: write it as the member.
        let body = serde_json::to_string_pretty(value)
            .unwrap()
            .replace(
                "\"mode\": \"absolute\"",
                "\"mode\": ThresholdsMode.Absolute",
            )
            .replace(
                "\"mode\": \"percentage\"",
                "\"mode\": ThresholdsMode.Percentage",
            );
        std::fs::write(
            &file,
            format!(
                "import {{ type Dashboard, ThresholdsMode }} from \"@grafana/schema\";\nexport const dashboard: Dashboard = {body};\n"
            ),
        )
        .unwrap();
        let out = std::process::Command::new(dir.join("node_modules/.bin/tsc"))
            .args([
                "--noEmit",
                "--strict",
                "--skipLibCheck",
                "--target",
                "es2020",
                "--moduleResolution",
                "node",
            ])
            .arg(&file)
            .current_dir(&dir)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (ok, out) = check(&d, "costs");
    assert!(ok, "the Costs dashboard does not type-check:\n{out}");
    let mut bad = d.clone();
    bad["panels"][1]["fieldConfig"]["defaults"]["noVlaue"] = Value::from("typo");
    let (ok, out) = check(&bad, "control");
    assert!(!ok, "an unknown key passed the type check");
    assert!(out.contains("noVlaue"), "{out}");
}
