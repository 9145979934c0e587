//! The `fixed` collector: subscriptions with no usage API, reported as what they charge in the
//! month (UTC): a monthly amount every month, a yearly one in full in the month it falls due
//! (its `since` month) and 0 in the others, a yearly one without `since` a twelfth a month
//! ([`FixedEntry::charge`]).
//!
//! Each `[[fixed]]` entry belongs to its own provider (ovh, ionos, …) and is pushed in that
//! provider's group, told apart from the provider's other entries by a `name` label.

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::config::FixedEntry;
use crate::cost::{Collection, Spend, SpendKind};
use crate::error::CollectError;
use crate::providers::{Collector, Context, Days, History};

/// The fixed entries of one provider.
pub(crate) struct Fixed {
    provider: String,
    entries: Vec<FixedEntry>,
}

impl Fixed {
    /// A collector for `entries`, which all belong to `provider`.
    pub(crate) fn new(provider: String, entries: Vec<FixedEntry>) -> Fixed {
        Fixed { provider, entries }
    }
}

impl Fixed {
    /// What the entries charge in the month starting `first`, as of `at`: known from the 1st,
    /// never extrapolated.
    fn month(&self, first: time::Date, at: SystemTime) -> Collection {
        let spend = self
            .entries
            .iter()
            .filter_map(|e| {
                Some(Spend {
                    money: e.charge(first)?,
                    kind: SpendKind::Fixed,
                    labels: vec![("name", e.name.clone())],
                })
            })
            .collect();
        Collection {
            spend,
            data_as_of: Some(at),
            ..Collection::default()
        }
    }
}

/// Groups entries by provider, keeping their configured order within each.
pub(crate) fn by_provider(entries: &[FixedEntry]) -> BTreeMap<String, Vec<FixedEntry>> {
    let mut out: BTreeMap<String, Vec<FixedEntry>> = BTreeMap::new();
    for e in entries {
        out.entry(e.provider.clone()).or_default().push(e.clone());
    }
    out
}

#[async_trait::async_trait]
impl Collector for Fixed {
    fn provider(&self) -> &str {
        &self.provider
    }

    fn source(&self) -> &'static str {
        "fixed"
    }

    async fn collect(&self, cx: &Context) -> Result<Collection, CollectError> {
        Ok(self.month(cx.month_start().date(), cx.now))
    }

    async fn history(&self, _cx: &Context, days: Days) -> Result<Option<History>, CollectError> {
        // Constant over every day of the months an entry covers.
        Ok(Some(
            days.iter()
                .map(|day| (day, self.month(days.first, Days::end_of(day))))
                .filter(|(_, c)| !c.spend.is_empty())
                .collect(),
        ))
    }

    async fn probe(&self, _cx: &Context) -> Result<String, CollectError> {
        Ok(format!(
            "{} fixed entr{} from the configuration; nothing to call",
            self.entries.len(),
            if self.entries.len() == 1 { "y" } else { "ies" }
        ))
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;

    use super::*;
    use crate::money::{Currency, Money};

    fn first(y: i32, m: time::Month) -> time::Date {
        time::Date::from_calendar_date(y, m, 1).unwrap()
    }

    #[test]
    fn a_yearly_entry_is_charged_in_its_month_every_year_from_its_since() {
        let entry = |yearly, since| FixedEntry {
            provider: "p".into(),
            name: "n".into(),
            amount: Money {
                amount: Decimal::from(120),
                currency: Currency::EUR,
            },
            yearly,
            since,
        };
        let fixed = Fixed::new(
            "p".into(),
            vec![entry(true, Some(first(2026, time::Month::March)))],
        );
        let charged = |y, m| {
            fixed.month(first(y, m), SystemTime::UNIX_EPOCH).spend[..]
                .iter()
                .map(|s| s.money.amount)
                .collect::<Vec<_>>()
        };
        // Before its first March: not paid at all; each March: in full; other months: 0.
        assert_eq!(charged(2026, time::Month::February), vec![]);
        assert_eq!(charged(2026, time::Month::March), vec![Decimal::from(120)]);
        assert_eq!(charged(2026, time::Month::April), vec![Decimal::ZERO]);
        assert_eq!(charged(2028, time::Month::March), vec![Decimal::from(120)]);
        assert_eq!(charged(2028, time::Month::February), vec![Decimal::ZERO]);
        // Without `since`: a twelfth every month; a monthly entry: its amount.
        let spread = entry(true, None);
        assert!(spread.spread());
        assert_eq!(
            spread
                .charge(first(2027, time::Month::July))
                .unwrap()
                .amount,
            Decimal::from(10)
        );
        assert_eq!(
            entry(false, None)
                .charge(first(2027, time::Month::July))
                .unwrap()
                .amount,
            Decimal::from(120)
        );
    }
}
