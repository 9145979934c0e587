//! Hardening, tried as an attacker would: extreme numbers through the collectors and the fixed
//! entries (no panic, no 0), a sentinel secret through every route out, bodies and files larger
//! than their caps, signals during a push that hangs, deep environment keys, concurrent runs.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::support::{self, Pushgateway};

/// Nothing panicked: no panic message, no exit code 101.
fn no_panic(code: Option<i32>, stderr: &str) {
    assert_ne!(code, Some(101), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

async fn collect(
    cfg: &tempfile::NamedTempFile,
    env: &[(&str, &str)],
) -> (Option<i32>, String, String) {
    let path = cfg.path().display().to_string();
    let out = support::run_async(&["collect", "--config", &path], env).await;
    let (o, e) = support::text(&out);
    (out.status.code(), o, e)
}

/// 5 × 10^28: one fits in a decimal, two added do not.
const HUGE: &str = "50000000000000000000000000000";

#[tokio::test]
async fn extreme_amounts_fail_their_provider_with_decode_never_a_panic_or_zero() {
    let mock = MockServer::start().await;
    // Vercel: two charges that add up beyond a decimal.
    let line = format!(
        "{{\"BilledCost\":{HUGE},\"ServiceName\":\"Function Invocations\",\"ChargeCategory\":\"Usage\",\"Tags\":{{\"ProjectName\":\"a\"}}}}\n"
    );
    Mock::given(method("GET"))
        .and(path("/v1/billing/charges"))
        .respond_with(ResponseTemplate::new(200).set_body_string(line.repeat(2)))
        .mount(&mock)
        .await;
    // Anthropic: cents that add up beyond a decimal, and a model name with multi-byte
    // characters where a date would be.
    let bucket = |results: serde_json::Value| json!({"data": [{"starting_at": "2026-11-01T00:00:00Z", "ending_at": "2026-11-02T00:00:00Z", "results": results}], "has_more": false, "next_page": null});
    Mock::given(method("GET"))
        .and(path("/v1/organizations/cost_report"))
        .respond_with(ResponseTemplate::new(200).set_body_json(bucket(json!([
            {"amount": format!("{HUGE}00"), "currency": "USD", "model": "m", "workspace_id": "a"},
            {"amount": format!("{HUGE}00"), "currency": "USD", "model": "m", "workspace_id": "b"}
        ]))))
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/organizations/usage_report/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(bucket(json!([
            {"model": "modèle-2024-05-1é", "uncached_input_tokens": 1e30, "output_tokens": 1}
        ]))))
        .mount(&mock)
        .await;
    // OpenAI: a negative cost line is not money that can be true.
    let ob = |results: serde_json::Value| json!({"object": "page", "data": [{"object": "bucket", "start_time": 1793491200, "end_time": 1793577600, "results": results}], "has_more": false, "next_page": null});
    Mock::given(method("GET"))
        .and(path("/v1/organization/costs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(ob(json!([
            {"amount": {"value": -12.5, "currency": "usd"}, "line_item": "gpt-4o, input", "project_id": "p"}
        ]))))
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/organization/usage/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(ob(json!([]))))
        .mount(&mock)
        .await;
    let cfg = support::toml(&format!(
        "currency = \"USD\"\n[http]\nretries = 0\n\
         [providers.vercel]\nbase_url = \"{m}\"\nsource = \"charges\"\n\
         [providers.anthropic]\nbase_url = \"{m}\"\n\
         [providers.openai]\nbase_url = \"{m}\"\n\
         [fx]\nEUR = 10\n\
         [[fixed]]\nprovider = \"big\"\nname = \"x\"\namount = \"{HUGE}\"\ncurrency = \"EUR\"\n",
        m = mock.uri()
    ));
    let (code, stdout, stderr) = collect(
        &cfg,
        &[
            ("VERCEL_API_TOKEN", "t"),
            ("ANTHROPIC_ADMIN_KEY", "k"),
            ("OPENAI_ADMIN_KEY", "k"),
        ],
    )
    .await;
    no_panic(code, &stderr);
    assert_eq!(code, Some(3), "{stderr}");
    for provider in ["vercel", "anthropic", "openai", "big"] {
        assert!(
            stdout.contains(&format!(
                "cost_collector_errors_total{{provider=\"{provider}\",reason=\"decode\"}} 1"
            )),
            "{provider} fails with decode: {stdout}\n{stderr}"
        );
        assert!(
            !stdout
                .lines()
                .any(|l| l.starts_with("cost_spend{")
                    && l.contains(&format!("provider=\"{provider}\""))),
            "{provider}: no spend pushed, never 0"
        );
    }
    assert!(
        stderr.contains("too large") || stderr.contains("overflows"),
        "{stderr}"
    );
    assert!(stderr.contains("negative"), "{stderr}");
}

