//! What a paid Supabase organisation is billed per project besides the plan and the
//! organisation's quotas: the provisioned disk (`GET /v1/projects/{ref}/config/disk`: size,
//! IOPS and throughput, gp3 or io2) and the compute instance and add-ons
//! (`GET /v1/projects/{ref}/billing/addons`: PITR, IPv4, custom domain, log drain…), all
//! accrued by the hour, as Supabase bills them.
//!
//! Prices are the published ones, per hour
//! (<https://supabase.com/docs/guides/platform/manage-your-usage/disk-size>, `…/disk-iops`,
//! `…/disk-throughput`, `…/compute`): gp3 size beyond the 8 GB included at $0.000171 per GB-hour
//! ($0.125 per GB-month), IOPS beyond 3,000 at $0.00003288 per IOPS-hour ($0.024 per month),
//! throughput beyond 125 MB/s at $0.00013 per MB/s-hour ($0.095 per month); io2 from the first
//! GB at $0.000267 per GB-hour ($0.195 per month) and from the first IOPS at $0.000163 per
//! IOPS-hour ($0.119 per month), throughput free. The compute instance and the add-ons cost
//! what the add-ons endpoint lists for them, by the price's `type` and `interval`: a `fixed`
//! monthly price is the month's fee, whole; any other price accrues with the hours the add-on
//! is selected (an hourly amount per hour, a monthly one prorated by the hour). A price of a
//! type or interval this build does not know is left out of the figures and counted.

use rust_decimal::Decimal;
use serde_json::Value;

use crate::cost::{Skipped, SpendKind};
use crate::money::ConfigDecimal;

/// gp3: GB included per project.
const GP3_INCLUDED_GB: u64 = 8;
/// gp3: IOPS included.
const GP3_INCLUDED_IOPS: u64 = 3000;
/// gp3: MB/s of throughput included.
const GP3_INCLUDED_MBPS: u64 = 125;
/// USD per GB-hour of gp3 beyond the included size.
const GP3_GB_HOUR: Decimal = Decimal::from_parts(171, 0, 0, false, 6);
/// USD per IOPS-hour of gp3 beyond the included IOPS.
const GP3_IOPS_HOUR: Decimal = Decimal::from_parts(3288, 0, 0, false, 8);
/// USD per MB/s-hour of gp3 beyond the included throughput.
const GP3_MBPS_HOUR: Decimal = Decimal::from_parts(13, 0, 0, false, 5);
/// USD per GB-hour of io2.
const IO2_GB_HOUR: Decimal = Decimal::from_parts(267, 0, 0, false, 6);
/// USD per IOPS-hour of io2.
const IO2_IOPS_HOUR: Decimal = Decimal::from_parts(163, 0, 0, false, 6);

/// The monthly compute credit of a paid organisation, USD.
pub(super) const COMPUTE_CREDIT: Decimal = Decimal::from_parts(10, 0, 0, false, 0);

/// A project's provisioned disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Disk {
    /// General purpose (gp3) or high performance (io2).
    pub io2: bool,
    /// Provisioned size, GB.
    pub size_gb: u64,
    /// Provisioned IOPS.
    pub iops: u64,
    /// Provisioned throughput, MB/s (gp3 only; the default 125 when absent).
    pub throughput_mbps: Option<u64>,
}

/// `DiskResponse`: `{"attributes": {"type": "gp3"|"io2", "size_gb", "iops",
/// "throughput_mibps"?}}`.
pub(super) fn parse_disk(v: &Value) -> Result<Disk, String> {
    let a = v
        .get("attributes")
        .ok_or("config/disk: no `attributes` in the answer")?;
    let int = |k: &str| -> Result<Option<u64>, String> {
        match a.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(n) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| format!("config/disk: {k} is {n}, not a positive integer")),
        }
    };
    let io2 = match a.get("type").and_then(Value::as_str) {
        Some("gp3") => false,
        Some("io2") => true,
        other => {
            return Err(format!(
                "config/disk: disk type {} is neither gp3 nor io2",
                other.map_or_else(|| "missing".to_owned(), |t| format!("{t:?}"))
            ));
        }
    };
    Ok(Disk {
        io2,
        size_gb: int("size_gb")?.ok_or("config/disk: no size_gb")?,
        iops: int("iops")?.ok_or("config/disk: no iops")?,
        throughput_mbps: int("throughput_mibps")?,
    })
}

