//! The model price table, in the format of LiteLLM's `model_prices_and_context_window.json`
//! (<https://github.com/BerriAI/litellm>, USD per token): a pinned subset ships in
//! `data/model_prices.json`; `price_table` in config names a file or an `http(s)://` URL to
//! read instead. Used to estimate AI spend for tokens a provider reports without a cost.
//!
//! Prices are looked up per kind of token and per [`Tier`]: the service tier (batch, flex,
//! priority: the `_batches`, `_flex`, `_priority` suffixes) and the long-context tier (prompts
//! above 200k tokens: `_above_200k_tokens`), each falling back to the plain price when the table
//! has no tiered one.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::SystemTime;

use rust_decimal::Decimal;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::TokenType;
use crate::money::ConfigDecimal;

const PINNED: &str = include_str!("../../../data/model_prices.json");
/// Where the pinned table comes from (`data/README.md`).
pub(crate) const PINNED_FROM: &str = "LiteLLM 1.110.2";
/// The day the pinned table was taken, as Unix seconds (2026-11-29T00:00:00Z).
const PINNED_ON: u64 = 1_795_910_400;

/// The largest table read, from a file or a URL (LiteLLM's whole table is about 3.5 MB).
pub(crate) const MAX_BYTES: usize = 16 << 20;

/// The keys of a table entry that hold per-token prices: these prefixes, tier suffixes after.
const PRICE_KEYS: &[&str] = &[
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
];

/// The service tier tokens were processed in, from a usage report's dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub(crate) enum Service {
    /// Standard (or not reported).
    #[default]
    Standard,
    /// The batch API.
    Batch,
    /// Flex processing.
    Flex,
    /// Priority processing.
    Priority,
}

impl Service {
    /// A usage report's `service_tier` (Anthropic: batch, flex, flex_discount, priority,
    /// priority_on_demand, standard; OpenAI: default, flex, priority, scale). Unknown values and
    /// `scale` (contract-priced) are standard.
    pub(crate) fn parse(tier: Option<&str>) -> Service {
        match tier.map(str::trim).unwrap_or("") {
            "batch" => Service::Batch,
            "flex" | "flex_discount" => Service::Flex,
            "priority" | "priority_on_demand" => Service::Priority,
            _ => Service::Standard,
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Service::Standard => "",
            Service::Batch => "_batches",
            Service::Flex => "_flex",
            Service::Priority => "_priority",
        }
    }
}

/// The price tier of a group of tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub(crate) struct Tier {
    /// The service tier.
    pub service: Service,
    /// Prompts above 200k tokens (Anthropic's `context_window` = `200k-1M`).
    pub long_context: bool,
}

/// Where a table came from, for `cost_price_table_timestamp_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Origin {
    /// `pinned`, `file` or `url`.
    pub source: &'static str,
    /// How recent its prices are: the day the pinned table was taken, a file's modification
    /// time, a URL's `Last-Modified` (else the time it was fetched).
    pub as_of: SystemTime,
}

/// One model's per-token prices, by table key.
type Prices = HashMap<String, Decimal>;

/// Model name → prices.
#[derive(Debug, Clone)]
pub(crate) struct PriceTable {
    models: HashMap<String, Prices>,
    /// Undated names whose dated snapshots in the table do not all share their prices: an
    /// unknown snapshot of one of these is not priced as the undated name.
    ambiguous: HashSet<String>,
    origin: Origin,
}

impl PriceTable {
    /// The table shipped with this build (`data/model_prices.json`, compiled in). A test
    /// proves it parses; were it not to, the error says so instead of estimating nothing.
    pub(crate) fn pinned() -> Result<PriceTable, String> {
        let origin = Origin {
            source: "pinned",
            as_of: SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(PINNED_ON),
        };
        PriceTable::parse(PINNED, origin).map_err(|e| format!("the pinned price table: {e}"))
    }

    /// A table that prices nothing (every token counts as unpriced), marked as the pinned one.
    pub(crate) fn empty() -> PriceTable {
        PriceTable {
            models: HashMap::new(),
            ambiguous: HashSet::new(),
            origin: Origin {
                source: "pinned",
                as_of: SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(PINNED_ON),
            },
        }
    }

