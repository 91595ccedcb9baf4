#!/usr/bin/env python3
"""Turns hand-written article specs into gold JSON Lines (the guidelines' format, character offsets).

A spec line: {"id", "text", "stances": [{"actor": "Kerry", "actor_n": 1, "label": "threat",
              "target": "Moscow", "target_n": 1, "ambiguous": false}]}
`actor_n` / `target_n` pick the n-th occurrence (1-based, default 1) of the string in `text`, as a
whole word. `target` may be null. Output lines: {"id", "text", "stances": [{"actor": {start, end, text},
"label", "target": {...} | null, "ambiguous"?}]}.

usage: gold_from_spec.py SPEC.jsonl > GOLD.jsonl     (errors name the spec line)
"""
import json, re, sys


def find(text, s, n, where):
    hits = [m.start() for m in re.finditer(r"(?<!\w)" + re.escape(s) + r"(?!\w)", text)]
    if len(hits) < n:
        raise SystemExit(f"{where}: {s!r} occurs {len(hits)} time(s), occurrence {n} asked for")
    start = hits[n - 1]
    return {"start": start, "end": start + len(s), "text": s}


def main():
    path = sys.argv[1]
    ids = set()
    for k, line in enumerate(open(path, encoding="utf-8"), 1):
        if not line.strip():
            continue
        where = f"{path}:{k}"
        try:
            d = json.loads(line)
        except json.JSONDecodeError as e:
            raise SystemExit(f"{where}: malformed JSON: {e}")
        if d["id"] in ids:
            raise SystemExit(f"{where}: duplicate id {d['id']}")
        ids.add(d["id"])
        out = []
        for st in d.get("stances", []):
            if st["label"] not in ("threat", "accusation", "proposal"):
                raise SystemExit(f"{where}: bad label {st['label']!r}")
            item = {"actor": find(d["text"], st["actor"], st.get("actor_n", 1), where), "label": st["label"],
                    "target": find(d["text"], st["target"], st.get("target_n", 1), where) if st.get("target") else None}
            if st.get("ambiguous"):
                item["ambiguous"] = True
            out.append(item)
        print(json.dumps({"id": d["id"], "text": d["text"], "stances": out}, ensure_ascii=False))


if __name__ == "__main__":
    main()