/// The disk's charges for `hours` provisioned: (size, IOPS, throughput), USD.
pub(super) fn disk_charges(d: &Disk, hours: Decimal) -> [(&'static str, Decimal); 3] {
    let beyond = |v: u64, included: u64| Decimal::from(v.saturating_sub(included));
    let (size, iops, throughput) = if d.io2 {
        (
            Decimal::from(d.size_gb) * IO2_GB_HOUR,
            Decimal::from(d.iops) * IO2_IOPS_HOUR,
            Decimal::ZERO,
        )
    } else {
        (
            beyond(d.size_gb, GP3_INCLUDED_GB) * GP3_GB_HOUR,
            beyond(d.iops, GP3_INCLUDED_IOPS) * GP3_IOPS_HOUR,
            beyond(
                d.throughput_mbps.unwrap_or(GP3_INCLUDED_MBPS),
                GP3_INCLUDED_MBPS,
            ) * GP3_MBPS_HOUR,
        )
    };
    [
        ("disk_size", size * hours),
        ("disk_iops", iops * hours),
        ("disk_throughput", throughput * hours),
    ]
}

/// The add-on types the spec lists, as `service` label values (compute is `compute`).
const ADDONS: &[(&str, &str)] = &[
    ("compute_instance", "compute"),
    ("pitr", "pitr"),
    ("ipv4", "ipv4"),
    ("custom_domain", "custom_domain"),
    ("log_drain", "log_drain"),
    ("auth_mfa_phone", "auth_mfa_phone"),
    ("auth_mfa_web_authn", "auth_mfa_web_authn"),
    ("etl_pipeline", "etl_pipeline"),
];

/// `price.type`: a flat fee for the interval, or a price that accrues with use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PriceType {
    /// `fixed`.
    Fixed,
    /// `usage`.
    Usage,
}

/// `price.interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Interval {
    /// `hourly`: the amount is per hour.
    Hourly,
    /// `monthly`: the amount is per month.
    Monthly,
}

/// A selected add-on and its listed price.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Addon {
    /// The `service` label: `compute`, `pitr`, … (`other_addon` for a type this build does
    /// not know).
    pub service: &'static str,
    /// The variant (`ci_small`, `pitr_7`), for the logs.
    pub variant: String,
    /// The listed amount, USD.
    pub amount: Decimal,
    /// A flat fee or a price that accrues with use.
    pub price: PriceType,
    /// Per hour or per month.
    pub interval: Interval,
}

impl Addon {
    /// What it costs so far, `hours` into a month of `month_hours` hours, and how that grows:
    /// a fixed monthly fee is the month's, whole ([`SpendKind::Fixed`]); an hourly amount
    /// accrues by the hour, a usage-priced monthly amount is prorated by the hour
    /// ([`SpendKind::Metered`]). `None` when no decimal can hold it.
    pub(super) fn charge(
        &self,
        hours: Decimal,
        month_hours: Decimal,
    ) -> Option<(Decimal, SpendKind)> {
        match (self.price, self.interval) {
            (PriceType::Fixed, Interval::Monthly) => Some((self.amount, SpendKind::Fixed)),
            (_, Interval::Hourly) => Some((self.amount.checked_mul(hours)?, SpendKind::Metered)),
            (PriceType::Usage, Interval::Monthly) => Some((
                self.amount.checked_mul(hours)?.checked_div(month_hours)?,
                SpendKind::Metered,
            )),
        }
    }
}

