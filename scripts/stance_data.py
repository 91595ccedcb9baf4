#!/usr/bin/env python3
"""Annotation tooling for the stance data under data/stance/ (stand-off labels on CoNLL-2003).

The CoNLL-2003 text is never copied into the project: these commands read it from
../shared/data/conll2003/ and the labels refer to it by (split, document, sentence, token span).

  stance_data.py triage --split train          topic and cue counts per document, to choose what to read
  stance_data.py show --split train --doc 9    a document with sentence numbers and numbered entities
  stance_data.py check FILE...                 validate raw annotation files (entity references)
  stance_data.py convert RAW... --out FILE     raw annotations -> stand-off labels with token spans
  stance_data.py agreement A B                 F1 of one annotation pass against another (same documents)
  stance_data.py stats FILE...                 counts of documents, statements, labels
"""
import argparse, json, os, re, sys, collections

HERE = os.path.dirname(os.path.abspath(__file__))
CONLL = os.environ.get("STANCE_CONLL", os.path.join(HERE, "..", "..", "shared", "data", "conll2003"))
FILES = {"train": "train.txt", "dev": "dev.txt", "test": "test.txt"}
LABELS = ("threat", "accusation", "proposal")


def load(split):
    """Documents -> sentences -> (tokens, tags), as in the CoNLL file."""
    docs, sent = [], []
    path = os.path.join(CONLL, FILES[split])
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if line.startswith("-DOCSTART-"):
            docs.append([])
            continue
        if not line.strip():
            if sent:
                docs[-1].append(sent)
                sent = []
            continue
        parts = line.split(" ")
        sent.append((parts[0], parts[-1]))
    if sent:
        docs[-1].append(sent)
    return docs


def entities(sent):
    """IOB1 spans: list of (start, end, type), end exclusive."""
    out, cur = [], None
    for i, (_, tag) in enumerate(sent):
        if tag == "O":
            cur = None
            continue
        pre, typ = tag.split("-", 1)
        if cur is not None and cur[2] == typ and pre == "I" and cur[1] == i:
            cur[1] = i + 1
        else:
            cur = [i, i + 1, typ]
            out.append(cur)
    return [tuple(e) for e in out]


SPORT = re.compile(r"^(SOCCER|CRICKET|TENNIS|GOLF|BASEBALL|BASKETBALL|RUGBY|HORSE RACING|ATHLETICS|CYCLING|BOXING|"
                   r"MOTOR|MOTORCYCLING|BADMINTON|SQUASH|NFL|NHL|NBA|ICE HOCKEY|HOCKEY|SWIMMING|SKIING|ROWING|SAILING|"
                   r"YACHTING|TRIATHLON|JUDO|WRESTLING|FORMULA|ALPINE|AMERICAN FOOTBALL|CANOEING|EQUESTRIANISM|"
                   r"SPEEDWAY|DARTS|SNOOKER|TABLE TENNIS|VOLLEYBALL|HANDBALL|POLO|GYMNASTICS|CHESS|BRIDGE|WEIGHTLIFTING|"
                   r"FENCING|SHOOTING|ARCHERY|AUSTRALIAN RULES|SOFTBALL|SUMO|BOBSLEIGH)\b", re.I)
CUES = re.compile(r"\b(threat\w*|warn\w*|vow\w*|retaliat\w*|ultimatum|sanction\w*|veto\w*|accus\w*|blam\w*|"
                  r"charg\w*|alleg\w*|condemn\w*|denounc\w*|criticis\w*|criticiz\w*|propos\w*|suggest\w*|"
                  r"offer\w*|urg\w*|call(ed|s)? for|demand\w*|plan\w*|recommend\w*|resolution|bill|unless)\b", re.I)


def cmd_triage(a):
    for i, doc in enumerate(load(a.split)):
        if not doc:
            continue
        head = " ".join(t for t, _ in doc[0])
        words = sum(len(s) for s in doc)
        text = " ".join(t for s in doc for t, _ in s)
        cues = len(CUES.findall(text))
        kind = "sport" if SPORT.match(head) else "other"
        print(f"{i}\t{len(doc)}\t{words}\t{cues}\t{kind}\t{head[:90]}")


