//! The README's metrics table and the code's metric definitions stay in step.

use cost_exporter::metrics::ALL;

/// Rows `| \`name\` | kind | labels | … |` of the README's metrics table.
fn readme_rows() -> Vec<(String, String, String)> {
    let readme = std::fs::read_to_string(crate::support::repo("README.md")).expect("README.md");
    readme
        .lines()
        .filter(|l| l.starts_with("| `cost_"))
        .map(|l| {
            // `\|` is a pipe inside a cell.
            let l = l.replace("\\|", "\u{1}");
            let cells: Vec<String> = l
                .split('|')
                .map(|c| c.trim().replace('\u{1}', "|"))
                .collect();
            let labels = match cells[3].replace('`', "").as_str() {
                "(none)" => String::new(),
                other => other.to_owned(),
            };
            (
                cells[1].trim_matches('`').to_owned(),
                cells[2].clone(),
                labels,
            )
        })
        .collect()
}

#[test]
fn readme_metrics_table_matches_the_code() {
    let rows = readme_rows();
    let code: Vec<(String, String, String)> = ALL
        .iter()
        .map(|d| {
            (
                d.name.to_owned(),
                d.kind.as_str().to_owned(),
                d.labels.to_owned(),
            )
        })
        .collect();
    for c in &code {
        assert!(
            rows.contains(c),
            "README metrics table lacks or misdescribes {c:?}; expected a row `| `{}` | {} | {} | … |`",
            c.0,
            c.1,
            c.2
        );
    }
    for r in &rows {
        assert!(
            code.contains(r),
            "README documents {r:?}, which the code does not export"
        );
    }
}

#[test]
fn readme_names_the_run_and_test_commands_that_exist() {
    let readme = std::fs::read_to_string(crate::support::repo("README.md")).expect("README.md");
    assert!(readme.contains("cargo run --release -- collect --config examples/cost-exporter.toml"));
    assert!(readme.contains("bash .ci/test"));
    assert!(crate::support::repo(".ci/test").is_file());
    assert!(crate::support::repo("examples/cost-exporter.toml").is_file());
}

/// Every conventional variable the registry knows, with the key it sets.
fn variables() -> Vec<(String, String)> {
    cost_exporter::providers::schema()
        .variables()
        .into_iter()
        .map(|v| (v.var.name.to_owned(), v.key))
        .collect()
}

/// Names that look like conventional variables (`NAME`, upper case) in `text`, per `pick`.
fn listed(text: &str, pick: impl Fn(&str) -> Option<String>) -> Vec<String> {
    text.lines().filter_map(pick).collect()
}

fn check_complete(what: &str, listed: &[String], allowed_extra: &[&str]) {
    let vars = variables();
    let missing: Vec<&String> = vars
        .iter()
        .map(|(n, _)| n)
        .filter(|n| !listed.contains(n))
        .collect();
    assert!(missing.is_empty(), "{what} lacks {missing:?}");
    let stale: Vec<&String> = listed
        .iter()
        .filter(|l| !vars.iter().any(|(n, _)| n == *l) && !allowed_extra.contains(&l.as_str()))
        .collect();
    assert!(
        stale.is_empty(),
        "{what} lists {stale:?}, which no provider reads"
    );
}

#[test]
fn the_env_example_lists_every_variable_of_the_registry() {
    let text = std::fs::read_to_string(crate::support::repo("compose/.env.example")).unwrap();
    let names = listed(&text, |l| {
        let (name, _) = l.split_once('=')?;
        (!l.starts_with('#')).then(|| name.trim().to_owned())
    });
    // Besides the job's variables: RUST_LOG, and what Alertmanager's entrypoint reads.
    let alerting = alert_variables();
    let mut extra: Vec<&str> = vec!["RUST_LOG"];
    extra.extend(alerting.iter().map(String::as_str));
    check_complete("compose/.env.example", &names, &extra);
    // Every receiver setting the entrypoint reads is offered (the _FILE variants and the test
    // knob ALERT_GROUP_WAIT aside).
    for var in &alerting {
        if var.ends_with("_FILE") || var == "ALERT_GROUP_WAIT" {
            continue;
        }
        assert!(
            names.contains(var),
            "compose/.env.example lacks {var}, which monitoring/alertmanager/entrypoint.sh reads"
        );
    }
}

