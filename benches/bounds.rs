//! Memory where a large input could make it grow: the built binary's peak resident memory
//! (`VmHWM`, polled) reading back its counters from a Pushgateway that holds tens of MiB of
//! other jobs' metrics, and loading a price table of 15 MiB (near the 16 MiB cap), each next to
//! the same run without the large input. Needs Debian's `prometheus-pushgateway` on PATH.
//! Prints the figures; asserts nothing (`cargo bench --bench bounds`).

#![allow(clippy::print_stdout)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Runs the binary with `args` and `env`, polling its peak memory: (wall s, peak MiB, exit).
fn run(args: &[&str], env: &[(&str, &str)]) -> (f64, f64, Option<i32>) {
    let started = Instant::now();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cost-exporter"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("run cost-exporter");
    let mut peak_kib = 0u64;
    let code = loop {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
            && let Some(v) = status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        {
            peak_kib = peak_kib.max(v);
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    (
        started.elapsed().as_secs_f64(),
        peak_kib as f64 / 1024.0,
        code,
    )
}

fn request(port: u16, method: &str, path: &str, body: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let req = format!(
        "{method} {path} HTTP/1.0\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

struct Pg(Child);

impl Drop for Pg {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn pushgateway(port: u16) -> Pg {
    let pg = Pg(Command::new("prometheus-pushgateway")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus-pushgateway (Debian package) on PATH"));
    for _ in 0..100 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return pg;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the Pushgateway did not start");
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    println!("{:<52} {:>8} {:>10}", "run", "wall s", "peak MiB");

    // The counter read-back: an empty Pushgateway, then one with other jobs' groups.
    let port = 19_391;
    let _pg = pushgateway(port);
    let cfg = dir.path().join("push.toml");
    std::fs::write(
        &cfg,
        format!(
            "[pushgateway]\nurl = \"http://127.0.0.1:{port}\"\n\
             [[fixed]]\nprovider = \"p\"\nname = \"a\"\namount = 1\ncurrency = \"USD\"\n"
        ),
    )
    .expect("write");
    let push = ["push", "--config", cfg.to_str().expect("path")];
    let (wall, peak, code) = run(&push, &[]);
    println!(
        "{:<52} {wall:>8.2} {peak:>10.1}   exit {code:?}",
        "push, empty Pushgateway"
    );
    let filler = "x".repeat(1000);
    for job in 0..8 {
        let mut body = String::from("# TYPE other_metric gauge\n");
        for i in 0..4_500 {
            body.push_str(&format!(
                "other_metric{{series=\"{i}\",note=\"{filler}\"}} {i}\n"
            ));
        }
        request(port, "PUT", &format!("/metrics/job/other-{job}"), &body);
    }
    let size = request(port, "GET", "/api/v1/metrics", "").len();
    let (wall, peak, code) = run(&push, &[]);
    let what = format!("push, /api/v1/metrics of {} MiB", size >> 20);
    println!("{what:<52} {wall:>8.2} {peak:>10.1}   exit {code:?}");

    // The price table: the pinned one, then a 15 MiB file.
    let plain = dir.path().join("pinned.toml");
    std::fs::write(&plain, "[providers.anthropic]\nbudget = 1\n").expect("write");
    let key = [("ANTHROPIC_ADMIN_KEY", "sk-ant-admin01-bench")];
    let (wall, peak, code) = run(&["check", "--config", plain.to_str().expect("path")], &key);
    println!(
        "{:<52} {wall:>8.2} {peak:>10.1}   exit {code:?}",
        "check, pinned price table"
    );
    let table = dir.path().join("prices.json");
    let mut f = std::fs::File::create(&table).expect("create");
    f.write_all(b"{").expect("write");
    let mut written = 1usize;
    let mut n = 0u64;
    while written < 15 << 20 {
        let entry = format!(
            "{}\"model-{n:08}\":{{\"litellm_provider\":\"anthropic\",\"mode\":\"chat\",\"max_input_tokens\":200000,\"input_cost_per_token\":3e-06,\"output_cost_per_token\":1.5e-05,\"cache_read_input_token_cost\":3e-07,\"supports_prompt_caching\":true,\"supported_regions\":[\"us\",\"eu\"]}}",
            if n == 0 { "" } else { "," }
        );
        f.write_all(entry.as_bytes()).expect("write");
        written += entry.len();
        n += 1;
    }
    f.write_all(b"}").expect("write");
    drop(f);
    let big = dir.path().join("table.toml");
    std::fs::write(
        &big,
        format!(
            "[providers.anthropic]\nbudget = 1\nprice_table = \"{}\"\n",
            table.display()
        ),
    )
    .expect("write");
    let (wall, peak, code) = run(&["check", "--config", big.to_str().expect("path")], &key);
    let what = format!("check, a 15 MiB price table ({n} models)");
    println!("{what:<52} {wall:>8.2} {peak:>10.1}   exit {code:?}");
}