#[tokio::test]
async fn fixed_entries_that_cannot_be_summed_are_a_configuration_error() {
    let cfg = support::toml(&format!(
        "[[fixed]]\nprovider = \"p\"\nname = \"a\"\namount = \"{HUGE}\"\ncurrency = \"USD\"\n\
         [[fixed]]\nprovider = \"p\"\nname = \"b\"\namount = \"{HUGE}\"\ncurrency = \"USD\"\n"
    ));
    let (code, _, stderr) = collect(&cfg, &[]).await;
    no_panic(code, &stderr);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("fixed[1].amount") && stderr.contains("add up"),
        "{stderr}"
    );
}

const SENTINEL: &str = "SENTINEL-7f3a9c1e55d2b4";

#[test]
fn a_secret_in_a_broken_config_file_is_never_printed() {
    for (what, text) in [
        (
            "unterminated",
            format!("[providers.anthropic]\nadmin_key = \"{SENTINEL}\nbudget = 3\n"),
        ),
        (
            "duplicated",
            format!(
                "[providers.anthropic]\nadmin_key = \"{SENTINEL}\"\nadmin_key = \"{SENTINEL}x\"\n"
            ),
        ),
        (
            "misspelt key",
            format!("[providers.anthropic]\nadmin_kye = \"{SENTINEL}\"\n"),
        ),
        (
            "misspelt token",
            format!("[providers.vercel]\ntokn = \"{SENTINEL}\"\n"),
        ),
        (
            "URL with credentials",
            format!("[pushgateway]\nurl = \"http://user:{SENTINEL}@[bad/\"\n"),
        ),
        (
            "URL with a query",
            format!("[providers.vercel]\nbase_url = \"https://api.vercel.com?token={SENTINEL}\"\n"),
        ),
        (
            "provider URL with credentials",
            format!("[providers.vercel]\nbase_url = \"ftp://u:{SENTINEL}@h\"\n"),
        ),
    ] {
        let cfg = support::toml(&text);
        for cmd in ["check", "check --settings", "push", "collect", "report"] {
            let mut args: Vec<&str> = cmd.split(' ').collect();
            args.extend(["--config", cfg.path().to_str().unwrap()]);
            let out = support::run(&args, &[]);
            let (stdout, stderr) = support::text(&out);
            no_panic(out.status.code(), &stderr);
            assert!(
                !stdout.contains(SENTINEL) && !stderr.contains(SENTINEL),
                "{what} ({cmd}) printed the secret:\n{stdout}\n{stderr}"
            );
        }
    }
}

/// A token as HTTP basic auth carries it: base64 of `user:secret`.
fn basic(user: &str, secret: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"))
}

