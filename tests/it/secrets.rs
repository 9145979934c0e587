//! A sentinel secret, run through every failure path the spine has, never appears in stdout,
//! stderr or the Pushgateway.

use crate::support::{self, Counter, Pushgateway};

const SENTINEL: &str = "s3ntinel-7c1e5b9a";

fn example() -> String {
    support::repo("examples/cost-exporter.toml")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn a_sentinel_secret_never_leaks() {
    let auth_pg = Pushgateway::start_with_auth();
    let plain_pg = Pushgateway::start();
    let down = Counter::start(Some(
        "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 45\r\nConnection: close\r\n\r\nerror near Authorization: s3ntinel-7c1e5b9a!!",
    ));
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, format!("{SENTINEL}\n")).unwrap();
    let bad_url = format!("http://user:{SENTINEL}@127.0.0.1:9/");
    let inner_space = format!("{SENTINEL} x");
    let echo = Counter::start(Some(
        "HTTP/1.1 401 Unauthorized\r\nContent-Length: 42\r\nConnection: close\r\n\r\n{\"error\":\"bad token s3ntinel-7c1e5b9a\"}   ",
    ));
    // A Google service-account key whose id is the sentinel, with the echoing server as its
    // token endpoint.
    let google_key = crate::google::key_file(
        &format!("{}/token", echo.url),
        "test-service-account.key.pem",
        SENTINEL,
    );
    let every_secret: Vec<(&str, &str)> = vec![
        (
            "COST_EXPORTER_PROVIDERS__VERCEL__BASE_URL",
            echo.url.as_str(),
        ),
        (
            "COST_EXPORTER_PROVIDERS__SUPABASE__BASE_URL",
            echo.url.as_str(),
        ),
        (
            "COST_EXPORTER_PROVIDERS__ANTHROPIC__BASE_URL",
            echo.url.as_str(),
        ),
        (
            "COST_EXPORTER_PROVIDERS__OPENAI__BASE_URL",
            echo.url.as_str(),
        ),
        ("SUPABASE_PROJECT_REF", "abcdefghijklmnopqrst"),
        (
            "COST_EXPORTER_PROVIDERS__WASABI__ENDPOINT",
            echo.url.as_str(),
        ),
        ("COST_EXPORTER_PROVIDERS__OVH__BASE_URL", echo.url.as_str()),
        (
            "COST_EXPORTER_PROVIDERS__HOSTINGER__BASE_URL",
            echo.url.as_str(),
        ),
        ("OVH_APPLICATION_KEY", SENTINEL),
        ("OVH_APPLICATION_SECRET", SENTINEL),
        ("OVH_CONSUMER_KEY", SENTINEL),
        ("HOSTINGER_API_TOKEN", SENTINEL),
        (
            "COST_EXPORTER_PROVIDERS__CLOUDFLARE__BASE_URL",
            echo.url.as_str(),
        ),
        (
            "COST_EXPORTER_PROVIDERS__ELEVENLABS__BASE_URL",
            echo.url.as_str(),
        ),
        ("CLOUDFLARE_API_TOKEN", SENTINEL),
        ("CLOUDFLARE_ACCOUNT_ID", "0123456789abcdef0123456789abcdef"),
        ("ELEVENLABS_API_KEY", SENTINEL),
        ("GOOGLE_CREDENTIALS", google_key.as_str()),
        ("GOOGLE_BILLING_EXPORT_TABLE", "p.d.t"),
        (
            "COST_EXPORTER_PROVIDERS__GOOGLE__BASE_URL",
            echo.url.as_str(),
        ),
        ("VERCEL_API_TOKEN", SENTINEL),
        ("SUPABASE_ACCESS_TOKEN", SENTINEL),
        ("WASABI_ACCESS_KEY", SENTINEL),
        ("WASABI_SECRET_KEY", SENTINEL),
        ("ANTHROPIC_ADMIN_KEY", SENTINEL),
        ("OPENAI_ADMIN_KEY", SENTINEL),
        ("RUST_LOG", "trace"),
        ("COST_EXPORTER_HTTP__RETRIES", "1"),
    ];
    let with = |extra: &[(&'static str, &str)]| -> Vec<(String, String)> {
        every_secret
            .iter()
            .chain(extra.iter())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    type Path<'a> = (&'a str, Vec<&'a str>, Vec<(String, String)>);
    let paths: Vec<Path> = vec![
        (
            "wrong password at an authenticating gateway",
            vec!["push", "--pushgateway", &auth_pg.url],
            with(&[
                ("PUSHGATEWAY_USERNAME", "pusher"),
                ("PUSHGATEWAY_PASSWORD", SENTINEL),
            ]),
        ),
        (
            "password to a gateway that echoes it in a 500",
            vec!["push", "--pushgateway", &down.url],
            with(&[
                ("PUSHGATEWAY_USERNAME", "pusher"),
                ("PUSHGATEWAY_PASSWORD", SENTINEL),
                ("COST_EXPORTER_PUSHGATEWAY__RETRIES", "1"),
            ]),
        ),
        (
            "successful push with every credential set",
            vec!["push", "--pushgateway", &plain_pg.url],
            with(&[
                ("PUSHGATEWAY_USERNAME", "pusher"),
                ("PUSHGATEWAY_PASSWORD", SENTINEL),
            ]),
        ),
        (
            "credentials in the Pushgateway URL",
            vec!["push", "--pushgateway", &bad_url],
            with(&[]),
        ),
        (
            "credentials in the URL, from the environment",
            vec!["check"],
            with(&[("COST_EXPORTER_PUSHGATEWAY__URL", &bad_url)]),
        ),
        (
            "credentials in the URL, from the environment, every setting listed",
            vec!["check", "--settings"],
            with(&[("COST_EXPORTER_PUSHGATEWAY__URL", &bad_url)]),
        ),
        (
            "a secret with inner whitespace",
            vec!["check", "--settings"],
            with(&[("COST_EXPORTER_PROVIDERS__VERCEL__TOKEN", &inner_space)]),
        ),
        (
            "a secret and its _FILE both set",
            vec!["push"],
            with(&[
                ("PUSHGATEWAY_USERNAME", "pusher"),
                ("PUSHGATEWAY_PASSWORD", SENTINEL),
                ("PUSHGATEWAY_PASSWORD_FILE", secret_file.to_str().unwrap()),
            ]),
        ),
        (
            "check --probe",
            vec!["check", "--probe", "--pushgateway", &auth_pg.url],
            with(&[
                ("PUSHGATEWAY_USERNAME", "pusher"),
                ("PUSHGATEWAY_PASSWORD_FILE", secret_file.to_str().unwrap()),
            ]),
        ),
        (
            "collect",
            vec!["collect", "--log-format", "json"],
            with(&[]),
        ),
        (
            "report as a table",
            vec!["report"],
            with(&[
                ("PUSHGATEWAY_USERNAME", "pusher"),
                ("PUSHGATEWAY_PASSWORD", SENTINEL),
            ]),
        ),
        (
            "report as JSON",
            vec!["report", "--output", "json"],
            with(&[
                ("PUSHGATEWAY_USERNAME", "pusher"),
                ("PUSHGATEWAY_PASSWORD", SENTINEL),
            ]),
        ),
        (
            "a secret given as a TOML key from the environment",
            vec!["check"],
            with(&[
                ("COST_EXPORTER_PUSHGATEWAY__PASSWORD", SENTINEL),
                ("PUSHGATEWAY_USERNAME", "u"),
            ]),
        ),
        (
            "a secret given as a TOML key, every setting listed",
            vec!["check", "--settings"],
            with(&[
                ("COST_EXPORTER_PUSHGATEWAY__PASSWORD", SENTINEL),
                ("PUSHGATEWAY_USERNAME", "u"),
            ]),
        ),
    ];
    let config = example();
    for (what, mut args, env) in paths {
        args.extend(["--config", &config]);
        let mut env: Vec<(&str, &str)> =
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        env.push(support::EXAMPLE_OFFLINE);
        let out = support::run(&args, &env);
        let (stdout, stderr) = support::text(&out);
        assert!(
            !stdout.contains(SENTINEL) && !stderr.contains(SENTINEL),
            "{what}: the secret leaked:\n{stdout}\n{stderr}"
        );
        // The run did something (so the path was exercised).
        assert!(
            !stderr.is_empty() || !stdout.is_empty(),
            "{what}: no output"
        );
    }
    for pg in [&auth_pg, &plain_pg] {
        assert!(
            !pg.dump().contains(SENTINEL),
            "the secret reached the Pushgateway"
        );
    }
    assert!(down.connections() > 0);
    assert!(
        echo.connections() > 0,
        "the Vercel failure path was exercised"
    );
}

/// A client secret with the characters form encoding and percent encoding spell differently.
const FORM_SENTINEL: &str = "f0rm+s3nt/inel-9d2e";

/// Every spelling a secret travels in, as a test computes them.
fn spellings(secret: &str) -> Vec<String> {
    use base64::Engine;
    vec![
        secret.to_owned(),
        base64::engine::general_purpose::STANDARD
            .encode(secret)
            .trim_end_matches('=')
            .to_owned(),
        url::form_urlencoded::byte_serialize(secret.as_bytes()).collect(),
        percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
            .to_string(),
    ]
}

#[test]
fn a_secret_echoed_in_a_2xx_answer_never_leaks_through_a_decode_error() {
    // Every provider (and the OAuth2 token endpoint) answers 200 with a JSON string that holds
    // the credentials in every spelling: each fails to decode, and a decoder's message quotes
    // what it could not read.
    let echoed: Vec<String> = spellings(SENTINEL)
        .into_iter()
        .chain(spellings(FORM_SENTINEL))
        .collect();
    let body = serde_json::to_string(&echoed.join(" ")).unwrap();
    let response: &'static str = Box::leak(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_boxed_str(),
    );
    let echo = Counter::start(Some(response));
    let pg = Pushgateway::start();
    let token_url = format!("{}/auth/oauth2/token", echo.url);
    // The example's ECB source goes to the echo too: not the ECB's file, so the fallback.
    let ecb_url = format!("{}/eurofxref-daily.xml", echo.url);
    let mut env: Vec<(&str, &str)> = vec![
        ("RUST_LOG", "trace"),
        ("COST_EXPORTER_HTTP__RETRIES", "0"),
        ("COST_EXPORTER_FX__URL", ecb_url.as_str()),
    ];
    for p in [
        "VERCEL",
        "SUPABASE",
        "ANTHROPIC",
        "OPENAI",
        "OVH",
        "HOSTINGER",
        "CLOUDFLARE",
        "ELEVENLABS",
    ] {
        let key: &'static str =
            Box::leak(format!("COST_EXPORTER_PROVIDERS__{p}__BASE_URL").into_boxed_str());
        env.push((key, echo.url.as_str()));
    }
    env.extend([
        (
            "COST_EXPORTER_PROVIDERS__WASABI__ENDPOINT",
            echo.url.as_str(),
        ),
        (
            "COST_EXPORTER_PROVIDERS__OVH__TOKEN_URL",
            token_url.as_str(),
        ),
        ("SUPABASE_PROJECT_REF", "abcdefghijklmnopqrst"),
        ("CLOUDFLARE_ACCOUNT_ID", "0123456789abcdef0123456789abcdef"),
        ("OVH_CLIENT_ID", SENTINEL),
        ("OVH_CLIENT_SECRET", FORM_SENTINEL),
        ("HOSTINGER_API_TOKEN", SENTINEL),
        ("CLOUDFLARE_API_TOKEN", SENTINEL),
        ("ELEVENLABS_API_KEY", SENTINEL),
        ("VERCEL_API_TOKEN", SENTINEL),
        ("SUPABASE_ACCESS_TOKEN", SENTINEL),
        ("WASABI_ACCESS_KEY", SENTINEL),
        ("WASABI_SECRET_KEY", FORM_SENTINEL),
        ("ANTHROPIC_ADMIN_KEY", SENTINEL),
        ("OPENAI_ADMIN_KEY", SENTINEL),
    ]);
    let config = example();
    for args in [
        vec!["push", "--pushgateway", pg.url.as_str()],
        vec!["collect", "--log-format", "json"],
        vec!["report"],
        vec!["report", "--output", "json"],
        vec!["check", "--probe", "--pushgateway", pg.url.as_str()],
    ] {
        let mut args = args;
        args.extend(["--config", &config]);
        let out = support::run(&args, &env);
        let (stdout, stderr) = support::text(&out);
        assert!(
            stderr.contains("decode") || stdout.contains("FAILED"),
            "{args:?}: no decode failure was exercised:\n{stderr}"
        );
        for s in &echoed {
            assert!(
                !stdout.contains(s.as_str()) && !stderr.contains(s.as_str()),
                "{args:?}: {s} leaked:\n{stdout}\n{stderr}"
            );
        }
    }
    assert!(echo.connections() > 8, "every provider was asked");
    for s in &echoed {
        assert!(
            !pg.dump().contains(s.as_str()),
            "{s} reached the Pushgateway"
        );
    }
}
