//! Invariants of the code's shape, checked on the source tree: only `src/providers/` names a
//! provider, and the top-level modules form no import cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use cost_exporter::providers::PROVIDERS;

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The top-level module a file under `src/` belongs to (`config` for `src/config/layers.rs`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

#[test]
fn only_the_providers_directory_names_a_provider() {
    let src = crate::support::repo("src");
    let names: Vec<String> = PROVIDERS.iter().map(|p| p.schema.name.to_owned()).collect();
    assert!(names.len() >= 5, "{names:?}");
    let mut found = Vec::new();
    for file in rust_files(&src) {
        if file.starts_with(src.join("providers")) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap().to_ascii_lowercase();
        for (n, line) in text.lines().enumerate() {
            for name in &names {
                if line.contains(name.as_str()) {
                    found.push(format!(
                        "{}:{}: names {name}: {}",
                        file.strip_prefix(&src).unwrap().display(),
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "outside src/providers/, code and comments must not name a provider (the registry does):\n{}",
        found.join("\n")
    );
}

/// Edges `a → b`: a file of module `a` names `crate::b` outside a comment.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = crate::support::repo("src");
    let path = regex::Regex::new(r"\bcrate::([a-z_]+)").unwrap();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(&src) {
        let from = module_of(&src, &file);
        let text = std::fs::read_to_string(&file).unwrap();
        let deps = graph.entry(from.clone()).or_default();
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or_default();
            for c in path.captures_iter(code) {
                if c[1] != *from {
                    deps.insert(c[1].to_owned());
                }
            }
        }
    }
    graph
}

/// A cycle through `node`, if any (depth-first search).
fn cycle(
    graph: &BTreeMap<String, BTreeSet<String>>,
    node: &str,
    stack: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(i) = stack.iter().position(|n| n == node) {
        let mut c = stack[i..].to_vec();
        c.push(node.to_owned());
        return Some(c);
    }
    if done.contains(node) {
        return None;
    }
    stack.push(node.to_owned());
    for next in graph.get(node).into_iter().flatten() {
        if let Some(c) = cycle(graph, next, stack, done) {
            return Some(c);
        }
    }
    stack.pop();
    done.insert(node.to_owned());
    None
}

#[test]
fn the_top_level_modules_form_no_import_cycle() {
    let graph = module_graph();
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(c) = cycle(&graph, node, &mut Vec::new(), &mut done) {
            panic!("import cycle: {}\ngraph: {graph:#?}", c.join(" → "));
        }
    }
    // The layers the architecture promises, as absences.
    let deps = |m: &str| graph.get(m).cloned().unwrap_or_default();
    for (module, must_not) in [
        (
            "http",
            &["providers", "error", "run", "metrics", "push"][..],
        ),
        (
            "config",
            &["providers", "http", "run", "metrics", "push", "outcome"][..],
        ),
        ("metrics", &["run", "providers", "push"][..]),
        (
            "outcome",
            &["run", "providers", "config", "http", "metrics", "push"][..],
        ),
        ("error", &["http", "providers", "config"][..]),
    ] {
        for m in must_not {
            assert!(
                !deps(module).contains(*m),
                "{module} must not depend on {m}: {:?}",
                deps(module)
            );
        }
    }
}
