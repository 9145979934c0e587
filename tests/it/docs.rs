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