#[tokio::test]
async fn echoed_credentials_are_scrubbed_in_every_spelling_and_across_a_cut() {
    let mock = MockServer::start().await;
    // The Supabase metrics endpoint echoes the Authorization header it got.
    Mock::given(method("GET"))
        .and(path("/metrics/abcdefghijklmnopqrst"))
        .respond_with(|req: &Request| {
            let auth = req
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            ResponseTemplate::new(403).set_body_string(format!(
                "denied for {auth}; key {}; json {}",
                percent_encoding::utf8_percent_encode(SENTINEL, percent_encoding::NON_ALPHANUMERIC),
                serde_json::to_string(SENTINEL).unwrap()
            ))
        })
        .mount(&mock)
        .await;
    // Vercel answers an error body whose 2048-byte cut falls inside the token.
    let body = format!("{}{SENTINEL}", "x".repeat(2048 - 10));
    Mock::given(method("GET"))
        .and(path("/v1/billing/charges"))
        .respond_with(ResponseTemplate::new(400).set_body_string(body))
        .mount(&mock)
        .await;
    let cfg = support::toml(&format!(
        "currency = \"USD\"\n[http]\nretries = 0\n\
         [providers.supabase]\nbase_url = \"{m}\"\nmetrics_url = \"{m}/metrics/{{ref}}\"\n\
         [providers.vercel]\nbase_url = \"{m}\"\nsource = \"charges\"\n",
        m = mock.uri()
    ));
    let (code, stdout, stderr) = collect(
        &cfg,
        &[
            ("SUPABASE_ACCESS_TOKEN", "sbp_x"),
            ("SUPABASE_PROJECT_REF", "abcdefghijklmnopqrst"),
            ("SUPABASE_SERVICE_ROLE_KEY", SENTINEL),
            ("VERCEL_API_TOKEN", SENTINEL),
        ],
    )
    .await;
    no_panic(code, &stderr);
    assert_eq!(code, Some(3), "{stderr}");
    let b64 = basic("service_role", SENTINEL);
    for needle in [
        SENTINEL,
        &SENTINEL[..10],
        b64.trim_end_matches('='),
        &percent_encoding::utf8_percent_encode(SENTINEL, percent_encoding::NON_ALPHANUMERIC)
            .to_string(),
    ] {
        assert!(
            !stderr.contains(needle) && !stdout.contains(needle),
            "{needle} leaked:\n{stderr}"
        );
    }
    assert!(
        stderr.contains("denied for Basic ***"),
        "the message stays useful: {stderr}"
    );
}

#[tokio::test]
async fn the_pushgateway_s_echo_of_basic_auth_is_scrubbed() {
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(|req: &Request| {
            let auth = req
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            ResponseTemplate::new(400).set_body_string(format!("bad request from {auth}"))
        })
        .mount(&mock)
        .await;
    let cfg = support::toml(&format!(
        "[pushgateway]\nurl = \"{}\"\nretries = 0\n[[fixed]]\nprovider = \"p\"\nname = \"a\"\namount = 1\ncurrency = \"USD\"\n",
        mock.uri()
    ));
    let (code, stderr) = support::push(
        cfg.path(),
        &[
            ("PUSHGATEWAY_USERNAME", "pusher"),
            ("PUSHGATEWAY_PASSWORD", SENTINEL),
        ],
    )
    .await;
    no_panic(code, &stderr);
    let b64 = basic("pusher", SENTINEL);
    assert!(
        !stderr.contains(SENTINEL) && !stderr.contains(b64.trim_end_matches('=')),
        "{stderr}"
    );
    assert!(stderr.contains("bad request from Basic ***"), "{stderr}");
}

/// A server that answers every request with a 200 and an endless body, slowly enough to be a
/// stream and fast enough to pass the cap; returns its URL.
fn endless_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
                );
                let chunk = vec![b' '; 1 << 20];
                loop {
                    let head = format!("{:x}\r\n", chunk.len());
                    if stream.write_all(head.as_bytes()).is_err()
                        || stream.write_all(&chunk).is_err()
                        || stream.write_all(b"\r\n").is_err()
                    {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
        }
    });
    url
}

