//! Test support: the real Pushgateway on a loopback port, the built binary, a counting TCP
//! listener, and a small HTTP/1.0 client (so that tests do not depend on the code under test
//! to read what was pushed).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// Finds a program on PATH or fails the test saying how to install it.
pub fn require(program: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(program);
        if candidate.is_file() {
            return candidate;
        }
    }
    let how = if package.contains(' ') {
        package.to_owned()
    } else {
        format!("sudo apt-get install -y {package}")
    };
    panic!(
        "`{program}` is not installed; this test needs the real one. \
         Install it with: {how}  (or run `bash .ci/test`, which does)"
    );
}

/// A real `prometheus-pushgateway` on a loopback port, killed on drop.
pub struct Pushgateway {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Basic-auth credentials the test client uses to read it back.
    pub auth: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

/// The test user of `tests/fixtures/pushgateway-web.yml`.
pub const PG_USER: &str = "pusher";
/// Its password.
pub const PG_PASSWORD: &str = "pg-test-password-4711";

impl Pushgateway {
    /// Starts a Pushgateway without authentication.
    pub fn start() -> Pushgateway {
        Self::spawn(None)
    }

    /// Starts one that requires the basic auth of `tests/fixtures/pushgateway-web.yml`.
    pub fn start_with_auth() -> Pushgateway {
        Self::spawn(Some(fixture("pushgateway-web.yml")))
    }

    fn spawn(web_config: Option<PathBuf>) -> Pushgateway {
        let bin = require("prometheus-pushgateway", "prometheus-pushgateway");
        let dir = tempfile::tempdir().expect("tempdir");
        for _ in 0..5 {
            let port = free_port();
            let mut cmd = Command::new(&bin);
            cmd.arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg(format!(
                    "--persistence.file={}",
                    dir.path().join("pg.db").display()
                ))
                .arg("--log.level=warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if let Some(w) = &web_config {
                cmd.arg(format!("--web.config.file={}", w.display()));
            }
            let child = cmd.spawn().expect("cannot start prometheus-pushgateway");
            let mut pg = Pushgateway {
                child,
                url: format!("http://127.0.0.1:{port}"),
                auth: web_config
                    .as_ref()
                    .map(|_| (PG_USER.to_owned(), PG_PASSWORD.to_owned())),
                _dir: tempfile::tempdir().expect("tempdir"),
            };
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = pg.child.try_wait() {
                    break; // port taken: try another
                }
                if let Ok((200, _)) = pg.get("/-/ready") {
                    pg._dir = dir;
                    return pg;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = pg.child.kill();
        }
        panic!("prometheus-pushgateway did not become ready on a loopback port");
    }

    /// GET `path`, authenticated when the gateway needs it.
    pub fn get(&self, path: &str) -> std::io::Result<(u16, String)> {
        http(
            "GET",
            &format!("{}{path}", self.url),
            self.auth.as_ref(),
            None,
        )
    }

    /// Sends `body` to `path` with `method`.
    pub fn send(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        http(
            method,
            &format!("{}{path}", self.url),
            self.auth.as_ref(),
            Some(body),
        )
        .expect("Pushgateway request")
    }

    /// Every group of job `cost-exporter`, from `/api/v1/metrics`.
    pub fn groups(&self) -> Vec<Value> {
        let (status, body) = self.get("/api/v1/metrics").expect("read /api/v1/metrics");
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).expect("JSON from /api/v1/metrics");
        v["data"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|g| g["labels"]["job"] == "cost-exporter")
            .collect()
    }

    /// The value of `metric` with exactly-matching `labels` (besides job/instance) in the
    /// group of `provider` (`None`: the run-level group).
    pub fn value(
        &self,
        provider: Option<&str>,
        metric: &str,
        labels: &[(&str, &str)],
    ) -> Option<f64> {
        self.series(provider, metric)
            .into_iter()
            .find(|(l, _)| {
                labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, v)| v)
    }

