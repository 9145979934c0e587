#!/usr/bin/env python3
"""Trim a provider's published OpenAPI document to the operations the job calls.

Usage: trim-openapi.py FULL.json OUT.json 'METHOD /path' ['METHOD /path' ...]

Keeps `openapi`, `info`, `servers`, `security` and `components.securitySchemes` as published,
the listed operations (each with its path item's other keys, such as shared `parameters`, but
no other method), and every `components` entry they reference, followed transitively. Objects
are copied as published, key order kept; nothing is rewritten. Used for the fixtures under
`tests/fixtures/<provider>/` (their README says which document, commit and operations).
"""

import json
import sys


def refs(value, found):
    """Collects the local `$ref` pointers under `value`."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "$ref" and isinstance(v, str) and v.startswith("#/"):
                found.add(v)
            else:
                refs(v, found)
    elif isinstance(value, list):
        for v in value:
            refs(v, found)


def pointer(doc, ref):
    node = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    full = json.load(open(sys.argv[1]))
    out = {k: full[k] for k in ("openapi", "info", "servers", "security") if k in full}
    out["paths"] = {}
    wanted = set()
    for spec in sys.argv[3:]:
        method, path = spec.split(" ", 1)
        method = method.lower()
        item = full["paths"][path]
        kept = out["paths"].setdefault(
            path, {k: v for k, v in item.items() if k not in HTTP_METHODS}
        )
        kept[method] = item[method]
        refs(kept, wanted)
    components = {}
    if "securitySchemes" in full.get("components", {}):
        components["securitySchemes"] = full["components"]["securitySchemes"]
    done = set()
    while wanted - done:
        ref = sorted(wanted - done)[0]
        done.add(ref)
        target = pointer(full, ref)
        refs(target, wanted)
        parts = ref[2:].split("/")
        if parts[0] == "components":
            components.setdefault(parts[1], {})[parts[2]] = pointer(
                full, "#/" + "/".join(parts[:3])
            )
    # Components in the published order.
    ordered = {}
    for kind, entries in full.get("components", {}).items():
        if kind in components:
            ordered[kind] = {k: v for k, v in entries.items() if k in components[kind]}
    out["components"] = ordered
    with open(sys.argv[2], "w") as f:
        json.dump(out, f, indent=2, ensure_ascii=False)
        f.write("\n")


HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}

if __name__ == "__main__":
    main()