    /// Reads a table in LiteLLM's format from a file.
    pub(crate) fn from_file(path: &Path) -> Result<PriceTable, String> {
        use std::io::Read;
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_BYTES as u64 + 1).read_to_string(&mut text))
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if text.len() > MAX_BYTES {
            return Err(format!(
                "{} is larger than {} MiB, the most a price table may be",
                path.display(),
                MAX_BYTES >> 20
            ));
        }
        let as_of = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .unwrap_or_else(|_| SystemTime::now());
        PriceTable::parse(
            &text,
            Origin {
                source: "file",
                as_of,
            },
        )
        .map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses the JSON. Entries without both an input and an output price (images, audio,
    /// `sample_spec`) are skipped; a price that is not a non-negative number is an error that
    /// names the entry and the key.
    ///
    /// The document is read in one pass without building it as a tree: only the price keys of
    /// each entry are kept, everything else is skipped as it is read, so memory is the text
    /// plus the prices (a 16 MiB table, the cap, stays far below the CronJob's memory limit).
    pub(crate) fn parse(text: &str, origin: Origin) -> Result<PriceTable, String> {
        let Table(models) = serde_json::from_str(text)
            .map_err(|e| format!("not a LiteLLM model price table ({e})"))?;
        if models.is_empty() {
            return Err("no model has an input and an output price".into());
        }
        let mut ambiguous = HashSet::new();
        for (name, prices) in &models {
            let undated = strip_date(name);
            if undated != name && models.get(undated).is_some_and(|u| u != prices) {
                ambiguous.insert(undated.to_owned());
            }
        }
        Ok(PriceTable {
            models,
            ambiguous,
            origin,
        })
    }

    /// Where the table came from.
    pub(crate) fn origin(&self) -> Origin {
        self.origin
    }

    /// Models priced.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.models.len()
    }

    /// The price per token of `kind` tokens of `model` in `tier`: `None` when the table does
    /// not know the model.
    ///
    /// The model is the exact name, then the provider-prefixed name; a dated snapshot the table
    /// lacks (`claude-sonnet-4-5-20250929`, `gpt-4o-2024-05-13`) is priced as its undated name
    /// only when every snapshot of that name the table knows has the undated name's prices.
    pub(crate) fn price(
        &self,
        provider: &str,
        model: &str,
        kind: TokenType,
        tier: Tier,
    ) -> Option<Decimal> {
        let prices = self.model(provider, model)?;
        Some(lookup(prices, kind, tier))
    }

    fn model(&self, provider: &str, model: &str) -> Option<&Prices> {
        let exact = [model.to_owned(), format!("{provider}/{model}")];
        if let Some(p) = exact.iter().find_map(|c| self.models.get(c)) {
            return Some(p);
        }
        let undated = strip_date(model);
        if undated == model {
            return None;
        }
        [undated.to_owned(), format!("{provider}/{undated}")]
            .iter()
            .filter(|c| !self.ambiguous.contains(c.as_str()))
            .find_map(|c| self.models.get(c))
    }
}

/// A whole table read entry by entry: model name → prices (entries without both an input
/// and an output price left out).
struct Table(HashMap<String, Prices>);

impl<'de> serde::Deserialize<'de> for Table {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Table, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Table;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of model entries")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Table, A::Error> {
                let mut models = HashMap::new();
                while let Some(name) = map.next_key::<String>()? {
                    let entry: Entry = map.next_value_seed(EntrySeed(&name))?;
                    if name == "sample_spec" {
                        continue;
                    }
                    if let Entry(Some(prices)) = entry
                        && prices.contains_key("input_cost_per_token")
                        && prices.contains_key("output_cost_per_token")
                    {
                        models.insert(name, prices);
                    }
                }
                Ok(Table(models))
            }
        }
        d.deserialize_map(V)
    }
}

/// One entry's prices; `None` for an entry that is not an object (skipped).
struct Entry(Option<Prices>);

/// Reads the entry named `.0`, for errors that name it.
struct EntrySeed<'a>(&'a str);

