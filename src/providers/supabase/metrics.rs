//! The project's Prometheus metrics endpoint (`/customer/v1/privileged/metrics`, basic auth with
//! the service-role key), parsed with the `prometheus-parse` crate.

use crate::error::{CollectError, Reason};

/// The three figures read from the project's metrics endpoint.
#[derive(Debug, Default, PartialEq)]
pub(super) struct MetricsFigures {
    /// `pg_database_size_bytes{datname="postgres"}`.
    pub(super) database_size: Option<f64>,
    /// `storage_storage_size_mb` × 10^6.
    pub(super) storage_size: Option<f64>,
    /// `auth_users_user_count`.
    pub(super) users: Option<f64>,
}

/// Parses a Prometheus text exposition (the `prometheus-parse` crate) and picks the figures.
pub(super) fn parse_metrics(text: &str) -> Result<MetricsFigures, CollectError> {
    use prometheus_parse::{Scrape, Value as PV};
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).map_err(|e| {
        CollectError::new(Reason::Decode, format!("not a metrics exposition ({e})"))
    })?;
    if scrape.samples.is_empty() {
        return Err(CollectError::new(
            Reason::Decode,
            "the metrics exposition has no sample",
        ));
    }
    let value = |v: &PV| match v {
        PV::Gauge(f) | PV::Counter(f) | PV::Untyped(f) if f.is_finite() && *f >= 0.0 => Some(*f),
        _ => None,
    };
    let mut m = MetricsFigures::default();
    for s in &scrape.samples {
        match s.metric.as_str() {
            "pg_database_size_bytes" if s.labels.get("datname") == Some("postgres") => {
                m.database_size = value(&s.value);
            }
            "storage_storage_size_mb" => m.storage_size = value(&s.value).map(|mb| mb * 1e6),
            "auth_users_user_count" => m.users = value(&s.value),
            _ => {}
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metrics_sample_parses_and_yields_the_three_figures() {
        let text = "# HELP pg_database_size_bytes Disk space used by the database\n\
            # TYPE pg_database_size_bytes gauge\n\
            pg_database_size_bytes{supabase_project_ref=\"abc\",datname=\"postgres\"} 48211968\n\
            pg_database_size_bytes{supabase_project_ref=\"abc\",datname=\"template1\"} 7000000\n\
            # TYPE storage_storage_size_mb gauge\n\
            storage_storage_size_mb{supabase_project_ref=\"abc\"} 12.5\n\
            # TYPE auth_users_user_count gauge\n\
            auth_users_user_count{supabase_project_ref=\"abc\"} 1234\n";
        let m = parse_metrics(text).unwrap();
        assert_eq!(
            m,
            MetricsFigures {
                database_size: Some(48_211_968.0),
                storage_size: Some(12.5e6),
                users: Some(1234.0)
            }
        );
        assert!(parse_metrics("").is_err());
    }
}
