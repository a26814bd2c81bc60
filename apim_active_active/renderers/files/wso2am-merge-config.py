#!/usr/bin/python3
"""wso2am-merge-config SHIPPED PAIR: the product's own deployment.toml with the pair's settings merged over it, on
standard output, the way WSO2's page tells an operator to edit the file: tables merged key by key (the pair's keys
win), an array of tables the pair gives replacing the shipped one, everything else kept as shipped.

Runs on its own: Amazon Linux 2023's python3 (3.9) with its python3-tomli and python3-tomli-w packages, no network,
no node environment. Exit 1, naming the file (and line), when an input does not parse or the result would not.
"""
from __future__ import annotations

import sys

import tomli
import tomli_w


def merge(shipped: dict, pair: dict) -> dict:
    merged = dict(shipped)
    for key, value in pair.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load(path: str) -> dict:
    try:
        with open(path, "rb") as handle:
            return tomli.load(handle)
    except (OSError, tomli.TOMLDecodeError) as error:
        raise SystemExit(f"wso2am-merge-config: {path}: {error}") from None


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: wso2am-merge-config SHIPPED PAIR", file=sys.stderr)
        return 2
    shipped, pair = argv
    text = tomli_w.dumps(merge(load(shipped), load(pair)))
    try:
        tomli.loads(text)
    except tomli.TOMLDecodeError as error:
        raise SystemExit(f"wso2am-merge-config: the merge of {shipped} and {pair} does not parse: {error}") from None
    sys.stdout.write(f"# {shipped} with {pair} merged over it by wso2am-merge-config: edit neither here.\n{text}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
