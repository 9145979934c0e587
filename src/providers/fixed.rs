//! The `fixed` collector: subscriptions with no usage API, reported as monthly spend.
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
    /// The entries paid in the month starting `first`, as of `at`.
    fn month(&self, first: time::Date, at: SystemTime) -> Collection {
        let spend = self
            .entries
            .iter()
            .filter(|e| e.since.is_none_or(|s| s <= first))
            .map(|e| Spend {
                money: e.monthly,
                kind: SpendKind::Fixed,
                labels: vec![("name", e.name.clone())],
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