#[tokio::test]
async fn an_endless_pushgateway_answer_is_cut_at_its_cap() {
    let url = endless_server();
    let cfg = support::toml(&format!(
        "[pushgateway]\nurl = \"{url}\"\nretries = 0\n[run]\npush_timeout = \"60s\"\n\
         [[fixed]]\nprovider = \"p\"\nname = \"a\"\namount = 1\ncurrency = \"USD\"\n"
    ));
    let started = Instant::now();
    let (code, stderr) = support::push(cfg.path(), &[]).await;
    no_panic(code, &stderr);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("larger than 64 MiB"), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn secret_files_must_be_small_regular_files() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success(),
        "mkfifo"
    );
    let big = dir.path().join("big");
    std::fs::write(&big, vec![b'a'; 300 * 1024]).unwrap();
    for (file, why) in [
        (fifo.display().to_string(), "not a regular file"),
        ("/dev/zero".to_owned(), "not a regular file"),
        (dir.path().display().to_string(), "not a regular file"),
        (big.display().to_string(), "at most 65536"),
    ] {
        let started = Instant::now();
        let out = support::run(&["check"], &[("VERCEL_API_TOKEN_FILE", &file)]);
        let (_, stderr) = support::text(&out);
        assert_eq!(out.status.code(), Some(2), "{file}: {stderr}");
        assert!(
            stderr.contains("VERCEL_API_TOKEN_FILE") && stderr.contains(why),
            "{stderr}"
        );
        assert!(started.elapsed() < Duration::from_secs(5), "{file} blocked");
    }
}

/// A listener that accepts connections and never answers: a Pushgateway that hangs.
fn hanging_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    url
}

