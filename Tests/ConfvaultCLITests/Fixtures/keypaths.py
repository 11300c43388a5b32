#!/usr/bin/env python3
"""Reference reader for the diff tests: the changed key paths between two JSON or YAML files, read by
Python's json and PyYAML, in confvault's key-path syntax (docs/diff.md).

Usage: keypaths.py OLD NEW  ->  prints a JSON array of {"path", "old", "new"} (absent side: no key).
"""
import difflib
import json
import re
import sys

import yaml

PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
IDENTITY = ("name", "id", "key")


def load(path):
    with open(path, "rb") as handle:
        data = handle.read()
    if path.lower().endswith(".json"):
        return json.loads(data)
    documents = list(yaml.safe_load_all(data.decode("utf-8")))
    if len(documents) == 1:
        return documents[0]
    return documents if documents else None


def key(path, name):
    if PLAIN.match(name):
        return name if not path else path + "." + name
    return path + "[" + json.dumps(name, ensure_ascii=False) + "]"


def compact(value):
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def identity(a, b):
    for field in IDENTITY:
        ok = True
        for side in (a, b):
            seen = set()
            for element in side:
                value = element.get(field) if isinstance(element, dict) else None
                if not isinstance(value, (str, int)) or isinstance(value, bool) or compact(value) in seen:
                    ok = False
                    break
                seen.add(compact(value))
            if not ok:
                break
        if ok:
            return field
    return None


def compare(old, new, path, out):
    if isinstance(old, dict) and isinstance(new, dict):
        for name in sorted(set(old) | set(new)):
            child = key(path, name)
            if name in old and name in new:
                compare(old[name], new[name], child, out)
            elif name in old:
                out.append({"path": child, "old": old[name]})
            else:
                out.append({"path": child, "new": new[name]})
    elif isinstance(old, list) and isinstance(new, list) and old != new:
        field = identity(old, new)
        if field:
            before = {compact(e[field]): e for e in old}
            kept = {compact(e[field]) for e in new}
            for element in new:
                child = path + "[" + field + "=" + compact(element[field]) + "]"
                if compact(element[field]) in before:
                    compare(before[compact(element[field])], element, child, out)
                else:
                    out.append({"path": child, "new": element})
            for element in old:
                if compact(element[field]) not in kept:
                    out.append({"path": path + "[" + field + "=" + compact(element[field]) + "]", "old": element})
            return
        matcher = difflib.SequenceMatcher(None, [compact(e) for e in old], [compact(e) for e in new], autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal":
                continue
            removed, inserted = list(range(i1, i2)), list(range(j1, j2))
            for i, j in zip(removed, inserted):
                compare(old[i], new[j], path + "[%d]" % j, out)
            for i in removed[len(inserted):]:
                out.append({"path": path + "[%d]" % i, "old": old[i]})
            for j in inserted[len(removed):]:
                out.append({"path": path + "[%d]" % j, "new": new[j]})
    elif compact(old) != compact(new):
        out.append({"path": path, "old": old, "new": new})


def main():
    changes = []
    compare(load(sys.argv[1]), load(sys.argv[2]), "", changes)
    print(json.dumps(changes, ensure_ascii=False, sort_keys=True))


if __name__ == "__main__":
    main()
