//! The model price table (LiteLLM's `model_prices_and_context_window.json` format): a pinned
//! subset ships in `data/model_prices.json`; `price_table` in config points at another copy.
//! Used to estimate AI spend for tokens a provider reports without a cost.

use std::collections::HashMap;
use std::path::Path;

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::money::ConfigDecimal;

const PINNED: &str = include_str!("../../../data/model_prices.json");

/// USD per token for each kind of token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rates {
    /// Uncached input.
    pub input: Decimal,
    /// Output.
    pub output: Decimal,
    /// Cache reads (the input price when the table has none).
    pub cache_read: Decimal,
    /// 5-minute cache writes, and OpenAI cache writes (input price when absent).
    pub cache_write: Decimal,
    /// 1-hour cache writes (the 5-minute price when absent).
    pub cache_write_1h: Decimal,
}

#[derive(Deserialize)]
struct Entry {
    input_cost_per_token: Option<ConfigDecimal>,
    output_cost_per_token: Option<ConfigDecimal>,
    cache_read_input_token_cost: Option<ConfigDecimal>,
    cache_creation_input_token_cost: Option<ConfigDecimal>,
    cache_creation_input_token_cost_above_1hr: Option<ConfigDecimal>,
}

/// Model name → rates.
#[derive(Debug, Clone, Default)]
pub(crate) struct PriceTable {
    models: HashMap<String, Rates>,
}

impl PriceTable {
    /// The table shipped with this build (`data/model_prices.json`, compiled in). A test
    /// proves it parses; were it not to, the error says so instead of estimating nothing.
    pub(crate) fn pinned() -> Result<PriceTable, String> {
        PriceTable::parse(PINNED).map_err(|e| format!("the pinned price table: {e}"))
    }

    /// Reads a table in LiteLLM's format.
    pub(crate) fn from_file(path: &Path) -> Result<PriceTable, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        PriceTable::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses the JSON. Entries without both an input and an output price (images, audio,
    /// `sample_spec`) are skipped; an entry that is not an object is an error.
    pub(crate) fn parse(text: &str) -> Result<PriceTable, String> {
        let raw: HashMap<String, serde_json::Value> = serde_json::from_str(text)
            .map_err(|e| format!("not a LiteLLM model price table ({e})"))?;
        let mut models = HashMap::new();
        for (name, value) in raw {
            if name == "sample_spec" || !value.is_object() {
                continue;
            }
            let e: Entry =
                serde_json::from_value(value).map_err(|e| format!("entry {name:?}: {e}"))?;
            let (Some(input), Some(output)) = (e.input_cost_per_token, e.output_cost_per_token)
            else {
                continue;
            };
            let cache_write = e.cache_creation_input_token_cost.map_or(input.0, |d| d.0);
            models.insert(
                name,
                Rates {
                    input: input.0,
                    output: output.0,
                    cache_read: e.cache_read_input_token_cost.map_or(input.0, |d| d.0),
                    cache_write,
                    cache_write_1h: e
                        .cache_creation_input_token_cost_above_1hr
                        .map_or(cache_write, |d| d.0),
                },
            );
        }
        if models.is_empty() {
            return Err("no model has an input and an output price".into());
        }
        Ok(PriceTable { models })
    }

    /// Models priced.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.models.len()
    }

    /// The rates of `model`: the exact name, the provider-prefixed name, then the name without
    /// a trailing date (`claude-sonnet-4-5-20250929`, `gpt-4o-mini-2024-07-18`).
    pub(crate) fn rates(&self, provider: &str, model: &str) -> Option<Rates> {
        let candidates = [
            model.to_owned(),
            format!("{provider}/{model}"),
            strip_date(model).to_owned(),
            format!("{provider}/{}", strip_date(model)),
        ];
        candidates.iter().find_map(|c| self.models.get(c).copied())
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
    // -YYYY-MM-DD
    let b = model.as_bytes();
    if b.len() > 11 {
        let tail = &model[model.len() - 11..];
        let t = tail.as_bytes();
        if t[0] == b'-'
            && t[5] == b'-'
            && t[8] == b'-'
            && [1, 2, 3, 4, 6, 7, 9, 10]
                .iter()
                .all(|i| t[*i].is_ascii_digit())
        {
            return &model[..model.len() - 11];
        }
    }
    model
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pinned_table_parses_and_finds_dated_model_names() {
        let t = PriceTable::pinned().expect("the pinned table parses");
        assert!(t.len() >= 10);
        let sonnet = t.rates("anthropic", "claude-sonnet-4-5-20250929").unwrap();
        assert_eq!(sonnet.input, Decimal::new(3, 6));
        assert_eq!(sonnet.output, Decimal::new(15, 6));
        assert_eq!(sonnet.cache_read, Decimal::new(3, 7));
        assert_eq!(
            t.rates("openai", "gpt-4o-mini-2024-07-18").unwrap().input,
            Decimal::new(15, 8)
        );
        assert!(t.rates("openai", "no-such-model").is_none());
    }

    #[test]
    fn missing_cache_rates_fall_back_to_the_input_rate() {
        let t = PriceTable::parse(
            r#"{"sample_spec": {"input_cost_per_token": 0}, "m": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06}, "img": {"output_cost_per_image": 0.04}}"#,
        )
        .unwrap();
        let r = t.rates("x", "m").unwrap();
        assert_eq!(r.cache_read, r.input);
        assert_eq!(r.cache_write_1h, r.input);
        assert_eq!(t.len(), 1);
        assert!(PriceTable::parse("[]").is_err());
        assert!(PriceTable::parse("{}").is_err());
    }
}