fn spawn_push(cfg: &std::path::Path) -> std::process::Child {
    let cwd = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_cost-exporter"))
        .args(["push", "--config", cfg.to_str().unwrap()])
        .current_dir(cwd.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_within(child: &mut std::process::Child, within: Duration) -> (Option<i32>, Duration) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status.code(), started.elapsed());
        }
        if started.elapsed() > within {
            let _ = child.kill();
            panic!("still running after {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &std::process::Child, name: &str) {
    assert!(
        Command::new("kill")
            .args([&format!("-{name}"), &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
}

#[test]
fn a_second_signal_ends_a_hanging_push_at_once() {
    let url = hanging_server();
    let cfg = support::toml(&format!(
        "[pushgateway]\nurl = \"{url}\"\ntimeout = \"60s\"\n[run]\npush_timeout = \"60s\"\n\
         [[fixed]]\nprovider = \"p\"\nname = \"a\"\namount = 1\ncurrency = \"USD\"\n"
    ));
    let mut child = spawn_push(cfg.path());
    std::thread::sleep(Duration::from_millis(700));
    signal(&child, "TERM");
    std::thread::sleep(Duration::from_millis(300));
    let sent = Instant::now();
    signal(&child, "TERM");
    let (code, _) = wait_within(&mut child, Duration::from_secs(10));
    assert_eq!(code, Some(130));
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "{:?}",
        sent.elapsed()
    );
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(stderr.contains("received again"), "{stderr}");
}

#[test]
fn the_push_phase_has_its_own_deadline() {
    let url = hanging_server();
    let cfg = support::toml(&format!(
        "[pushgateway]\nurl = \"{url}\"\ntimeout = \"60s\"\n[run]\npush_timeout = \"2s\"\n\
         [[fixed]]\nprovider = \"p\"\nname = \"a\"\namount = 1\ncurrency = \"USD\"\n"
    ));
    let mut child = spawn_push(cfg.path());
    let (code, took) = wait_within(&mut child, Duration::from_secs(20));
    assert_eq!(code, Some(1));
    assert!(took < Duration::from_secs(6), "{took:?}");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(stderr.contains("run.push_timeout"), "{stderr}");
}

#[test]
fn basic_auth_never_crosses_the_network_in_clear() {
    let cfg = support::toml("[pushgateway]\nurl = \"http://pushgateway.example:9091\"\n");
    let env = [
        ("PUSHGATEWAY_USERNAME", "u"),
        ("PUSHGATEWAY_PASSWORD", SENTINEL),
    ];
    let out = support::run(
        &[
            "check",
            "--settings",
            "--config",
            cfg.path().to_str().unwrap(),
        ],
        &env,
    );
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("pushgateway.url") && stderr.contains("in clear"),
        "{stderr}"
    );
    assert!(!stdout.contains(SENTINEL) && !stderr.contains(SENTINEL));
    // https, or http to this machine, is fine.
    for url in ["https://pushgateway.example:9091", "http://127.0.0.1:9091"] {
        let cfg = support::toml(&format!("[pushgateway]\nurl = \"{url}\"\n"));
        let out = support::run(&["check", "--config", cfg.path().to_str().unwrap()], &env);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{url}: {}",
            support::text(&out).1
        );
    }
}

#[test]
fn a_very_deep_environment_key_is_refused_not_a_stack_overflow() {
    let key = format!("COST_EXPORTER_{}", "A__".repeat(40_000) + "A");
    let out = support::run(&["check"], &[(&key, "1")]);
    let (_, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("levels of `__`"), "{stderr}");
}

#[tokio::test]
async fn concurrent_runs_on_one_host_take_turns_at_the_pushgateway() {
    let pg = Pushgateway::start();
    // Hold the lock a run takes for this Pushgateway URL, as a second run pushing would.
    let url = url::Url::parse(&pg.url).unwrap();
    let lock = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        url.as_str().hash(&mut h);
        std::env::temp_dir().join(format!("cost-exporter-push-{:016x}.lock", h.finish()))
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .unwrap();
    file.lock().unwrap();
    let cfg = support::toml(&format!(
        "[pushgateway]\nurl = \"{}\"\n[run]\npush_timeout = \"2s\"\n\
         [[fixed]]\nprovider = \"p\"\nname = \"a\"\namount = 1\ncurrency = \"USD\"\n",
        pg.url
    ));
    let (code, stderr) = support::push(cfg.path(), &[]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("another run is pushing"), "{stderr}");
    assert!(
        pg.value(Some("p"), "cost_spend", &[]).is_none(),
        "nothing pushed while locked"
    );
    file.unlock().unwrap();
    let (code, stderr) = support::push(cfg.path(), &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(pg.value(Some("p"), "cost_spend", &[]), Some(1.0));
}

/// The run warned that it had no push lock, and pushed all the same.
fn pushed_without_the_lock(pg: &Pushgateway, code: Option<i32>, stderr: &str) {
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("pushing without the host-wide push lock"),
        "{stderr}"
    );
    assert_eq!(pg.value(Some("p"), "cost_spend", &[]), Some(1.0));
}

fn fixed_push_config(pg: &Pushgateway) -> tempfile::NamedTempFile {
    support::toml(&format!(
        "[pushgateway]\nurl = \"{}\"\n[run]\npush_timeout = \"3s\"\n\
         [[fixed]]\nprovider = \"p\"\nname = \"a\"\namount = 1\ncurrency = \"USD\"\n",
        pg.url
    ))
}

#[tokio::test]
async fn push_needs_no_writable_temporary_directory() {
    let pg = Pushgateway::start();
    let cfg = fixed_push_config(&pg);
    // No temporary directory at all, as in a container with a read-only root filesystem and
    // no /tmp mount: the lock cannot be created, the push goes on.
    let (code, stderr) = support::push(cfg.path(), &[("TMPDIR", "/nonexistent-dir")]).await;
    pushed_without_the_lock(&pg, code, &stderr);
}

#[test]
fn push_as_an_unprivileged_user_under_a_read_only_temporary_directory() {
    use std::os::unix::fs::PermissionsExt;
    let setpriv = support::require("setpriv", "util-linux");
    let uid = Command::new("id").arg("-u").output().expect("id -u");
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "this test drops to uid 65532 with setpriv and must run as root (CI does)"
    );
    let pg = Pushgateway::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // Owned by root, 0555: not writable by uid 65532, like a read-only /tmp.
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o555)).unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::copy(fixed_push_config(&pg).path(), &cfg).unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new(setpriv)
        .args([
            "--reuid=65532",
            "--regid=65532",
            "--clear-groups",
            "--no-new-privs",
        ])
        .args(["/usr/bin/env", "-i", "PATH=/usr/bin:/bin", "NO_COLOR=1"])
        .arg(format!("TMPDIR={}", tmp.display()))
        .arg(env!("CARGO_BIN_EXE_cost-exporter"))
        .args(["push", "--config", cfg.to_str().unwrap()])
        .current_dir(dir.path())
        .output()
        .expect("run under setpriv");
    let (_, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("Permission denied"), "{stderr}");
    assert_eq!(pg.value(Some("p"), "cost_spend", &[]), Some(1.0));
}

