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

/// The example configuration, pushed as a new user would (no credentials: fixed amounts and
/// budgets only), scraped by the real Prometheus with the shipped rules: every panel answers
/// or says what to configure, the budget total counts only collected providers, and no budget
/// alert fires on subscriptions planned close to their budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_pushed_fills_the_dashboard_and_fires_no_budget_alert_on_planned_amounts() {
    let pg = support::Pushgateway::start();
    let example = support::repo("examples/cost-exporter.toml");
    let (code, stderr) = support::push(
        &example,
        &[
            ("COST_EXPORTER_PUSHGATEWAY__URL", pg.url.as_str()),
            support::EXAMPLE_OFFLINE,
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");

    // What the budget total should be, from the job's own output: the budgets of providers
    // that are collected (cost_collector_configured 1).
    let out = support::run(
        &["collect", "--config", example.to_str().unwrap()],
        &[support::EXAMPLE_OFFLINE],
    );
    let (text, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let value = |line: &str| line.rsplit(' ').next().unwrap().parse::<f64>().unwrap();
    let provider = |line: &str| {
        let at = line.find("provider=\"").unwrap() + 10;
        line[at..].split('"').next().unwrap().to_owned()
    };
    let configured: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("cost_collector_configured{") && value(l) == 1.0)
        .map(provider)
        .collect();
    let budgets: Vec<(String, f64)> = text
        .lines()
        .filter(|l| l.starts_with("cost_budget{"))
        .map(|l| (provider(l), value(l)))
        .collect();
    let expected: f64 = budgets
        .iter()
        .filter(|(p, _)| configured.contains(p))
        .map(|(_, v)| v)
        .sum();
    let all: f64 = budgets.iter().map(|(_, v)| v).sum();
    // The example budgets providers it does not collect: the test can tell the two apart.
    assert!(
        all > expected,
        "budgets {budgets:?}, configured {configured:?}"
    );

    let rules = support::repo("monitoring/prometheus/rules");
    let config = format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
         rule_files: ['{}/*.yml']\n\
         scrape_configs:\n  - job_name: pushgateway\n    honor_labels: true\n    \
         static_configs: [{{targets: ['{}']}}]\n",
        rules.display(),
        pg.url.trim_start_matches("http://")
    );
    let prom = std::sync::Arc::new(support::Prometheus::start(&config));
    let p = std::sync::Arc::clone(&prom);
    tokio::task::spawn_blocking(move || {
        p.wait_for(
            r#"count(cost_collector_configured{job="cost-exporter"})"#,
            |v| v >= 9.0,
            std::time::Duration::from_secs(30),
        );
        let seen = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();

        for (title, expr) in dashboard_queries() {
            let data = p
                .query(&expr)
                .unwrap_or_else(|e| panic!("panel {title:?}: {e}"));
            let result = data["result"].as_array().cloned().unwrap_or_default();
            let must_answer = [
                "Total this month",
                "Forecast this month",
                "Budget this month",
                "Providers failing",
                "Spend per provider",
                "Forecast vs budget",
                "Spend over time",
                "Age of last successful collection",
            ]
            .contains(&title.as_str());
            if must_answer {
                assert!(!result.is_empty(), "panel {title:?} is empty: {expr}");
            } else if result.is_empty() {
                assert!(
                    no_data_text(&title).is_some_and(|t| t.len() > 20),
                    "panel {title:?} shows a bare No data"
                );
            }
            if title == "Budget this month" {
                let got: f64 = result[0]["value"][1].as_str().unwrap().parse().unwrap();
                assert!(
                    (got - expected).abs() < 1e-9,
                    "budget panel {got}, collected providers' budgets {expected} (all {all})"
                );
            }
        }

        // The shipped rules, once evaluated over the pushed figures.
        let rules_state = || -> Value {
            let (status, body) =
                support::http("GET", &format!("{}/api/v1/rules", p.url), None, None).unwrap();
            assert_eq!(status, 200, "{body}");
            serde_json::from_str(&body).unwrap()
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let evaluated = loop {
            let state = rules_state();
            let after = state["data"]["groups"]
                .as_array()
                .unwrap()
                .iter()
                .all(|g| {
                    g["lastEvaluation"]
                        .as_str()
                        .and_then(|t| {
                            time::OffsetDateTime::parse(
                                t,
                                &time::format_description::well_known::Rfc3339,
                            )
                            .ok()
                        })
                        .is_some_and(|t| t.unix_timestamp() as f64 > seen + 1.0)
                });
            if after {
                break state;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the rules were not evaluated"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        };
        let firing: Vec<(String, String)> = evaluated["data"]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .flat_map(|r| r["alerts"].as_array().cloned().unwrap_or_default())
            .map(|a| {
                (
                    a["labels"]["alertname"].as_str().unwrap_or("").to_owned(),
                    a["labels"]["provider"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        assert!(
            !firing.iter().any(|(a, _)| a.starts_with("Budget")),
            "budget alerts on planned amounts: {firing:?}"
        );
        // The control: spend is above 80% of the budget for planned subscriptions (claude's
        // 185 of 190), which the former rule would have warned about every day.
        let near = p
            .query(
                r#"sum by (provider) (cost_spend{job="cost-exporter"}) / on (provider) (cost_budget{job="cost-exporter"} > 0) > 0.8"#,
            )
            .unwrap();
        assert!(
            near["result"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["metric"]["provider"] == "claude"),
            "{near}"
        );
    })
    .await
    .unwrap();
}
