//! Configuration errors: each names the key and where it came from, exits 2, and happens
//! before any connection is made (a counting listener stands in for every endpoint).

use crate::support::{self, Counter};

struct Case {
    what: &'static str,
    toml: &'static str,
    env: &'static [(&'static str, &'static str)],
    args: &'static [&'static str],
    /// Every one of these must be in stderr (`{file}` is the config file's path).
    expect: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        what: "unknown key in the file",
        toml: "[pushgateway]\nurll = \"http://localhost:9091\"\n",
        env: &[],
        args: &[],
        expect: &["urll", "pushgateway", "{file}"],
    },
    Case {
        what: "unknown key in a provider section",
        toml: "[providers.vercel]\nbudgett = 3\n",
        env: &[],
        args: &[],
        expect: &["budgett", "providers.vercel", "{file}"],
    },
    Case {
        what: "wrong type",
        toml: "[pushgateway]\nretries = \"many\"\n",
        env: &[],
        args: &[],
        expect: &["pushgateway.retries", "{file}"],
    },
    Case {
        what: "not a duration",
        toml: "[run]\ntimeout = \"soon\"\n",
        env: &[],
        args: &[],
        expect: &["run.timeout", "soon", "{file}"],
    },
    Case {
        what: "negative fixed amount",
        toml: "[[fixed]]\nprovider = \"ovh\"\nname = \"bms-1\"\namount = -62.5\ncurrency = \"USD\"\n",
        env: &[],
        args: &[],
        expect: &["fixed", "amount", "negative", "{file}"],
    },
    Case {
        what: "negative budget",
        toml: "[providers.ovh]\nbudget = -1\n",
        env: &[],
        args: &[],
        expect: &["providers.ovh.budget", "negative"],
    },
    Case {
        what: "plain http to a provider",
        toml: "[providers.vercel]\nbase_url = \"http://api.example.com\"\n",
        env: &[],
        args: &[],
        expect: &["providers.vercel.base_url", "https", "{file}"],
    },
    Case {
        what: "not a URL",
        toml: "[providers.supabase]\nbase_url = \"api supabase com\"\n",
        env: &[],
        args: &[],
        expect: &["providers.supabase.base_url", "{file}"],
    },
    Case {
        what: "unknown currency",
        toml: "currency = \"EUX\"\n",
        env: &[],
        args: &[],
        expect: &["currency", "EUX", "{file}"],
    },
    Case {
        what: "unknown currency in a fixed entry",
        toml: "[[fixed]]\nprovider = \"ovh\"\nname = \"a\"\namount = 1\ncurrency = \"XYZ\"\n",
        env: &[],
        args: &[],
        expect: &["XYZ", "fixed"],
    },
    Case {
        what: "missing fx rate for a currency in use",
        toml: "currency = \"EUR\"\n[[fixed]]\nprovider = \"ovh\"\nname = \"a\"\namount = 1\ncurrency = \"GBP\"\n",
        env: &[],
        args: &[],
        expect: &["fx", "GBP"],
    },
    Case {
        what: "TOML syntax error",
        toml: "[pushgateway\nurl = 1\n",
        env: &[],
        args: &[],
        expect: &["{file}"],
    },
    Case {
        what: "bad value from COST_EXPORTER_*",
        toml: "",
        env: &[("COST_EXPORTER_RUN__TIMEOUT", "whenever")],
        args: &[],
        expect: &["COST_EXPORTER_RUN__TIMEOUT", "whenever"],
    },
    Case {
        what: "unknown key from COST_EXPORTER_*",
        toml: "",
        env: &[("COST_EXPORTER_PUSHGATEWAY__URLL", "http://x")],
        args: &[],
        expect: &["COST_EXPORTER_PUSHGATEWAY__URLL"],
    },
    Case {
        what: "a _FILE that does not exist",
        toml: "",
        env: &[("PUSHGATEWAY_PASSWORD_FILE", "/nonexistent/pg-password")],
        args: &[],
        expect: &["PUSHGATEWAY_PASSWORD_FILE", "/nonexistent/pg-password"],
    },
    Case {
        what: "a variable and its _FILE both set",
        toml: "",
        env: &[
            ("VERCEL_API_TOKEN", "abc"),
            ("VERCEL_API_TOKEN_FILE", "/etc/hostname"),
        ],
        args: &[],
        expect: &["VERCEL_API_TOKEN", "VERCEL_API_TOKEN_FILE"],
    },
    Case {
        what: "a password without a user",
        toml: "",
        env: &[("PUSHGATEWAY_PASSWORD", "abc")],
        args: &[],
        expect: &["PUSHGATEWAY_USERNAME"],
    },
    Case {
        what: "an unknown plan",
        toml: "[providers.vercel]\nplan = \"enterprise\"\n",
        env: &[],
        args: &[],
        expect: &["providers.vercel.plan", "enterprise", "hobby"],
    },
    Case {
        what: "a price table that cannot be read",
        toml: "[providers.anthropic]\nprice_table = \"/nonexistent/prices.json\"\n",
        env: &[],
        args: &[],
        expect: &[
            "providers.anthropic.price_table",
            "/nonexistent/prices.json",
        ],
    },
    Case {
        what: "an unknown Vercel limit",
        toml: "[providers.vercel.limits]\nfunction_invocation = 1\n",
        env: &[],
        args: &[],
        expect: &[
            "providers.vercel.limits.function_invocation",
            "function_invocations",
        ],
    },
    Case {
        what: "a service-role key with several projects",
        toml: "[providers.supabase]\nproject_refs = [\"abcdefghijklmnopqrst\", \"bcdefghijklmnopqrstu\"]\n",
        env: &[("SUPABASE_SERVICE_ROLE_KEY", "k")],
        args: &[],
        expect: &["SUPABASE_SERVICE_ROLE_KEY", "one project"],
    },
    Case {
        what: "half a Wasabi billing key pair",
        toml: "[providers.wasabi]\nbuckets = [\"abc\"]\n",
        env: &[
            ("WASABI_ACCESS_KEY", "a"),
            ("WASABI_SECRET_KEY", "s"),
            ("WASABI_BILLING_ACCESS_KEY", "b"),
        ],
        args: &[],
        expect: &["WASABI_BILLING_ACCESS_KEY and WASABI_BILLING_SECRET_KEY must be set together"],
    },
    Case {
        what: "an unknown exchange-rate source",
        toml: "[fx]\nsource = \"fed\"\n",
        env: &[],
        args: &[],
        expect: &["fx.source", "\"fed\"", "ecb"],
    },
    Case {
        what: "overrides without a source",
        toml: "[fx]\nUSD = 1\n[fx.overrides]\nGBP = 1.2\n",
        env: &[],
        args: &[],
        expect: &["fx.overrides", "source = \"ecb\""],
    },
    Case {
        what: "a misspelt [fx] key",
        toml: "[fx]\nsorce = \"ecb\"\n",
        env: &[],
        args: &[],
        expect: &["fx.sorce", "`source`"],
    },
    Case {
        what: "a negative Wasabi minimum",
        toml: "[providers.wasabi]\nbuckets = [\"abc\"]\nminimum_tb = -1\n",
        env: &[],
        args: &[],
        expect: &["providers.wasabi.minimum_tb", "-1 is negative"],
    },
    Case {
        what: "a price table URL that is not one",
        toml: "[providers.openai]\nprice_table = \"https://\"\n",
        env: &[],
        args: &[],
        expect: &["providers.openai.price_table"],
    },
    Case {
        what: "an unknown key in a budget-only section",
        toml: "[providers.ionos]\nbudgett = 3\n",
        env: &[],
        args: &[],
        expect: &[
            "`providers.ionos.budgett` in {file}",
            "unknown key `budgett` for provider ionos (expected one of: budget)",
        ],
    },
    Case {
        what: "an unknown source",
        toml: "[providers.vercel]\nsource = \"billing\"\n",
        env: &[],
        args: &[],
        expect: &["providers.vercel.source", "billing", "auto, charges, usage"],
    },
    Case {
        what: "--only with an unknown provider",
        toml: "[[fixed]]\nprovider = \"ovh\"\nname = \"a\"\namount = 1\ncurrency = \"USD\"\n",
        env: &[],
        args: &["--only", "ovhh"],
        expect: &["--only", "ovhh"],
    },
];

