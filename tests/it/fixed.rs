//! `[[fixed]]` entries on the job's cash basis, the run's clock faked: a monthly amount every
//! month, a yearly one in full in the month it falls due (its `since` month) and nothing in
//! the eleven others, a yearly one without `since` spread over the months (and `check` says
//! so).

use crate::support;

/// A domain paid 120 € every March since 2026, a hosting plan of 6 € a month, and a
/// certificate of 24 € a year whose month is not given.
const ENTRIES: &str = "currency = \"EUR\"\n\
    [[fixed]]\nprovider = \"ionos\"\nname = \"domain\"\namount = 120\ncurrency = \"EUR\"\nperiod = \"yearly\"\nsince = \"2026-03\"\n\
    [[fixed]]\nprovider = \"ionos\"\nname = \"hosting\"\namount = 6\ncurrency = \"EUR\"\n\
    [[fixed]]\nprovider = \"ionos\"\nname = \"certificate\"\namount = 24\ncurrency = \"EUR\"\nperiod = \"yearly\"\n";

/// Month to date and forecast of `ionos` at `now`.
async fn printed(now: &str) -> (String, String) {
    let cfg = support::toml(ENTRIES);
    let (spent, forecast, _) =
        support::printed(cfg.path(), &[("COST_EXPORTER_NOW", now)], "ionos").await;
    (spent.unwrap(), forecast.unwrap())
}

#[tokio::test]
async fn a_yearly_entry_is_due_in_full_in_its_month_and_nothing_in_the_others() {
    // The domain falls due in March: 120 + 6 + 24 ÷ 12 = 128 in March, from its first second
    // to its last; it was a twelfth, 10 € every month (18 € a month in all).
    for now in [
        "2027-03-01T00:00:00Z",
        "2027-03-15T12:00:00+01:00",
        "2027-03-31T23:59:59Z",
    ] {
        assert_eq!(
            printed(now).await,
            ("128.00".into(), "128.00".into()),
            "{now}"
        );
    }
    // The first second of April and the last of a leap February: 6 + 2 (the spread
    // certificate), nothing for the domain.
    for now in ["2027-04-01T00:00:00Z", "2028-02-29T23:59:59Z"] {
        assert_eq!(printed(now).await, ("8.00".into(), "8.00".into()), "{now}");
    }
    // Before its first year, the domain is not paid at all (backfill's `since`).
    assert_eq!(
        printed("2026-02-10T00:00:00Z").await,
        ("8.00".into(), "8.00".into())
    );
    // The series of a month without the domain says 0 for it: known, not absent.
    let cfg = support::toml(ENTRIES);
    let out = support::run(
        &["collect", "--config", cfg.path().to_str().unwrap()],
        &[("COST_EXPORTER_NOW", "2027-04-01T00:00:00Z")],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("cost_spend{currency=\"EUR\",name=\"domain\",provider=\"ionos\"} 0\n"),
        "{stdout}"
    );
}

#[test]
fn check_says_when_a_yearly_entry_falls_due_and_which_are_spread() {
    let cfg = support::toml(ENTRIES);
    let out = support::run(&["check", "--config", cfg.path().to_str().unwrap()], &[]);
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains(
            "ionos       collected (3 [[fixed]] entries, 8.00 EUR a month, 120.00 EUR a year in March (domain), \
             yearly spread over the months: certificate (no `since`: the month it falls due is unknown))"
        ),
        "{stdout}"
    );
}
