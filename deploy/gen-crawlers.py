#!/usr/bin/python3
"""Turns crawler-user-agents.json (npm package crawler-user-agents) into C for uaclass.c.

    gen-crawlers.py patterns JSON > crawlers_data.c     the bot table
    gen-crawlers.py instances JSON > crawler_instances.c the sample User-Agents (unit tests)

Each pattern is a JavaScript regular expression. Most are plain text, matched with a
substring search; the rest are rewritten as POSIX extended expressions (the list uses only
\\d \\s \\S and escaped punctuation besides ERE syntax) for regcomp, together with a piece of
text every match must contain, so that the expression only runs when that text is there.
A pattern this script cannot rewrite fails the build: the list must never shrink silently.
"""

import json
import sys

SPECIAL = set("\\^$.|?*+()[]{}")


def c_string(s):
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= o < 0x7F:
            out.append(ch)
        else:
            for b in ch.encode("utf-8"):
                out.append("\\%03o" % b)
    out.append('"')
    return "".join(out)


def to_ere(p):
    """The pattern as a POSIX ERE; raises ValueError for what it cannot rewrite."""
    out, i, in_bracket = [], 0, False
    # "[\s\S]" is JavaScript for any character.
    p = p.replace("[\\s\\S]", ".").replace("[\\S\\s]", ".")
    while i < len(p):
        ch = p[i]
        if ch == "\\":
            if i + 1 >= len(p):
                raise ValueError("trailing backslash")
            nx = p[i + 1]
            i += 2
            if nx == "d":
                out.append("0-9" if in_bracket else "[0-9]")
            elif nx == "s":
                out.append("[:space:]" if in_bracket else "[[:space:]]")
            elif nx == "S":
                if in_bracket:
                    raise ValueError("\\S in a bracket")
                out.append("[^[:space:]]")
            elif nx.isalnum():
                raise ValueError(f"escape \\{nx}")
            elif in_bracket:
                # Inside a POSIX bracket a backslash is literal: just the character.
                out.append("\\" if nx == "\\" else nx)
            elif nx in SPECIAL:
                out.append("\\" + nx)
            else:
                out.append(nx)
            continue
        if ch == "(" and p.startswith("(?", i):
            raise ValueError("(? group")
        if ch == "[" and not in_bracket:
            in_bracket = True
            out.append(ch)
            i += 1
            # A ']' or '^]' right after '[' is literal in both dialects.
            if i < len(p) and p[i] == "^":
                out.append("^")
                i += 1
            if i < len(p) and p[i] == "]":
                out.append("]")
                i += 1
            continue
        if ch == "]" and in_bracket:
            in_bracket = False
        out.append(ch)
        i += 1
    if in_bracket:
        raise ValueError("unclosed bracket")
    return "".join(out)


def required_literal(p):
    """The longest run of plain text at the top level that every match contains, or ''."""
    depth, i, runs, cur = 0, 0, [], []
    if "|" in p:
        # An alternative anywhere could make any part optional; keep it simple and safe.
        return ""
    while i < len(p):
        ch = p[i]
        if ch == "\\" and i + 1 < len(p) and not p[i + 1].isalnum() and depth == 0:
            cur.append(p[i + 1])
            i += 2
            continue
        if ch == "\\":
            runs.append("".join(cur))
            cur = []
            i += 2
            continue
        if ch in "?*{":
            # The character (or group) before is optional: drop it from the run.
            if cur:
                cur.pop()
            runs.append("".join(cur))
            cur = []
            i += 1
            continue
        if ch == "(":
            runs.append("".join(cur))
            cur = []
            depth += 1
            i += 1
            continue
        if ch == ")":
            depth -= 1
            i += 1
            continue
        if ch == "[":
            runs.append("".join(cur))
            cur = []
            j = i + 1
            if j < len(p) and p[j] == "^":
                j += 1
            if j < len(p) and p[j] == "]":
                j += 1
            while j < len(p) and p[j] != "]":
                j += 2 if p[j] == "\\" else 1
            i = j + 1
            continue
        if depth > 0 or ch in "^$.+":
            runs.append("".join(cur))
            cur = []
            i += 1
            continue
        cur.append(ch)
        i += 1
    runs.append("".join(cur))
    best = max(runs, key=len)
    return best if len(best) >= 2 else ""


def plain(p):
    """The text itself when the pattern is plain text (escaped punctuation allowed)."""
    out, i = [], 0
    while i < len(p):
        ch = p[i]
        if ch == "\\":
            if i + 1 >= len(p) or p[i + 1].isalnum():
                return None
            out.append(p[i + 1])
            i += 2
            continue
        if ch in SPECIAL:
            return None
        out.append(ch)
        i += 1
    return "".join(out)


def patterns(entries):
    print("/* Generated by deploy/gen-crawlers.py from crawler-user-agents: do not edit. */")
    print('#include "uaclass.h"')
    print()
    print("const struct crawler_pattern crawler_patterns[] = {")
    for e in entries:
        p = e["pattern"]
        text = plain(p)
        if text is not None:
            print(f"    {{{c_string(text)}, NULL}},")
            continue
        try:
            ere = to_ere(p)
        except ValueError as err:
            sys.exit(f"gen-crawlers.py: cannot rewrite pattern {p!r}: {err}")
        print(f"    {{{c_string(required_literal(p))}, {c_string(ere)}}},")
    print("};")
    print(f"const size_t crawler_npatterns = {len(entries)};")


def instances(entries):
    print("/* Generated by deploy/gen-crawlers.py from crawler-user-agents: do not edit. */")
    print("static const char *const crawler_instances[] = {")
    n = 0
    for e in entries:
        for ua in e.get("instances", []):
            print(f"    {c_string(ua)},")
            n += 1
    print("};")
    print(f"static const size_t crawler_ninstances = {n};")


def main():
    what, path = sys.argv[1], sys.argv[2]
    with open(path, encoding="utf-8") as f:
        entries = json.load(f)
    if not isinstance(entries, list) or len(entries) < 100:
        sys.exit(f"gen-crawlers.py: {path} does not look like the crawler list")
    {"patterns": patterns, "instances": instances}[what](entries)


if __name__ == "__main__":
    main()