    /// Every series of `metric` in a group: (labels, value).
    pub fn series(
        &self,
        provider: Option<&str>,
        metric: &str,
    ) -> Vec<(BTreeMap<String, String>, f64)> {
        let mut out = Vec::new();
        for g in self.groups() {
            let p = g["labels"]["provider"].as_str();
            if p != provider {
                continue;
            }
            let Some(metrics) = g[metric]["metrics"].as_array() else {
                continue;
            };
            for m in metrics {
                let labels: BTreeMap<String, String> = m["labels"]
                    .as_object()
                    .map(|o| {
                        o.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                            .collect()
                    })
                    .unwrap_or_default();
                let value: f64 = m["value"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .expect("numeric value");
                out.push((labels, value));
            }
        }
        out
    }

    /// The Pushgateway's own `pushgateway_http_requests_total` for a handler and code.
    pub fn requests(&self, handler: &str, code: &str) -> f64 {
        let (_, body) = self.get("/metrics").expect("read /metrics");
        body.lines()
            .filter(|l| l.starts_with("pushgateway_http_requests_total{"))
            .filter(|l| {
                l.contains(&format!("handler=\"{handler}\""))
                    && l.contains(&format!("code=\"{code}\""))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Everything the gateway holds, as text (for leak checks).
    pub fn dump(&self) -> String {
        let (_, a) = self.get("/api/v1/metrics").expect("read");
        let (_, b) = self.get("/metrics").expect("read");
        a + &b
    }
}

impl Drop for Pushgateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.0 client.
pub fn http(
    method: &str,
    url: &str,
    auth: Option<&(String, String)>,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    use base64::Engine;
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut s = TcpStream::connect(host)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {host}\r\n");
    if let Some((u, p)) = auth {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        req.push_str(&format!("Authorization: Basic {token}\r\n"));
    }
    let body = body.unwrap_or("");
    if body.starts_with('{') || body.starts_with('[') {
        req.push_str("Content-Type: application/json\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let status = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// A TCP listener that counts connections and answers each with `response` (or closes it at
/// once when `None`). For "no connection was made" and "retried N times" checks.
pub struct Counter {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    count: Arc<AtomicUsize>,
}

impl Counter {
    /// Starts the listener on a thread.
    pub fn start(response: Option<&'static str>) -> Counter {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let count = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&count);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                c.fetch_add(1, Ordering::SeqCst);
                if let Some(resp) = response {
                    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
                    read_request(&mut stream);
                    let _ = stream.write_all(resp.as_bytes());
                    // Close our side only after the peer has the answer: closing with unread
                    // input would reset the connection.
                    let _ = stream.shutdown(std::net::Shutdown::Write);
                    let mut rest = [0u8; 1024];
                    while matches!(stream.read(&mut rest), Ok(n) if n > 0) {}
                }
            }
        });
        Counter { url, count }
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

/// Reads one HTTP request: the head, then `Content-Length` bytes of body.
fn read_request(stream: &mut TcpStream) {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if data.len() >= end + 4 + len {
                return;
            }
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
}

/// A file under `tests/fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A file under the repository root.
pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Runs the built binary with only `env` in its environment (plus PATH), in an empty
/// working directory so no `./cost-exporter.toml` is picked up by accident.
pub fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let cwd = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cost-exporter"));
    cmd.args(args)
        .current_dir(cwd.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run cost-exporter")
}

/// Stdout and stderr of a run, for assertions and failure messages.
pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A directory with npm's `@grafana/schema` and `typescript` installed (`npm ci` from
/// `tests/grafana-schema/package-lock.json`, once per test run, in `target/`).
pub fn grafana_schema() -> PathBuf {
    static ONCE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        let npm = require("npm", "sudo apt-get install -y nodejs npm");
        let src = repo("tests/grafana-schema");
        let dir = repo("target/grafana-schema");
        std::fs::create_dir_all(&dir).expect("target/grafana-schema");
        for f in ["package.json", "package-lock.json"] {
            std::fs::copy(src.join(f), dir.join(f)).expect("copy the npm manifest");
        }
        if !dir.join("node_modules/.bin/tsc").exists() {
            let out = Command::new(npm)
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir)
                .output()
                .expect("npm ci");
            assert!(
                out.status.success(),
                "npm ci in tests/grafana-schema failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        dir
    })
    .clone()
}

/// Writes `content` to a temporary TOML file.
pub fn toml(content: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("tempfile");
    f.write_all(content.as_bytes()).expect("write");
    f
}

/// The test key pair of the S3 server.
pub const S3_ACCESS: &str = "AKTESTWASABI";
/// Its secret.
pub const S3_SECRET: &str = "sk-test-wasabi-secret-31337";

/// A real S3-compatible server that verifies SigV4 signatures (`s3s-fs`), serving `root`
/// (a directory per bucket, a file per object) on a loopback port; killed on drop.
pub struct S3Server {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
}

impl S3Server {
    /// Starts `s3s-fs` over `root`.
    pub fn start(root: &Path) -> S3Server {
        let bin = require(
            "s3s-fs",
            "cargo install s3s-fs --version 0.14.1 --features binary",
        );
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new(&bin)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", S3_ACCESS, "--secret-key", S3_SECRET])
                .arg(root)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start s3s-fs");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return S3Server {
                        child,
                        url: format!("http://127.0.0.1:{port}"),
                    };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("s3s-fs did not start on a loopback port");
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real Prometheus server (Debian `prometheus`) on a loopback port, killed on drop.
pub struct Prometheus {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus with `config` (YAML text).
    pub fn start(config: &str) -> Prometheus {
        Prometheus::start_with(config, None, &[])
    }

    /// Starts Prometheus with `config`, on the TSDB in `data` (a fresh one when `None`), with
    /// `args` added.
    pub fn start_with(config: &str, data: Option<&Path>, args: &[&str]) -> Prometheus {
        let bin = require("prometheus", "prometheus");
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("prometheus.yml");
        std::fs::write(&file, config).expect("write prometheus.yml");
        let data = data.map_or_else(|| dir.path().join("data"), Path::to_path_buf);
        let (child, port) = spawn_on_free_port("prometheus", |port| {
            Command::new(&bin)
                .arg(format!("--config.file={}", file.display()))
                .arg(format!("--storage.tsdb.path={}", data.display()))
                .args(args)
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start prometheus")
        });
        Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }

    /// An instant query; the JSON `data`, or the error.
    pub fn query(&self, expr: &str) -> Result<Value, String> {
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("query", expr)
            .finish();
        let (status, body) = http("GET", &format!("{}/api/v1/query?{q}", self.url), None, None)
            .map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_str(&body).map_err(|e| format!("{status}: {e}: {body}"))?;
        if v["status"] != "success" {
            return Err(format!("{expr}: {body}"));
        }
        Ok(v["data"].clone())
    }

    /// A range query: the JSON `data`, or the error.
    pub fn query_range(
        &self,
        expr: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<Value, String> {
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("query", expr)
            .append_pair("start", &start.to_string())
            .append_pair("end", &end.to_string())
            .append_pair("step", &step.to_string())
            .finish();
        let (status, body) = http(
            "GET",
            &format!("{}/api/v1/query_range?{q}", self.url),
            None,
            None,
        )
        .map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_str(&body).map_err(|e| format!("{status}: {e}: {body}"))?;
        if v["status"] != "success" {
            return Err(format!("{expr}: {body}"));
        }
        Ok(v["data"].clone())
    }

    /// Polls `expr` until it returns at least one sample for which `ok` holds.
    pub fn wait_for(&self, expr: &str, ok: impl Fn(f64) -> bool, within: Duration) -> f64 {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(data) = self.query(expr)
                && let Some(v) = data["result"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s["value"][1].as_str()?.parse::<f64>().ok())
                    .find(|v| ok(*v))
            {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{expr} did not reach the expected value in {within:?}: {:?}",
                self.query(expr)
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real Alertmanager (Debian `prometheus-alertmanager`) on a loopback port.
pub struct Alertmanager {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// `127.0.0.1:<port>`, for Prometheus' alerting config.
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    /// Starts Alertmanager the way the compose stack does: through
    /// `monitoring/alertmanager/entrypoint.sh`, which renders the shipped configuration from
    /// `env` (ALERT_WEBHOOK_URL and friends); the route's group_wait is 1 s.
    pub fn start_from_env(env: &[(&str, &str)]) -> Alertmanager {
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = require("prometheus-alertmanager", "prometheus-alertmanager");
        let rendered = dir.path().join("rendered.yml");
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let script = repo("monitoring/alertmanager/entrypoint.sh");
        let template = repo("monitoring/alertmanager/alertmanager.yml");
        Alertmanager::spawn(
            dir,
            move |cmd| {
                cmd.arg(&script)
                    .env_clear()
                    .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                    .env("ALERTMANAGER_TEMPLATE", &template)
                    .env("ALERTMANAGER_CONFIG", &rendered)
                    .env("ALERTMANAGER_BIN", &bin)
                    .env("ALERT_GROUP_WAIT", "1s");
                for (k, v) in &env {
                    cmd.env(k, v);
                }
            },
            Path::new("/bin/sh"),
        )
    }

    fn spawn(dir: tempfile::TempDir, configure: impl Fn(&mut Command), bin: &Path) -> Alertmanager {
        let data = dir.path().join("data");
        let (child, port) = spawn_on_free_port("alertmanager", |port| {
            let mut cmd = Command::new(bin);
            configure(&mut cmd);
            cmd.arg(format!("--storage.path={}", data.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--cluster.listen-address=")
                .arg("--log.level=warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start alertmanager")
        });
        Alertmanager {
            child,
            url: format!("http://127.0.0.1:{port}"),
            addr: format!("127.0.0.1:{port}"),
            _dir: dir,
        }
    }

    /// The alerts Alertmanager holds (`/api/v2/alerts`).
    pub fn alerts(&self) -> Value {
        let (_, body) =
            http("GET", &format!("{}/api/v2/alerts", self.url), None, None).expect("alerts");
        serde_json::from_str(&body).unwrap_or(Value::Null)
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a server on a port that was free, retrying on another port if it exits (the port
/// was taken in between), until `/-/ready` answers 200.
fn spawn_on_free_port(what: &str, spawn: impl Fn(u16) -> Child) -> (Child, u16) {
    for _ in 0..5 {
        let port = free_port();
        let mut child = spawn(port);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if let Ok((200, _)) = http(
                "GET",
                &format!("http://127.0.0.1:{port}/-/ready"),
                None,
                None,
            ) {
                return (child, port);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("{what} did not become ready on a loopback port");
}

/// [`run`] off the async runtime, so that the test's mock servers keep serving meanwhile.
pub async fn run_async(args: &[&str], env: &[(&str, &str)]) -> Output {
    let owned = |pairs: &[&str]| pairs.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    let args = owned(args);
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        run(&args, &env)
    })
    .await
    .expect("the command's thread")
}

/// `cost-exporter push --config <config>` with `env`, off the async runtime: the exit code
/// and stderr.
pub async fn push(config: &Path, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let path = config.to_str().expect("UTF-8 path");
    let out = run_async(&["push", "--config", path], env).await;
    (out.status.code(), text(&out).1)
}

/// The example configuration reads the ECB's daily rates at every run, its `[fx]` rates the
/// fallback. Tests that run it set its source back to the configured rates with this variable:
/// no network, and the figures of the fallback every day (what a run prints when the ECB
/// cannot be read). `fx::the_example_reads_the_ecb_and_falls_back_to_its_rates` runs it with
/// the ECB served on loopback.
pub const EXAMPLE_OFFLINE: (&str, &str) = ("COST_EXPORTER_FX__SOURCE", "config");

/// What `report --output json --config <config>` prints for `provider` with `env` (off the
/// async runtime): its month-to-date spend and forecast, each as printed (`None`: absent), and
/// the run's stderr. The run must succeed.
pub async fn printed(
    config: &Path,
    env: &[(&str, &str)],
    provider: &str,
) -> (Option<String>, Option<String>, String) {
    let path = config.to_str().expect("UTF-8 path");
    let out = run_async(&["report", "--output", "json", "--config", path], env).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let doc: Value = serde_json::from_str(&stdout).expect("report's JSON");
    let p = doc["providers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["provider"] == provider)
        .unwrap_or_else(|| panic!("no {provider} in {doc:#}"));
    let amount = |key: &str| p[key].as_str().map(str::to_owned);
    (amount("month_to_date"), amount("forecast"), stderr)
}

/// The first of the current month, 00:00 UTC, computed without the code under test.
pub fn month_start() -> time::OffsetDateTime {
    let now = time::OffsetDateTime::now_utc();
    time::Date::from_calendar_date(now.year(), now.month(), 1)
        .expect("a date")
        .midnight()
        .assume_utc()
}
