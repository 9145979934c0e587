#!/usr/bin/env python3
"""Refresh data/model_prices.json, the price table compiled into cost-exporter.

Reads LiteLLM's model_prices_and_context_window.json (from the `litellm` wheel on PyPI, where
it ships as litellm/model_prices_and_context_window_backup.json, or from a file) and keeps the
Anthropic and OpenAI text models with their per-token prices, tiers included:

    pip download litellm==1.110.2 --no-deps -d /tmp/litellm
    python3 tools/pin-model-prices.py /tmp/litellm/litellm-1.110.2-*.whl > data/model_prices.json

Then update PINNED_FROM and PINNED_ON in src/providers/ai/prices.rs.
"""

import json
import sys
import zipfile

PROVIDERS = {"anthropic", "openai"}
MODES = {"chat", "responses", "completion"}
PRICE_PREFIXES = (
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
)
MEMBER = "litellm/model_prices_and_context_window_backup.json"


def load(path):
    if path.endswith(".whl"):
        with zipfile.ZipFile(path) as z:
            return json.loads(z.read(MEMBER))
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def main():
    table = load(sys.argv[1])
    out = {}
    for name, entry in sorted(table.items()):
        if not isinstance(entry, dict) or name == "sample_spec":
            continue
        if entry.get("litellm_provider") not in PROVIDERS or entry.get("mode") not in MODES:
            continue
        prices = {
            k: v
            for k, v in entry.items()
            if k.startswith(PRICE_PREFIXES) and isinstance(v, (int, float))
        }
        if "input_cost_per_token" not in prices or "output_cost_per_token" not in prices:
            continue
        out[name] = {
            "litellm_provider": entry["litellm_provider"],
            "mode": entry["mode"],
            **dict(sorted(prices.items())),
        }
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