#[test]
fn every_config_error_names_key_and_source_exits_2_and_connects_nowhere() {
    let listener = Counter::start(Some("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
    let mut failures = Vec::new();
    for case in CASES {
        let file = support::toml(case.toml);
        let path = file.path().to_str().unwrap().to_owned();
        let mut args = vec!["push", "--config", &path, "--pushgateway", &listener.url];
        args.extend_from_slice(case.args);
        let out = support::run(&args, case.env);
        let (stdout, stderr) = support::text(&out);
        if out.status.code() != Some(2) {
            failures.push(format!(
                "{}: exit {:?}\n{stderr}",
                case.what,
                out.status.code()
            ));
            continue;
        }
        for e in case.expect {
            let e = e.replace("{file}", &path);
            if !stderr.contains(&e) {
                failures.push(format!("{}: {e:?} not in stderr:\n{stderr}", case.what));
            }
        }
        if !stdout.is_empty() {
            failures.push(format!("{}: printed data: {stdout}", case.what));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
    assert_eq!(
        listener.connections(),
        0,
        "a configuration error made a connection"
    );
}

#[test]
fn a_missing_config_file_named_explicitly_is_an_error() {
    let out = support::run(
        &["collect", "--config", "/nonexistent/cost-exporter.toml"],
        &[],
    );
    let (_, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("/nonexistent/cost-exporter.toml"),
        "{stderr}"
    );
    assert!(stderr.contains("does not exist"), "{stderr}");
}

#[test]
fn all_problems_are_reported_at_once() {
    let file = support::toml("currency = \"EUX\"\n[providers.ovh]\nbudget = -3\n");
    let out = support::run(&["collect", "--config", file.path().to_str().unwrap()], &[]);
    let (_, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("EUX") && stderr.contains("providers.ovh.budget"),
        "{stderr}"
    );
}

#[test]
fn check_reports_config_errors_with_exit_2() {
    let file = support::toml("[run]\ntimeout = \"soon\"\n");
    let out = support::run(&["check", "--config", file.path().to_str().unwrap()], &[]);
    let (_, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("run.timeout"), "{stderr}");
}

#[test]
fn a_bad_pushgateway_flag_is_a_config_error() {
    for bad in ["localhost:9091", "ftp://127.0.0.1:9091", "not a url"] {
        let out = support::run(&["push", "--pushgateway", bad], &[]);
        let (_, stderr) = support::text(&out);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(stderr.contains("--pushgateway"), "{bad}: {stderr}");
    }
}