/// The `ALERT_*` variables monitoring/alertmanager/entrypoint.sh reads.
fn alert_variables() -> Vec<String> {
    let text = std::fs::read_to_string(crate::support::repo(
        "monitoring/alertmanager/entrypoint.sh",
    ))
    .unwrap();
    let mut out: Vec<String> = text
        .match_indices("ALERT_")
        .map(|(i, _)| {
            text[i..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                .collect::<String>()
        })
        .filter(|v| !v.ends_with('_'))
        .collect();
    out.sort();
    out.dedup();
    assert!(
        out.contains(&"ALERT_WEBHOOK_URL".to_owned()),
        "no ALERT_ variable found: {out:?}"
    );
    out
}

/// GitHub's anchor of a heading: lower case, spaces to `-`, other punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn every_runbook_url_and_readme_link_points_at_a_readme_section() {
    let readme = std::fs::read_to_string(crate::support::repo("README.md")).unwrap();
    let anchors: Vec<String> = readme
        .lines()
        .filter(|l| l.starts_with('#') && !l.starts_with("#!"))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect();
    let mut targets = Vec::new();
    for file in [
        "monitoring/prometheus/rules/costs.yml",
        "k8s/components/monitoring/prometheusrule.yaml",
    ] {
        let text = std::fs::read_to_string(crate::support::repo(file)).unwrap();
        let mut alerts = 0;
        for line in text.lines() {
            if line.trim_start().starts_with("- alert:") {
                alerts += 1;
            }
        }
        let urls: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("runbook_url:"))
            .collect();
        assert_eq!(urls.len(), alerts, "{file}: every rule needs a runbook_url");
        for url in urls {
            let url = url.trim().trim_matches('"');
            let fragment = url
                .strip_prefix("https://github.com/cost-exporter/cost-exporter/blob/main/README.md#")
                .unwrap_or_else(|| panic!("{file}: runbook_url {url} is not a README section"));
            targets.push((file.to_owned(), fragment.to_owned()));
        }
    }
    // The README's own links to its sections.
    for (i, _) in readme.match_indices("](#") {
        let rest = &readme[i + 3..];
        let end = rest.find(')').unwrap();
        targets.push(("README.md".to_owned(), rest[..end].to_owned()));
    }
    for (file, fragment) in targets {
        assert!(
            anchors.contains(&fragment),
            "{file} links to #{fragment}, which no README heading produces"
        );
    }
}

#[test]
fn the_k8s_example_secret_lists_every_variable_of_the_registry() {
    let text = std::fs::read_to_string(crate::support::repo("k8s/secret.example.yaml")).unwrap();
    let body = text
        .split_once("stringData:")
        .expect("k8s/secret.example.yaml has stringData")
        .1;
    let names = listed(body, |l| {
        let (name, _) = l.trim_start().split_once(':')?;
        (l.starts_with("  ") && !l.trim_start().starts_with('#')).then(|| name.trim().to_owned())
    });
    check_complete("k8s/secret.example.yaml", &names, &[]);
}

#[test]
fn the_readme_variable_table_lists_every_variable_and_the_key_it_sets() {
    let readme = std::fs::read_to_string(crate::support::repo("README.md")).unwrap();
    let table = readme
        .split_once("| variable | sets |")
        .expect("README has a `| variable | sets |` table")
        .1;
    let rows: Vec<&str> = table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .collect();
    let name = regex::Regex::new(r"`([A-Z][A-Z0-9_]+)`").unwrap();
    let mut names = Vec::new();
    for row in &rows {
        let first = row.split('|').nth(1).unwrap_or_default();
        names.extend(name.captures_iter(first).map(|c| c[1].to_owned()));
    }
    check_complete("README's variable table", &names, &[]);
    for (var, key) in variables() {
        let row = rows
            .iter()
            .find(|r| r.contains(&format!("`{var}`")))
            .unwrap();
        let field = key.rsplit('.').next().unwrap();
        assert!(
            row.contains(&format!("`{key}`")) || row.contains(&format!("`.{field}`")),
            "README's row for {var} does not name the key it sets ({key}): {row}"
        );
    }
}

#[test]
fn docs_and_comments_cite_only_what_ships() {
    // A user's clone has the repository and public URLs, nothing else. (The pattern is built
    // from pieces so that this file does not match it.)
    let notes = [
        "providers",
        "providers-bills",
        "reliability",
        "design",
        "style",
    ];
    let private = regex::Regex::new(&format!(
        r"\.\./{}|\b(?:{})\.md\b",
        "shared",
        notes.join("|")
    ))
    .unwrap();
    let repo = crate::support::repo("");
    let mut files = vec![
        repo.join("README.md"),
        repo.join("ARCHITECTURE.md"),
        repo.join("CHANGELOG.md"),
    ];
    let mut dirs = vec![repo.join("src"), repo.join("tests"), repo.join("benches")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path
                .extension()
                .is_some_and(|e| e == "rs" || e == "md" || e == "py")
            {
                files.push(path);
            }
        }
    }
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if private.is_match(line) {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "these cite documents a user's clone does not have:\n{}",
        found.join("\n")
    );

    // Every repository path the README and ARCHITECTURE.md name exists.
    let path = regex::Regex::new(
        r"(?:^|[\s`(])((?:src|tests|monitoring|compose|k8s|benches|examples|data|\.ci)/[A-Za-z0-9_./-]*[A-Za-z0-9_/-])",
    )
    .unwrap();
    let mut missing = Vec::new();
    for doc in ["README.md", "ARCHITECTURE.md"] {
        let text = std::fs::read_to_string(repo.join(doc)).unwrap();
        for c in path.captures_iter(&text) {
            if !repo.join(&c[1]).exists() {
                missing.push(format!("{doc} names {}", &c[1]));
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}