def cmd_show(a):
    doc = load(a.split)[a.doc]
    print(f"== {a.split} document {a.doc}: {len(doc)} sentences")
    for si, sent in enumerate(doc):
        ents = entities(sent)
        starts = {e[0]: (k, e) for k, e in enumerate(ents)}
        ends = {e[1] - 1: k for k, e in enumerate(ents)}
        words = []
        for ti, (tok, _) in enumerate(sent):
            w = tok
            if ti in starts:
                w = "[" + w
            if ti in ends:
                k = ends[ti]
                w = w + f"]e{k}"
            words.append(w)
        print(f"\ns{si}: " + " ".join(words))
        if ents and a.list:
            print("    " + "; ".join(f"e{k}={' '.join(t for t, _ in sent[s:e])}/{typ}" for k, (s, e, typ) in enumerate(ents)))


def resolve(ref, sent, where):
    """'e2' -> the sentence's entity 2; 't5-7' -> tokens 5..7 (end exclusive); None -> None."""
    if ref is None:
        return None
    ents = entities(sent)
    m = re.fullmatch(r"e(\d+)", str(ref))
    if m:
        k = int(m.group(1))
        if k >= len(ents):
            raise ValueError(f"{where}: {ref} but the sentence has {len(ents)} entities")
        return [ents[k][0], ents[k][1]]
    m = re.fullmatch(r"t(\d+)-(\d+)", str(ref))
    if m:
        s, e = int(m.group(1)), int(m.group(2))
        if not (0 <= s < e <= len(sent)):
            raise ValueError(f"{where}: token span {ref} outside the sentence of {len(sent)} tokens")
        return [s, e]
    raise ValueError(f"{where}: bad reference {ref!r} (expected e<N>, t<START>-<END> or null)")