#[test]
fn a_fifo_at_the_push_lock_path_never_hangs_the_push() {
    let pg = Pushgateway::start();
    let cfg = fixed_push_config(&pg);
    let tmp = tempfile::tempdir().unwrap();
    let url = url::Url::parse(&pg.url).unwrap();
    let lock = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        url.as_str().hash(&mut h);
        tmp.path()
            .join(format!("cost-exporter-push-{:016x}.lock", h.finish()))
    };
    let made = Command::new("mkfifo").arg(&lock).status().expect("mkfifo");
    assert!(made.success());
    let cwd = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cost-exporter"))
        .args(["push", "--config", cfg.path().to_str().unwrap()])
        .current_dir(cwd.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("TMPDIR", tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (code, _) = wait_within(&mut child, Duration::from_secs(20));
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    pushed_without_the_lock(&pg, code, &stderr);
}

#[test]
fn a_signal_ends_an_exchange_rate_fetch_that_hangs() {
    // The ECB answers nothing; the fixed entries are collected at once, so the fetch is the
    // only work left when SIGTERM arrives. It used to wait out the HTTP timeout (and its
    // retries), unlogged.
    let ecb = hanging_server();
    let pg = Pushgateway::start();
    let cfg = support::toml(&format!(
        "currency = \"EUR\"\n[pushgateway]\nurl = \"{}\"\n[run]\ntimeout = \"5m\"\n[http]\ntimeout = \"2m\"\n\
         [fx]\nUSD = 0.9\nsource = \"ecb\"\nurl = \"{ecb}/eurofxref-daily.xml\"\n\
         [[fixed]]\nprovider = \"p\"\nname = \"a\"\namount = 1\ncurrency = \"USD\"\n",
        pg.url
    ));
    let mut child = spawn_push(cfg.path());
    std::thread::sleep(Duration::from_millis(1500));
    signal(&child, "TERM");
    let (code, took) = wait_within(&mut child, Duration::from_secs(20));
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(took < Duration::from_secs(10), "{took:?}: {stderr}");
    assert!(
        stderr.contains("SIGTERM received while fetching exchange rates"),
        "{stderr}"
    );
    // The statuses and figures are still pushed, with the configured rate.
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(pg.value(Some("p"), "cost_spend", &[]), Some(0.9));
}

#[test]
fn a_price_table_beyond_its_cap_is_refused_by_name() {
    // 17 MiB of valid entries: it was read whole (up to 64 MiB from a URL, without a limit
    // from a file) and parsed at ten times its size.
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("prices.json");
    let mut text = String::from("{");
    let mut n = 0;
    while text.len() < 17 << 20 {
        if n > 0 {
            text.push(',');
        }
        text.push_str(&format!(
            "\"model-{n:08}\":{{\"input_cost_per_token\":3e-06,\"output_cost_per_token\":1.5e-05,\"mode\":\"chat\",\"litellm_provider\":\"anthropic\"}}"
        ));
        n += 1;
    }
    text.push('}');
    std::fs::write(&table, text).unwrap();
    let cfg = support::toml(&format!(
        "[providers.anthropic]\nprice_table = \"{}\"\n",
        table.display()
    ));
    let out = support::run(
        &["check", "--config", cfg.path().to_str().unwrap()],
        &[("ANTHROPIC_ADMIN_KEY", "sk-ant-admin01-test")],
    );
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("providers.anthropic.price_table") && stderr.contains("larger than 16 MiB"),
        "{stderr}"
    );
}