impl<'de> de::DeserializeSeed<'de> for EntrySeed<'_> {
    type Value = Entry;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Entry, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for EntrySeed<'_> {
    type Value = Entry;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a model entry")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entry, A::Error> {
        let name = self.0;
        let mut prices = Prices::new();
        while let Some(key) = map.next_key::<String>()? {
            if !PRICE_KEYS.iter().any(|p| key.starts_with(p)) {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let d: ConfigDecimal = map
                .next_value()
                .map_err(|e| de::Error::custom(format!("entry {name:?}, {key}: {e}")))?;
            if d.0.is_sign_negative() && !d.0.is_zero() {
                return Err(de::Error::custom(format!(
                    "entry {name:?}, {key}: {} is negative",
                    d.0
                )));
            }
            prices.insert(key, d.0);
        }
        Ok(Entry(Some(prices)))
    }
    // Anything else (a string, a number, a list) is not an entry: skipped.
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Entry, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Entry(None))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Entry, E> {
        Ok(Entry(None))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Entry, E> {
        Ok(Entry(None))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Entry, E> {
        Ok(Entry(None))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Entry, E> {
        Ok(Entry(None))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Entry, E> {
        Ok(Entry(None))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Entry, E> {
        Ok(Entry(None))
    }
}

/// A price from a model's entry: the tiered key first (long context and service tier, then
/// long context alone, then the service tier alone: missing a discount over-estimates rather
/// than under-estimates), then the plain key; a kind the entry does not price takes the price
/// of the kind it derives from (cache reads and 5-minute writes the input price, 1-hour writes
/// the 5-minute one).
fn lookup(prices: &Prices, kind: TokenType, tier: Tier) -> Decimal {
    let (key, fallback) = match kind {
        TokenType::Input => ("input_cost_per_token", None),
        TokenType::Output => ("output_cost_per_token", None),
        TokenType::CacheRead => ("cache_read_input_token_cost", Some(TokenType::Input)),
        TokenType::CacheWrite => ("cache_creation_input_token_cost", Some(TokenType::Input)),
        TokenType::CacheWrite1h => (
            "cache_creation_input_token_cost_above_1hr",
            Some(TokenType::CacheWrite),
        ),
    };
    let svc = tier.service.suffix();
    let long = "_above_200k_tokens";
    let mut candidates = Vec::with_capacity(4);
    if tier.long_context {
        candidates.push(format!("{key}{long}{svc}"));
        candidates.push(format!("{key}{long}"));
    }
    candidates.push(format!("{key}{svc}"));
    candidates.push(key.to_owned());
    match candidates.iter().find_map(|k| prices.get(k)) {
        Some(p) => *p,
        // Input and output are always there (parse keeps no model without them).
        None => fallback.map_or(Decimal::ZERO, |f| lookup(prices, f, tier)),
    }
}

/// `claude-sonnet-4-5-20250929` → `claude-sonnet-4-5`, `gpt-4o-mini-2024-07-18` → `gpt-4o-mini`.
pub(super) fn strip_date(model: &str) -> &str {
    // -YYYYMMDD
    if let Some((head, tail)) = model.rsplit_once('-')
        && tail.len() == 8
        && tail.bytes().all(|b| b.is_ascii_digit())
    {
        return head;
    }
    // -YYYY-MM-DD (by bytes: a name with multi-byte characters has no such ASCII tail)
    if let Some(head_len) = model.len().checked_sub(11)
        && let Some(tail) = model.get(head_len..)
    {
        let t = tail.as_bytes();
        if t[0] == b'-'
            && t[5] == b'-'
            && t[8] == b'-'
            && [1, 2, 3, 4, 6, 7, 9, 10]
                .iter()
                .all(|i| t[*i].is_ascii_digit())
        {
            return &model[..head_len];
        }
    }
    model
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn std_tier() -> Tier {
        Tier::default()
    }

    fn test_origin() -> Origin {
        Origin {
            source: "file",
            as_of: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn the_pinned_table_parses_and_holds_current_models() {
        let t = PriceTable::pinned().expect("the pinned table parses");
        assert!(t.len() >= 100, "{}", t.len());
        let p = |provider, model, kind| t.price(provider, model, kind, std_tier());
        // Claude Sonnet 4.5 at $3 / $15 per million, cache reads $0.30, 1-hour writes $6.
        let m = "claude-sonnet-4-5-20250929";
        assert_eq!(p("anthropic", m, TokenType::Input), Some(d("0.000003")));
        assert_eq!(p("anthropic", m, TokenType::Output), Some(d("0.000015")));
        assert_eq!(
            p("anthropic", m, TokenType::CacheRead),
            Some(d("0.0000003"))
        );
        assert_eq!(
            p("anthropic", m, TokenType::CacheWrite1h),
            Some(d("0.000006"))
        );
        // Current models are there.
        for m in [
            "claude-opus-4-5",
            "claude-haiku-4-5",
            "claude-opus-4-7",
            "gpt-5",
            "gpt-4.1",
        ] {
            assert!(t.model("x", m).is_some(), "{m} is not in the pinned table");
        }
        assert!(p("openai", "no-such-model", TokenType::Input).is_none());
        assert_eq!(t.origin().source, "pinned");
    }

    #[test]
    fn a_dated_snapshot_is_never_priced_as_an_undated_name_with_other_prices() {
        let t = PriceTable::pinned().unwrap();
        let input = |m| t.price("openai", m, TokenType::Input, std_tier());
        // gpt-4o-2024-05-13 is $5/M, gpt-4o $2.50/M: each its own price.
        assert_eq!(input("gpt-4o-2024-05-13"), Some(d("0.000005")));
        assert_eq!(input("gpt-4o"), Some(d("0.0000025")));
        // An unknown gpt-4o snapshot: the known ones disagree, so no price (counted as
        // unpriced) rather than a guess.
        assert_eq!(input("gpt-4o-2026-01-01"), None);
        // A table whose snapshots all agree with the undated name maps an unknown one.
        let t = PriceTable::parse(
            r#"{"m": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06},
                "m-20250101": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06},
                "n": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06},
                "n-20250101": {"input_cost_per_token": 3e-06, "output_cost_per_token": 2e-06}}"#,
            test_origin(),
        )
        .unwrap();
        let input = |m| t.price("x", m, TokenType::Input, std_tier());
        assert_eq!(input("m-20260101"), Some(d("0.000001")));
        assert_eq!(input("n-20260101"), None);
        assert_eq!(input("n-20250101"), Some(d("0.000003")));
    }

    #[test]
    fn tiers_use_their_own_prices_and_fall_back_to_the_plain_one() {
        let t = PriceTable::parse(
            r#"{"m": {"input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
                 "input_cost_per_token_batches": 1.5e-06,
                 "input_cost_per_token_above_200k_tokens": 6e-06,
                 "input_cost_per_token_above_200k_tokens_batches": 3e-06,
                 "input_cost_per_token_priority": 6e-06,
                 "cache_read_input_token_cost": 3e-07,
                 "cache_creation_input_token_cost": 3.75e-06}}"#,
            test_origin(),
        )
        .unwrap();
        let p = |kind, service, long_context| {
            t.price(
                "x",
                "m",
                kind,
                Tier {
                    service,
                    long_context,
                },
            )
            .unwrap()
        };
        use Service::*;
        use TokenType::*;
        assert_eq!(p(Input, Standard, false), d("0.000003"));
        assert_eq!(p(Input, Batch, false), d("0.0000015"));
        assert_eq!(p(Input, Priority, false), d("0.000006"));
        assert_eq!(p(Input, Standard, true), d("0.000006"));
        assert_eq!(p(Input, Batch, true), d("0.000003"));
        // No flex price: the standard one.
        assert_eq!(p(Input, Flex, false), d("0.000003"));
        // No batch output price: the standard one.
        assert_eq!(p(Output, Batch, false), d("0.000015"));
        // No 1-hour write price: the 5-minute one; no tiered cache price: the plain one.
        assert_eq!(p(CacheWrite1h, Standard, false), d("0.00000375"));
        assert_eq!(p(CacheRead, Batch, true), d("0.0000003"));
        assert_eq!(Service::parse(Some("priority_on_demand")), Priority);
        assert_eq!(Service::parse(Some("flex_discount")), Flex);
        assert_eq!(Service::parse(Some("scale")), Standard);
        assert_eq!(Service::parse(None), Standard);
    }

    #[test]
    fn model_names_are_cut_by_characters_never_inside_one() {
        assert_eq!(strip_date("gpt-4o-2024-05-13"), "gpt-4o");
        assert_eq!(
            strip_date("claude-sonnet-4-5-20250929"),
            "claude-sonnet-4-5"
        );
        // Multi-byte characters where the date would be: unchanged, no panic.
        for name in [
            "modèle-2024-05-1é",
            "éééééééééééé",
            "日本語のモデル名です",
            "é",
            "",
        ] {
            assert_eq!(strip_date(name), name);
        }
    }

    #[test]
    fn bad_tables_are_named_errors() {
        let o = test_origin;
        let t = PriceTable::parse(
            r#"{"sample_spec": {"input_cost_per_token": 0}, "m": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06}, "img": {"output_cost_per_image": 0.04}}"#,
            o(),
        )
        .unwrap();
        assert_eq!(t.len(), 1);
        assert!(PriceTable::parse("[]", o()).is_err());
        assert!(PriceTable::parse("{}", o()).is_err());
        let e = PriceTable::parse(
            r#"{"m": {"input_cost_per_token": "cheap", "output_cost_per_token": 2e-06}}"#,
            o(),
        )
        .unwrap_err();
        assert!(
            e.contains("\"m\"") && e.contains("input_cost_per_token"),
            "{e}"
        );
        let e = PriceTable::parse(
            r#"{"m": {"input_cost_per_token": -1e-06, "output_cost_per_token": 2e-06}}"#,
            o(),
        )
        .unwrap_err();
        assert!(e.contains("negative"), "{e}");
    }
}