def read_raw(paths, cache={}):
    """Yields (path:line, record) with refs resolved to token spans."""
    for path in paths:
        for n, line in enumerate(open(path, encoding="utf-8"), 1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{where}: malformed JSON: {e}")
            split, d = r["split"], r["doc"]
            if r.get("skipped"):
                continue
            if split not in cache:
                cache[split] = load(split)
            doc = cache[split][d]
            out = []
            for st in r.get("statements", []):
                s = st["s"] if "s" in st else st["sentence"]
                if not (0 <= s < len(doc)):
                    raise ValueError(f"{where}: sentence {s} but the document has {len(doc)}")
                if st["label"] not in LABELS:
                    raise ValueError(f"{where}: unknown label {st['label']!r}")
                actor = resolve(st["actor"], doc[s], where) if not isinstance(st["actor"], list) else st["actor"]
                tgt = st.get("target")
                target = resolve(tgt, doc[s], where) if not isinstance(tgt, list) else tgt
                if actor is None:
                    raise ValueError(f"{where}: a statement needs an actor")
                item = {"sentence": s, "actor": actor, "label": st["label"], "target": target}
                if st.get("ambiguous"):
                    item["ambiguous"] = True
                out.append(item)
            rec = {"split": split, "doc": d, "annotator": r.get("annotator", "?"), "statements": out}
            yield where, rec


def cmd_check(a):
    n = 0
    for where, rec in read_raw(a.files):
        n += 1
    print(f"ok: {n} documents")


def cmd_convert(a):
    seen = {}
    for where, rec in read_raw(a.files):
        key = (rec["split"], rec["doc"])
        if key in seen and not a.allow_duplicates:
            raise SystemExit(f"{where}: {key} already annotated at {seen[key]}")
        seen[key] = where
    recs = sorted((r for _, r in read_raw(a.files)), key=lambda r: (r["split"], r["doc"]))
    with open(a.out, "w", encoding="utf-8") as f:
        for r in recs:
            r["statements"].sort(key=lambda s: (s["sentence"], s["actor"], s["label"]))
            f.write(json.dumps(r, separators=(",", ":")) + "\n")
    print(f"wrote {len(recs)} documents to {a.out}")


def keyed(recs):
    out = collections.defaultdict(list)
    for r in recs:
        for s in r["statements"]:
            out[(r["split"], r["doc"])].append(s)
    return out


def overlaps(a, b):
    return a is not None and b is not None and a[0] < b[1] and b[0] < a[1]


def cmd_agreement(a):
    A = {(r["split"], r["doc"]): r for _, r in read_raw([a.a])}
    B = {(r["split"], r["doc"]): r for _, r in read_raw([a.b])}
    common = sorted(set(A) & set(B))
    res = collections.Counter()
    tgt = [0, 0]
    for lab in LABELS:
        for k in common:
            ga = [s for s in A[k]["statements"] if s["label"] == lab]
            gb = [s for s in B[k]["statements"] if s["label"] == lab]
            used = set()
            for sb in gb:
                hit = next((i for i, sa in enumerate(ga) if i not in used and sa["sentence"] == sb["sentence"]
                            and overlaps(sa["actor"], sb["actor"])), None)
                if hit is None:
                    res[lab, "fp"] += 1
                else:
                    used.add(hit)
                    res[lab, "tp"] += 1
                    tgt[1] += 1
                    ta, tb = ga[hit]["target"], sb["target"]
                    tgt[0] += (ta is None and tb is None) or overlaps(ta, tb)
            res[lab, "fn"] += len(ga) - len(used)
    print(f"documents in both passes: {len(common)}")
    T = collections.Counter()
    for lab in LABELS:
        tp, fp, fn = res[lab, "tp"], res[lab, "fp"], res[lab, "fn"]
        T["tp"] += tp; T["fp"] += fp; T["fn"] += fn
        f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        print(f"{lab:<11} F1 {f1:.3f}  (both {tp}, only B {fp}, only A {fn})")
    f1 = 2 * T["tp"] / (2 * T["tp"] + T["fp"] + T["fn"]) if T["tp"] else 0.0
    print(f"{'micro':<11} F1 {f1:.3f}  (both {T['tp']}, only B {T['fp']}, only A {T['fn']})")
    if tgt[1]:
        print(f"target agreement over matched statements: {tgt[0] / tgt[1]:.3f}")


def cmd_stats(a):
    skipped = collections.Counter()
    for path in a.files:
        for line in open(path, encoding="utf-8"):
            if line.strip() and json.loads(line).get("skipped"):
                skipped[json.loads(line)["skipped"]] += 1
    if skipped:
        print(f"skipped (not read as relevant): {sum(skipped.values())} {dict(skipped)}")
    recs = [r for _, r in read_raw(a.files)]
    c = collections.Counter(s["label"] for r in recs for s in r["statements"])
    splits = collections.Counter(r["split"] for r in recs)
    print(f"documents: {len(recs)} ({dict(splits)}); statements: {sum(c.values())}; " +
          ", ".join(f"{l} {c[l]}" for l in LABELS))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("triage"); t.add_argument("--split", default="train")
    s = sub.add_parser("show"); s.add_argument("--split", default="train"); s.add_argument("--doc", type=int, required=True)
    s.add_argument("--list", action="store_true", help="also list each sentence's entities")
    c = sub.add_parser("check"); c.add_argument("files", nargs="+")
    v = sub.add_parser("convert"); v.add_argument("files", nargs="+"); v.add_argument("--out", required=True)
    v.add_argument("--allow-duplicates", action="store_true")
    g = sub.add_parser("agreement"); g.add_argument("a"); g.add_argument("b")
    st = sub.add_parser("stats"); st.add_argument("files", nargs="+")
    a = p.parse_args()
    try:
        {"triage": cmd_triage, "show": cmd_show, "check": cmd_check, "convert": cmd_convert,
         "agreement": cmd_agreement, "stats": cmd_stats}[a.cmd](a)
    except ValueError as e:
        raise SystemExit(f"error: {e}")


if __name__ == "__main__":
    main()