/// `ListProjectAddonsResponse.selected_addons`: `[{type, variant: {id, name, price:
/// {description, type: "fixed"|"usage", interval: "monthly"|"hourly", amount}}}]`. An add-on
/// whose price type or interval is another value (the enums grow, as the add-on types did) is
/// skipped with reason `unknown_enum`; a missing required field is an error.
pub(super) fn parse_addons(v: &Value, skipped: &mut Skipped) -> Result<Vec<Addon>, String> {
    let list = v
        .get("selected_addons")
        .and_then(Value::as_array)
        .ok_or("billing/addons: no `selected_addons` list")?;
    let mut out = Vec::with_capacity(list.len());
    for (i, a) in list.iter().enumerate() {
        let at = |what: &str| format!("billing/addons: selected_addons[{i}]: {what}");
        let kind = a
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| at("no type"))?;
        let service = ADDONS
            .iter()
            .find(|(t, _)| *t == kind)
            .map(|(_, s)| *s)
            .unwrap_or_else(|| {
                tracing::warn!(
                    addon = kind,
                    "a Supabase add-on type this build does not know: priced as listed, service=\"other_addon\""
                );
                "other_addon"
            });
        let variant = a.get("variant").ok_or_else(|| at("no variant"))?;
        let price = variant.get("price").ok_or_else(|| at("no variant.price"))?;
        let amount: ConfigDecimal = serde_json::from_value(
            price
                .get("amount")
                .cloned()
                .ok_or_else(|| at("no price.amount"))?,
        )
        .map_err(|e| at(&format!("price.amount: {e}")))?;
        if amount.0.is_sign_negative() && !amount.0.is_zero() {
            return Err(at(&format!("price.amount {} is negative", amount.0)));
        }
        let text = |k: &str| {
            price
                .get(k)
                .and_then(Value::as_str)
                .ok_or_else(|| at(&format!("no price.{k} (a string)")))
        };
        let (price_type, interval) = (text("type")?, text("interval")?);
        let variant_id: String = variant
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .chars()
            .take(64)
            .collect();
        let price_type = match price_type {
            "fixed" => Some(PriceType::Fixed),
            "usage" => Some(PriceType::Usage),
            _ => None,
        };
        let interval = match interval {
            "hourly" => Some(Interval::Hourly),
            "monthly" => Some(Interval::Monthly),
            _ => None,
        };
        let (Some(price_type), Some(interval)) = (price_type, interval) else {
            skipped.record(
                "unknown_enum",
                format!(
                    "add-on {kind} ({variant_id}): a price of type {:?} per {:?}, which this build cannot price",
                    text("type")?.chars().take(32).collect::<String>(),
                    text("interval")?.chars().take(32).collect::<String>()
                ),
            );
            continue;
        };
        out.push(Addon {
            service,
            variant: variant_id,
            amount: amount.0,
            price: price_type,
            interval,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn gp3_is_billed_beyond_what_is_included_io2_from_the_first_unit() {
        let month = Decimal::from(730);
        // The docs' example: a 50 GB gp3 disk for 730 hours is 42 GB over, $5.24.
        let gp3 = Disk {
            io2: false,
            size_gb: 50,
            iops: 3000,
            throughput_mbps: Some(125),
        };
        let c = disk_charges(&gp3, month);
        assert_eq!(c[0], ("disk_size", d("5.24286")));
        assert_eq!(c[1].1, Decimal::ZERO);
        assert_eq!(c[2].1, Decimal::ZERO);
        // 3,600 IOPS is 600 over: $14.40 a month; 200 MB/s is 75 over: $7.12.
        let fast = Disk {
            iops: 3600,
            throughput_mbps: Some(200),
            ..gp3
        };
        let c = disk_charges(&fast, month);
        assert_eq!(c[1].1.round_dp(2), d("14.40"));
        assert_eq!(c[2].1.round_dp(2), d("7.12"));
        // An 8 GB gp3 disk costs nothing beyond the plan.
        let small = Disk { size_gb: 8, ..gp3 };
        assert!(disk_charges(&small, month).iter().all(|(_, v)| v.is_zero()));
        // io2: the docs' 8 GB for 730 hours is $1.56; 8,000 IOPS $952 (from the first IOPS);
        // throughput is free.
        let io2 = Disk {
            io2: true,
            size_gb: 8,
            iops: 8000,
            throughput_mbps: None,
        };
        let c = disk_charges(&io2, month);
        assert_eq!(c[0].1.round_dp(2), d("1.56"));
        assert_eq!(c[1].1.round_dp(0), d("952"));
        assert_eq!(c[2].1, Decimal::ZERO);
    }

    #[test]
    fn the_disk_answer_is_read_or_named_as_wrong() {
        let gp3 = parse_disk(&json!({"attributes": {"type": "gp3", "size_gb": 18, "iops": 3000, "throughput_mibps": 125}, "last_modified_at": "x"})).unwrap();
        assert_eq!(gp3.size_gb, 18);
        let io2 = parse_disk(&json!({"attributes": {"type": "io2", "size_gb": 8, "iops": 8000}}))
            .unwrap();
        assert!(io2.io2 && io2.throughput_mbps.is_none());
        for bad in [
            json!({}),
            json!({"attributes": {"type": "st1", "size_gb": 8, "iops": 1}}),
            json!({"attributes": {"type": "gp3", "size_gb": -8, "iops": 1}}),
            json!({"attributes": {"type": "gp3", "iops": 1}}),
        ] {
            assert!(parse_disk(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn addons_are_priced_by_type_and_interval() {
        let v = json!({"selected_addons": [
            {"type": "compute_instance", "variant": {"id": "ci_small", "name": "Small", "price": {"description": "$0.0206/hour", "type": "usage", "interval": "hourly", "amount": 0.0206}}},
            {"type": "pitr", "variant": {"id": "pitr_7", "name": "7 days", "price": {"description": "$100/month", "type": "usage", "interval": "monthly", "amount": 100}}},
            {"type": "custom_domain", "variant": {"id": "cd_default", "name": "Custom domain", "price": {"description": "$10/month", "type": "fixed", "interval": "monthly", "amount": 10}}},
            {"type": "etl_pipeline", "variant": {"id": "etl_pipeline_default", "name": "ETL", "price": {"description": "", "type": "fixed", "interval": "hourly", "amount": 0.5}}}
        ], "available_addons": []});
        let mut skipped = Skipped::default();
        let a = parse_addons(&v, &mut skipped).unwrap();
        assert!(skipped.is_empty());
        assert_eq!(a[0].service, "compute");
        assert_eq!(a[1].service, "pitr");
        assert_eq!(a[3].service, "etl_pipeline");
        let (hours, month) = (Decimal::from(360), Decimal::from(720));
        // 360 hours of Small: $7.416; half a month of PITR 7: $50; the custom domain's fixed
        // monthly $10, whole; the fixed hourly $0.50 × 360.
        assert_eq!(
            a[0].charge(hours, month),
            Some((d("7.416"), SpendKind::Metered))
        );
        assert_eq!(
            a[1].charge(hours, month),
            Some((d("50"), SpendKind::Metered))
        );
        assert_eq!(a[2].charge(hours, month), Some((d("10"), SpendKind::Fixed)));
        assert_eq!(
            a[3].charge(hours, month),
            Some((d("180"), SpendKind::Metered))
        );
        let huge = Addon {
            amount: Decimal::MAX,
            ..a[0].clone()
        };
        assert_eq!(huge.charge(hours, month), None);
        // A price type or interval this build does not know: skipped and counted.
        let odd = json!({"selected_addons": [
            {"type": "ipv4", "variant": {"id": "ipv4_default", "name": "IPv4", "price": {"description": "", "type": "fixed", "interval": "daily", "amount": 4}}},
            {"type": "ipv4", "variant": {"id": "ipv4_default", "name": "IPv4", "price": {"description": "", "type": "tiered", "interval": "hourly", "amount": 4}}}
        ]});
        let mut skipped = Skipped::default();
        assert!(parse_addons(&odd, &mut skipped).unwrap().is_empty());
        assert_eq!(skipped.counts().collect::<Vec<_>>(), [("unknown_enum", 2)]);
        // Required fields missing: errors naming the record.
        let bad = json!({"selected_addons": [{"type": "ipv4", "variant": {"id": "ipv4_default", "name": "IPv4", "price": {"description": "", "type": "fixed", "amount": 4}}}]});
        let e = parse_addons(&bad, &mut skipped).unwrap_err();
        assert!(
            e.contains("selected_addons[0]") && e.contains("interval"),
            "{e}"
        );
        assert!(parse_addons(&json!({"available_addons": []}), &mut skipped).is_err());
    }
}
