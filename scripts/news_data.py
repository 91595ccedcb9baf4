#!/usr/bin/env python3
"""Annotation tooling for stance labels on real news (data/stance/news/).

The news text stays in ../shared/data (AllSides, PolNeAR, PLV); the project keeps stand-off
labels only: source, document id, character offsets, labels. This script shows documents to
annotators, checks and converts their files, measures agreement and builds the splits.

  news_data.py sample                        draw the assignments (deterministic; ids only)
  news_data.py sample-more --n N             more AllSides articles for a split, none already assigned
  news_data.py polnear-more --n N            more PolNeAR articles (train, --split dev or --split tune), none assigned
  news_data.py dirsent-more --n N            directed-sentiment sentences for train, at random
  news_data.py show SOURCE DOC...            documents with numbered sentences s0, s1, ...
  news_data.py todo ASSIGNMENT RAW           documents of an assignment not yet in RAW
  news_data.py check RAW...                  validate annotation files (every name found in its sentence)
  news_data.py agreement A B                 F1 of pass B against pass A on the documents both hold
  news_data.py diff A B [--doc DOC]          the statements two passes disagree on
  news_data.py merge A B --out DRAFT         a draft for adjudication: both passes, each statement noted
  news_data.py build                         raw passes -> data/stance/news/{train,tune,dev}.jsonl
  news_data.py stats FILE...                 documents and statements per source and label
  news_data.py replay --round R --replay N --seed S --out F
                                             rounds R of train plus N other train documents at random
  news_data.py plv-map                       PLV's expert codes against our labels on the same sentences

Documents: SOURCE is `allsides` (DOC = the article's ID; text = title, blank line, body, unless the
body already begins with the title), `polnear` (DOC = `train/<file stem>` or `dev/<file stem>`; text =
the file), `plv` (DOC = the row number in PLV_train.tsv; text = the sentence) or `dirsent` (DOC =
`<split>/<row>`, the row of directed_sentiment/<split>.txt from 0; text = its sentence without the
brackets that mark the two entities).
"""
import argparse, collections, csv, glob, hashlib, json, os, random, re, sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.environ.get("STANCE_SHARED", os.path.join(ROOT, "..", "shared"))
DATA = os.path.join(SHARED, "data")
NEWS = os.path.join(ROOT, "data", "stance", "news")
LABELS = ("threat", "accusation", "proposal")
SOURCES = ("allsides", "polnear", "plv", "dirsent")

# ---------------------------------------------------------------- documents

_cache = {}


def allsides_rows():
    if "allsides" not in _cache:
        path = os.path.join(DATA, "news", "allsides", "allsides_intl_politics.jsonl")
        _cache["allsides"] = {r["ID"]: r for r in map(json.loads, open(path, encoding="utf-8"))}
    return _cache["allsides"]


def plv_rows():
    if "plv" not in _cache:
        path = os.path.join(DATA, "plv", "PLV_train.tsv")
        with open(path, encoding="utf-8", newline="") as f:
            _cache["plv"] = list(csv.DictReader(f, delimiter="\t"))
    return _cache["plv"]


def dirsent_rows(split):
    """The sentences of one split of the directed-sentiment data, one per line (row numbers
    from 0), with the brackets that mark its two entities taken out: the text as printed."""
    key = f"dirsent/{split}"
    if key not in _cache:
        path = os.path.join(DATA, "directed_sentiment", f"{split}.txt")
        # newline="": lines split on "\n" alone, as `stance` splits them (src/stance/news.rs).
        lines = open(path, encoding="utf-8", newline="").read().split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        _cache[key] = [l.split("\t", 1)[0].replace("[", "").replace("]", "") for l in lines]
    return _cache[key]


def allsides_text(row):
    """Title, blank line, body; the body alone when it already begins with the title."""
    title, body = row["title"] or "", row["content_original"]
    if not title or body.startswith(title):
        return body
    return title + "\n\n" + body


def text_of(source, doc):
    if source == "allsides":
        return allsides_text(allsides_rows()[doc])
    if source == "polnear":
        split, stem = doc.split("/", 1)
        return open(os.path.join(DATA, "news", "polnear", "data", split, "text", stem + ".txt"),
                    encoding="utf-8").read()
    if source == "plv":
        return plv_rows()[int(doc)]["sentence"]
    if source == "dirsent":
        split, row = doc.split("/", 1)
        return dirsent_rows(split)[int(row)]
    raise ValueError(f"unknown source {source!r} (expected one of {', '.join(SOURCES)})")


def words(text):
    return len(text.split())


# ---------------------------------------------------------------- sentences (a locator for annotators)

ABBREV = set("""mr mrs ms dr prof gen lt col maj sgt capt cmdr adm sen rep gov pres st jr sr rev
 hon no vs etc inc ltd co corp jan feb mar apr jun jul aug sep sept oct nov dec u.s u.n u.k e.u
 d.c a.m p.m i.e e.g ft mt gov't dept fig al""".split())
BOUNDARY = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s+[\"'“‘(\[]?[A-Z0-9])")


def sentences(text):
    """(start, end) of each sentence: lines are paragraphs; inside a line, split after . ! ?
    before a capital, except after a known abbreviation or a single initial."""
    out = []
    pos = 0
    for line in text.split("\n"):
        start, end = pos, pos + len(line)
        pos = end + 1
        if not line.strip():
            continue
        s = start
        for m in BOUNDARY.finditer(line):
            cut = start + m.end()
            before = text[s:start + m.start() + 1].split()
            last = before[-1].lower().rstrip(".!?") if before else ""
            last = last.lstrip("(\"'“‘")
            if text[start + m.start()] == "." and (last in ABBREV or re.fullmatch(r"[a-z]", last)):
                continue
            out.append(trim(text, s, cut))
            s = cut
        if text[s:end].strip():
            out.append(trim(text, s, end))
    return out


def trim(text, s, e):
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    return (s, e)


# ---------------------------------------------------------------- show / todo

def cmd_show(a):
    only = {int(x) for x in a.only.split(",")} if a.only else None
    for i, doc in enumerate(a.docs):
        if i:
            print()
        show_one(a.source, doc, only)


def show_one(source, doc, only=None):
    text = text_of(source, doc)
    sents = sentences(text)
    meta = ""
    if source == "allsides":
        r = allsides_rows()[doc]
        meta = f" ({r['source']}, {r['topic']}, {r['date'] or 'no date'})"
    print(f"== {source} {doc}{meta}: {len(sents)} sentences, {words(text)} words")
    prev_end = 0
    for i, (s, e) in enumerate(sents):
        if only is not None and not (only & {i, i + 1}):
            continue
        if "\n" in text[prev_end:s] and i:
            print()
        print(f"s{i}: {text[s:e]}")
        prev_end = e


def read_assignment(path):
    out = []
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if line and not line.startswith("#"):
            src, doc = line.split("\t")
            out.append((src, doc))
    return out


def cmd_todo(a):
    done = set()
    if os.path.exists(a.raw):
        for line in open(a.raw, encoding="utf-8"):
            if line.strip():
                try:
                    r = json.loads(line)
                    done.add((r["source"], str(r["doc"])))
                except (json.JSONDecodeError, KeyError):
                    pass
    todo = [d for d in read_assignment(a.assignment) if d not in done]
    print(f"{len(todo)} of {len(read_assignment(a.assignment))} documents left")
    for src, doc in todo[: a.n]:
        print(f"{src}\t{doc}")
    if len(todo) > a.n:
        print(f"... and {len(todo) - a.n} more (-n to list them)")


# ---------------------------------------------------------------- raw files

def find(sent_text, name, n, where, what):
    """Character offsets (within the sentence) of occurrence n (1-based) of `name`."""
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise ValueError(f"{where}: {what} {name!r} must be a non-empty name without surrounding spaces")
    pat = re.compile(r"(?<!\w)" + re.escape(name) + r"(?!\w)")
    hits = [m.span() for m in pat.finditer(sent_text)]
    if not hits:
        raise ValueError(f"{where}: {what} {name!r} does not occur in this sentence")
    if n is None:
        if len(hits) > 1:
            raise ValueError(f"{where}: {what} {name!r} occurs {len(hits)} times in the sentence: "
                             f"add \"{what}_n\": 1..{len(hits)} (the occurrence meant)")
        n = 1
    if not (1 <= n <= len(hits)):
        raise ValueError(f"{where}: {what}_n {n} but {name!r} occurs {len(hits)} times")
    return hits[n - 1]


def read_raw(paths):
    """Yields (where, record) with statements resolved to document character offsets."""
    for path in paths:
        for ln, line in enumerate(open(path, encoding="utf-8"), 1):
            if not line.strip():
                continue
            where = f"{path}:{ln}"
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{where}: malformed JSON: {e}")
            try:
                src, doc = r["source"], str(r["doc"])
            except KeyError as e:
                raise ValueError(f"{where}: missing field {e}")
            if "statements" not in r:
                raise ValueError(f"{where}: missing field 'statements' (use [] for a document without any)")
            try:
                text = text_of(src, doc)
            except (KeyError, IndexError, ValueError, FileNotFoundError) as e:
                raise ValueError(f"{where}: no document {src} {doc}: {e}")
            sents = sentences(text)
            out = []
            for k, st in enumerate(r["statements"]):
                w = f"{where} statement {k + 1}"
                s = st.get("s")
                if not isinstance(s, int) or not (0 <= s < len(sents)):
                    raise ValueError(f"{w}: sentence s{s} but the document has s0..s{len(sents) - 1}")
                if st.get("label") not in LABELS:
                    raise ValueError(f"{w}: label {st.get('label')!r} is not one of {', '.join(LABELS)}")
                unknown = set(st) - {"s", "actor", "actor_n", "label", "target", "target_n", "ambiguous", "note"}
                if unknown:
                    raise ValueError(f"{w}: unknown fields {sorted(unknown)}")
                ss, se = sents[s]
                stext = text[ss:se]
                a0, a1 = find(stext, st.get("actor"), st.get("actor_n"), w, "actor")
                item = {"actor": {"start": ss + a0, "end": ss + a1, "text": stext[a0:a1]},
                        "label": st["label"], "target": None}
                if st.get("target") is not None:
                    t0, t1 = find(stext, st["target"], st.get("target_n"), w, "target")
                    item["target"] = {"start": ss + t0, "end": ss + t1, "text": stext[t0:t1]}
                if st.get("ambiguous"):
                    item["ambiguous"] = True
                item["_s"] = s
                out.append(item)
            yield where, {"source": src, "doc": doc, "annotator": r.get("annotator", "?"), "stances": out}


def cmd_check(a):
    n = collections.Counter()
    seen = {}
    for where, r in read_raw(a.files):
        key = (r["source"], r["doc"])
        if key in seen:
            raise ValueError(f"{where}: {key[0]} {key[1]} already annotated at {seen[key]}")
        seen[key] = where
        n["documents"] += 1
        for st in r["stances"]:
            n[st["label"]] += 1
    print("ok: " + ", ".join(f"{k} {v}" for k, v in n.items()))


# ---------------------------------------------------------------- agreement and adjudication

def overlap(a, b):
    return a is not None and b is not None and a["start"] < b["end"] and b["start"] < a["end"]


def match(gold, pred):
    """The guidelines' scoring: greedy one-to-one pairing by label and actor overlap.
    Returns per label (tp, fp, fn), target (agree, matched), pairs, and unmatched."""
    counts = {l: [0, 0, 0] for l in LABELS}
    tgt = [0, 0]
    used = set()
    pairs, only_pred = [], []
    for p in pred:
        hit = next((i for i, g in enumerate(gold) if i not in used and g["label"] == p["label"]
                    and overlap(g["actor"], p["actor"])), None)
        if hit is None:
            only_pred.append(p)
            continue
        used.add(hit)
        pairs.append((gold[hit], p))
    only_gold = [g for i, g in enumerate(gold) if i not in used]
    return pairs, only_gold, only_pred


def score(A, B, optional_ambiguous):
    counts = {l: [0, 0, 0] for l in LABELS}
    tgt = [0, 0]
    for key in sorted(set(A) & set(B)):
        pairs, only_a, only_b = match(A[key], B[key])
        for ga, pb in pairs:
            counts[ga["label"]][0] += 1
            tgt[1] += 1
            tgt[0] += (ga["target"] is None and pb["target"] is None) or overlap(ga["target"], pb["target"])
        for g in only_a:
            if not (optional_ambiguous and g.get("ambiguous")):
                counts[g["label"]][2] += 1
        for p in only_b:
            if not (optional_ambiguous and p.get("ambiguous")):
                # an item B marks ambiguous is optional too, and so is one overlapping A's ambiguous item
                if optional_ambiguous and any(g.get("ambiguous") and g["label"] == p["label"]
                                              and overlap(g["actor"], p["actor"]) for g in A[key]):
                    continue
                counts[p["label"]][1] += 1
    return counts, tgt


def f1(tp, fp, fn):
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def keyed(paths):
    return {(r["source"], r["doc"]): r["stances"] for _, r in read_raw(paths)}


def cmd_agreement(a):
    A, B = keyed([a.a]), keyed([a.b])
    common = set(A) & set(B)
    by_source = collections.Counter(k[0] for k in common)
    print(f"documents in both passes: {len(common)} ({dict(by_source)})")
    rows = [("all", common)] + [(s, {k for k in common if k[0] == s}) for s in SOURCES if by_source[s]]
    result = {}
    for name, keys in rows:
        for opt in (False, True):
            c, t = score({k: A[k] for k in keys}, {k: B[k] for k in keys}, opt)
            tp = sum(v[0] for v in c.values()); fp = sum(v[1] for v in c.values()); fn = sum(v[2] for v in c.values())
            per = "  ".join(f"{l} {f1(*c[l]):.3f} ({c[l][0]}/{c[l][1]}/{c[l][2]})" for l in LABELS)
            tacc = t[0] / t[1] if t[1] else 0.0
            tag = "ambiguous optional" if opt else "all statements    "
            print(f"{name:<9} {tag}  micro F1 {f1(tp, fp, fn):.3f}  {per}  target agreement {tacc:.3f} ({t[0]}/{t[1]})")
            result[(name, opt)] = f1(tp, fp, fn)
    if a.json:
        json.dump({f"{k[0]}{'/optional' if k[1] else ''}": v for k, v in result.items()}, sys.stdout)
        print()


def cmd_diff(a):
    A, B = keyed([a.a]), keyed([a.b])
    keys = sorted(set(A) & set(B))
    if a.doc:
        keys = [k for k in keys if k[1] == a.doc]
    for key in keys:
        pairs, only_a, only_b = match(A[key], B[key])
        tdiff = [(x, y) for x, y in pairs if not ((x["target"] is None and y["target"] is None)
                                                 or overlap(x["target"], y["target"]))]
        amb = [(x, y) for x, y in pairs if bool(x.get("ambiguous")) != bool(y.get("ambiguous"))]
        if not (only_a or only_b or tdiff or amb) and not a.all:
            continue
        print(f"== {key[0]} {key[1]}: agreed {len(pairs)}, only A {len(only_a)}, only B {len(only_b)}, "
              f"target differs {len(tdiff)}, ambiguity differs {len(amb)}")
        show = lambda st: (f"s{st['_s']} {st['actor']['text']} {st['label']} -> "
                           f"{st['target']['text'] if st['target'] else 'null'}"
                           f"{' (ambiguous)' if st.get('ambiguous') else ''}")
        for x, y in pairs:
            mark = "target" if (x, y) in tdiff else ("ambig." if (x, y) in amb else "same  ")
            if mark != "same  " or a.all:
                print(f"  {mark} A: {show(x)} | B: {show(y)}")
        for x in only_a:
            print(f"  only A: {show(x)}")
        for y in only_b:
            print(f"  only B: {show(y)}")


def to_raw(st, text, sents):
    """A resolved statement back in the annotators' form (s, names, occurrence numbers)."""
    s = st["_s"]
    ss, se = sents[s]
    stext = text[ss:se]
    def ref(span):
        name = span["text"]
        pat = re.compile(r"(?<!\w)" + re.escape(name) + r"(?!\w)")
        hits = [m.start() + ss for m in pat.finditer(stext)]
        n = hits.index(span["start"]) + 1
        return name, (n if len(hits) > 1 else None)
    out = {"s": s}
    out["actor"], n = ref(st["actor"])
    if n:
        out["actor_n"] = n
    out["label"] = st["label"]
    out["target"] = None
    if st["target"]:
        out["target"], n = ref(st["target"])
        if n:
            out["target_n"] = n
    if st.get("ambiguous"):
        out["ambiguous"] = True
    return out


def cmd_merge(a):
    """A draft for adjudication: every statement of either pass, with a note saying who had it."""
    A = {(r["source"], r["doc"]): r for _, r in read_raw([a.a])}
    B = {(r["source"], r["doc"]): r for _, r in read_raw([a.b])}
    order = [k for k in A if k in B]
    n = collections.Counter()
    with open(a.out, "w", encoding="utf-8") as f:
        for key in order:
            text = text_of(*key)
            sents = sentences(text)
            pairs, only_a, only_b = match(A[key]["stances"], B[key]["stances"])
            items = []
            for x, y in pairs:
                raw = to_raw(x, text, sents)
                notes = []
                if bool(x.get("ambiguous")) != bool(y.get("ambiguous")):
                    notes.append(f"ambiguous in {'A' if x.get('ambiguous') else 'B'} only")
                    raw["ambiguous"] = True
                elif x.get("ambiguous"):
                    notes.append("ambiguous in both")
                if not ((x["target"] is None and y["target"] is None) or overlap(x["target"], y["target"])):
                    notes.append(f"target: A {x['target']['text'] if x['target'] else 'null'}, "
                                 f"B {y['target']['text'] if y['target'] else 'null'}")
                raw["note"] = "both" + ("; " + "; ".join(notes) if notes else "")
                n["both, settled" if not notes else "both, to check"] += 1
                items.append(raw)
            for x, who in [(x, "A") for x in only_a] + [(y, "B") for y in only_b]:
                raw = to_raw(x, text, sents)
                raw["note"] = f"only {who}" + ("; ambiguous" if x.get("ambiguous") else "")
                n["one pass only"] += 1
                items.append(raw)
            items.sort(key=lambda r: (r["s"], r["label"], r["actor"]))
            f.write(json.dumps({"source": key[0], "doc": key[1], "annotator": a.annotator,
                                "statements": items}, ensure_ascii=False) + "\n")
    print(f"{a.out}: {len(order)} documents; " + ", ".join(f"{k} {v}" for k, v in n.items()))


# ---------------------------------------------------------------- sampling

# Topics that carry more threats get a larger share (the issue allows leaning on them).
TOPIC_WEIGHT = {"north_korea": 3.0, "russia": 2.0, "trade": 2.0, "terrorism": 2.0, "isis": 2.0,
                "nuclear_weapons": 2.0, "middle_east": 1.5, "israel": 1.5, "china": 1.5,
                "palestine": 1.5, "great_britain": 1.5}
MIN_WORDS, MAX_WORDS = 120, 1400
SEED = 20261206
# Shares of AllSides (date, topic) groups per split: articles on the same day and topic
# (often one story from several outlets) never straddle two splits.
GROUP_SHARE = {"dev": 0.15, "tune": 0.12}
COUNTS = {"allsides": {"dev": 84, "tune": 60, "train": 460},
          "polnear": {"dev": 42, "tune": 30, "train": 130},
          "plv": {"dev": 150, "tune": 150}}  # the rest of PLV is train
OUTLET_CAP = 0.10  # at most this share of a split's AllSides sample from one outlet


def split_of(key):
    h = int(hashlib.sha256(("|".join(key) + f"|{SEED}").encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    if h < GROUP_SHARE["dev"]:
        return "dev"
    if h < GROUP_SHARE["dev"] + GROUP_SHARE["tune"]:
        return "tune"
    return "train"


def weighted_sample(items, weight, k, rng, cap_key=None, cap=None):
    """k items without replacement, by weight (Efraimidis-Spirakis keys), at most cap per cap_key."""
    keyed_items = sorted(items, key=lambda x: rng.random() ** (1.0 / weight(x)), reverse=True)
    out, per = [], collections.Counter()
    for x in keyed_items:
        if len(out) == k:
            break
        if cap_key and per[cap_key(x)] >= cap:
            continue
        per[cap_key(x)] += 1 if cap_key else 0
        out.append(x)
    return out


def cmd_sample(a):
    rng = random.Random(SEED)
    rows = allsides_rows()
    pool = collections.defaultdict(list)
    for r in sorted(rows.values(), key=lambda r: r["ID"]):
        n = words(allsides_text(r))
        if MIN_WORDS <= n <= MAX_WORDS:
            pool[split_of((r["date"] or "nodate", r["topic"]))].append(r)
    chosen = {}
    for split in ("dev", "tune", "train"):
        k = COUNTS["allsides"][split]
        pick = weighted_sample(pool[split], lambda r: TOPIC_WEIGHT.get(r["topic"], 1.0), k, rng,
                               cap_key=lambda r: r["source"], cap=max(1, int(OUTLET_CAP * k)))
        chosen[split] = [("allsides", r["ID"]) for r in pick]
    # PolNeAR: its own dev split for our dev; its train split for our tune and train. Its test split is not read.
    pn = lambda sp: sorted(os.path.splitext(os.path.basename(p))[0]
                           for p in glob.glob(os.path.join(DATA, "news", "polnear", "data", sp, "text", "*.txt")))
    ok = lambda sp, stem: MIN_WORDS <= words(text_of("polnear", f"{sp}/{stem}")) <= MAX_WORDS
    dev_stems = [s for s in pn("dev") if ok("dev", s)]
    chosen["dev"] += [("polnear", f"dev/{s}") for s in rng.sample(dev_stems, COUNTS["polnear"]["dev"])]
    train_stems = [s for s in pn("train") if ok("train", s)]
    rng.shuffle(train_stems)
    t = COUNTS["polnear"]["tune"]
    chosen["tune"] += [("polnear", f"train/{s}") for s in train_stems[:t]]
    chosen["train"] += [("polnear", f"train/{s}") for s in train_stems[t:t + COUNTS["polnear"]["train"]]]
    # PLV: every row, split at random.
    idx = list(range(len(plv_rows())))
    rng.shuffle(idx)
    d, t = COUNTS["plv"]["dev"], COUNTS["plv"]["tune"]
    plv = {"dev": sorted(idx[:d]), "tune": sorted(idx[d:d + t]), "train": sorted(idx[d + t:])}
    out = os.path.join(NEWS, "assignments")
    os.makedirs(out, exist_ok=True)
    for split in ("dev", "tune", "train"):
        docs = chosen[split]
        path = os.path.join(out, f"{split}-articles.txt")
        with open(path, "w") as f:
            f.write(f"# {split}: {len(docs)} articles drawn by scripts/news_data.py sample (seed {SEED})\n")
            for src, doc in docs:
                f.write(f"{src}\t{doc}\n")
        with open(os.path.join(out, f"{split}-plv.txt"), "w") as f:
            f.write(f"# {split}: {len(plv[split])} PLV sentences (row numbers)\n")
            for i in plv[split]:
                f.write(f"plv\t{i}\n")
        print(f"{split}: {len(docs)} articles, {len(plv[split])} PLV sentences")


def write_assignment(name, header, docs):
    """Writes a new assignment file (`# header`, then `source<TAB>doc` lines) and returns its
    path. An existing one is never replaced: the raw annotation files of its round refer to the
    documents it lists."""
    path = os.path.join(NEWS, "assignments", name)
    if os.path.exists(path):
        sys.exit(f"error: {path} exists (that round was drawn already): pass another --round")
    with open(path, "w") as f:
        f.write(f"# {header}\n")
        for src, doc in docs:
            f.write(f"{src}\t{doc}\n")
    return path


# `sample-more --pool` value: dev's story groups that hold no dev article.
DEV_UNUSED = "dev-unused"


def cmd_sample_more(a):
    """More AllSides articles for one split, drawn as `sample` draws (optionally leaning
    on some outlets), leaving out every article already assigned."""
    rng = random.Random(SEED + a.round)
    taken, dev_docs = set(), set()
    for path in glob.glob(os.path.join(NEWS, "assignments", "*.txt")):
        docs = read_assignment(path)
        taken.update(docs)
        if os.path.basename(path).startswith("dev-"):
            dev_docs.update(docs)
    rows = sorted(allsides_rows().values(), key=lambda r: r["ID"])
    group = lambda r: (r["date"] or "nodate", r["topic"])
    in_pool = lambda r: split_of(group(r)) == (a.pool or a.split)
    if a.pool == DEV_UNUSED:
        # Dev's story groups that hold no dev article: no story of them is in dev, so they
        # may go to another split as the train groups do.
        with_dev = {group(r) for r in rows if ("allsides", r["ID"]) in dev_docs}
        in_pool = lambda r: split_of(group(r)) == "dev" and group(r) not in with_dev
    pool = []
    for r in rows:
        n = words(allsides_text(r))
        if (MIN_WORDS <= n <= (a.max_words or MAX_WORDS) and ("allsides", r["ID"]) not in taken
                and in_pool(r) and (not a.topic or r["topic"] == a.topic)):
            pool.append(r)
    outlet = {}
    for item in (a.outlet_weight or "").split(","):
        if item.strip():
            name, w = item.rsplit("=", 1)
            outlet[name.strip()] = float(w)
    weight = lambda r: TOPIC_WEIGHT.get(r["topic"], 1.0) * outlet.get(r["source"], 1.0)
    pick = weighted_sample(pool, weight, a.n, rng,
                           cap_key=lambda r: r["source"], cap=max(1, int(a.outlet_cap * a.n)))
    path = write_assignment(
        f"{a.split}-articles-r{a.round}.txt",
        f"{a.split}, round {a.round}: {len(pick)} more articles (scripts/news_data.py sample-more)",
        [("allsides", r["ID"]) for r in pick])
    print(f"{path}: {len(pick)} articles")


# Shortest directed-sentiment sentence drawn, in words: shorter rows are headline fragments.
MIN_SENTENCE_WORDS = 6

# Most words (runs of letters, digits and underscores) a drawn PolNeAR document id may hold:
# the id is committed, and a 12-word run of the source's text may never be.
MAX_ID_WORDS = 11


# Our split -> the PolNeAR split it draws from (the same name unless given here).
POLNEAR_SPLIT_FOR = {"tune": "test"}


def cmd_polnear_more(a):
    """More PolNeAR articles, none already assigned: from its train split for our train, from
    its dev split for our dev (as `sample` drew dev), or from its test split for our tune (a
    second source to choose models on beside AllSides, whose tune pool is used up)."""
    source_split = POLNEAR_SPLIT_FOR.get(a.split, a.split)
    rng = random.Random(SEED + a.round)
    taken = set()
    for path in glob.glob(os.path.join(NEWS, "assignments", "*.txt")):
        taken.update(read_assignment(path))
    stems = sorted(os.path.splitext(os.path.basename(p))[0]
                   for p in glob.glob(os.path.join(DATA, "news", "polnear", "data", source_split, "text", "*.txt")))
    # A file name carries the start of its headline: names with many words would put a run
    # of the source's text into the stand-off files, so they are not drawn.
    pool = [s for s in stems if ("polnear", f"{source_split}/{s}") not in taken
            and len(re.findall(r"\w+", f"{source_split}/{s}")) <= MAX_ID_WORDS
            and MIN_WORDS <= words(text_of("polnear", f"{source_split}/{s}")) <= (a.max_words or MAX_WORDS)]
    pick = rng.sample(pool, min(a.n, len(pool)))
    path = write_assignment(
        f"{a.split}-polnear-r{a.round}.txt",
        f"{a.split}, round {a.round}: {len(pick)} more PolNeAR articles (scripts/news_data.py polnear-more)",
        [("polnear", f"{source_split}/{s}") for s in pick])
    print(f"{path}: {len(pick)} articles")


def cmd_dirsent_more(a):
    """Directed-sentiment train sentences for our train split, drawn at random (never by their
    weak labels or cue words): one row per distinct sentence, none already assigned, none found
    in a dev or tune document of any source."""
    rng = random.Random(SEED + a.round)
    taken, held_out = set(), []
    for path in glob.glob(os.path.join(NEWS, "assignments", "*.txt")):
        docs = read_assignment(path)
        taken.update(text_of(s, d) for s, d in docs if s == "dirsent")
        if os.path.basename(path).startswith(("dev-", "tune-")):
            held_out.extend(text_of(s, d) for s, d in docs)
    held_out = "\n".join(held_out)
    pool, seen = [], set()
    for i, text in enumerate(dirsent_rows("train")):
        if text in seen or text in taken or MIN_SENTENCE_WORDS > words(text) or text in held_out:
            continue
        seen.add(text)
        pool.append(i)
    pick = sorted(rng.sample(pool, min(a.n, len(pool))))
    path = write_assignment(
        f"train-dirsent-r{a.round}.txt",
        f"train, round {a.round}: {len(pick)} directed-sentiment sentences (scripts/news_data.py dirsent-more)",
        [("dirsent", f"train/{i}") for i in pick])
    print(f"{path}: {len(pick)} sentences of {len(pool)} left")


def cmd_batches(a):
    """Cuts an assignment into numbered batch files of about --words words."""
    docs = read_assignment(a.assignment)
    batches, cur, n = [], [], 0
    for src, doc in docs:
        w = words(text_of(src, doc))
        if cur and (n + w > a.words or len(cur) >= a.max_docs):
            batches.append(cur)
            cur, n = [], 0
        cur.append((src, doc))
        n += w
    if cur:
        batches.append(cur)
    base = os.path.splitext(a.assignment)[0]
    for i, b in enumerate(batches, 1):
        with open(f"{base}-{i:02d}.txt", "w") as f:
            for src, doc in b:
                f.write(f"{src}\t{doc}\n")
        print(f"{base}-{i:02d}.txt: {len(b)} documents, {sum(words(text_of(s, d)) for s, d in b)} words")


# ---------------------------------------------------------------- build

def load_manifest():
    return json.load(open(os.path.join(NEWS, "manifest.json")))


def cmd_build(a):
    """Each split's documents from the raw files the manifest names (a later file wins for a
    document: adjudicated dev passes come last)."""
    manifest = load_manifest()
    totals = {}
    for split, files in manifest["splits"].items():
        docs = {}
        for f in files:
            if not os.path.exists(os.path.join(NEWS, f)):
                print(f"missing (skipped): {f}", file=sys.stderr)
                continue
            for where, r in read_raw([os.path.join(NEWS, f)]):
                docs[(r["source"], r["doc"])] = r
        out = os.path.join(NEWS, f"{split}.jsonl")
        with open(out, "w", encoding="utf-8") as fh:
            for key in sorted(docs):
                r = docs[key]
                st = sorted(r["stances"], key=lambda s: (s["actor"]["start"], s["label"]))
                for s in st:
                    s.pop("_s", None)
                fh.write(json.dumps({"source": r["source"], "doc": r["doc"], "stances": st},
                                    ensure_ascii=False, separators=(",", ":")) + "\n")
        c = collections.Counter(s["label"] for r in docs.values() for s in r["stances"])
        totals[split] = (len(docs), c)
        print(f"{out}: {len(docs)} documents, " + ", ".join(f"{l} {c[l]}" for l in LABELS))


def cmd_replay(a):
    """The training file of a run that continues a model over new rounds: every train document
    of those rounds, then `--replay` documents of the rest of train.jsonl drawn at random and
    replayed, so that one epoch over the new data does not forget the old."""
    new = set()
    for r in a.round:
        for path in glob.glob(os.path.join(NEWS, "assignments", f"train-*-r{r}.txt")):
            new.update(read_assignment(path))
    fresh, rest = [], []
    for line in open(os.path.join(NEWS, "train.jsonl"), encoding="utf-8"):
        d = json.loads(line)
        (fresh if (d["source"], d["doc"]) in new else rest).append(line)
    if not fresh:
        sys.exit(f"error: train.jsonl holds no document of round(s) {a.round} (run `build` first?)")
    replayed = random.Random(a.seed).sample(rest, min(a.replay, len(rest)))
    with open(a.out, "w", encoding="utf-8") as f:
        f.writelines(fresh + replayed)
    print(f"{a.out}: {len(fresh)} documents of round(s) {a.round} and {len(replayed)} replayed (seed {a.seed})")


def cmd_stats(a):
    table = collections.defaultdict(collections.Counter)
    for path in a.files:
        for line in open(path, encoding="utf-8"):
            if not line.strip():
                continue
            r = json.loads(line)
            t = table[r["source"]]
            t["documents"] += 1
            t["words"] += words(text_of(r["source"], str(r["doc"])))
            for s in r.get("stances", []):
                t[s["label"]] += 1
                t["ambiguous"] += bool(s.get("ambiguous"))
    print("| source | documents | words | threat | accusation | proposal | of which ambiguous |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    tot = collections.Counter()
    for src in sorted(table):
        t = table[src]
        tot.update(t)
        print(f"| {src} | {t['documents']} | {t['words']:,} | {t['threat']} | {t['accusation']} | {t['proposal']} | {t['ambiguous']} |")
    print(f"| all | {tot['documents']} | {tot['words']:,} | {tot['threat']} | {tot['accusation']} | {tot['proposal']} | {tot['ambiguous']} |")


def cmd_plv_map(a):
    """For each PLV row annotated by us: PLV's gold code against the labels we gave PLV's source."""
    rows = plv_rows()
    ours = {}
    for path in a.files:
        for line in open(path, encoding="utf-8"):
            if line.strip():
                r = json.loads(line)
                if r["source"] == "plv":
                    ours[int(r["doc"])] = r["stances"]
    table = collections.defaultdict(collections.Counter)
    for i, st in ours.items():
        row = rows[i]
        m = re.search(r"<s>(.*?)</s>", row["marked_sentence"])
        if not m:
            continue
        # Character span of the source in the plain sentence: strip the tags before it.
        pre = re.sub(r"</?[st]>", "", row["marked_sentence"][: m.start()])
        src = {"start": len(pre), "end": len(pre) + len(m.group(1))}
        got = sorted({s["label"] for s in st if overlap(s["actor"], src) and not s.get("ambiguous")})
        table[row["gold_root"]][", ".join(got) or "none"] += 1
    cols = ["threat", "accusation", "proposal", "none"]
    print("| PLV code | rows | " + " | ".join(cols) + " | other combinations |")
    print("|---|---:|" + "---:|" * len(cols) + "---|")
    for code in sorted(table, key=lambda c: -sum(table[c].values())):
        t = table[code]
        other = {k: v for k, v in t.items() if k not in cols}
        print(f"| {code} | {sum(t.values())} | " + " | ".join(str(t[c]) for c in cols) + f" | {other or ''} |")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("sample")
    s = sub.add_parser("show"); s.add_argument("source", choices=SOURCES); s.add_argument("docs", nargs="+")
    s.add_argument("--only", help="only these sentences (and the one before each), e.g. 3,17")
    t = sub.add_parser("todo"); t.add_argument("assignment"); t.add_argument("raw"); t.add_argument("-n", type=int, default=5)
    c = sub.add_parser("check"); c.add_argument("files", nargs="+")
    g = sub.add_parser("agreement"); g.add_argument("a"); g.add_argument("b"); g.add_argument("--json", action="store_true")
    d = sub.add_parser("diff"); d.add_argument("a"); d.add_argument("b"); d.add_argument("--doc"); d.add_argument("--all", action="store_true")
    m = sub.add_parser("merge"); m.add_argument("a"); m.add_argument("b"); m.add_argument("--out", required=True)
    m.add_argument("--annotator", default="adjudicated")
    b = sub.add_parser("batches"); b.add_argument("assignment"); b.add_argument("--words", type=int, default=20000)
    b.add_argument("--max-docs", type=int, default=40)
    sm = sub.add_parser("sample-more"); sm.add_argument("--split", default="train"); sm.add_argument("--n", type=int, required=True)
    sm.add_argument("--round", type=int, required=True)
    sm.add_argument("--topic", help="only this AllSides topic")
    sm.add_argument("--pool", help="draw from this split's story groups (default: --split); "
                    f"'{DEV_UNUSED}': dev's story groups that hold no dev article")
    sm.add_argument("--outlet-weight", help="extra weights by outlet, e.g. 'Reuters=3,BBC News=2'")
    sm.add_argument("--outlet-cap", type=float, default=OUTLET_CAP, help="largest share of one outlet")
    sm.add_argument("--max-words", type=int,
                    help=f"longest article drawn, in words (default {MAX_WORDS}, as the first rounds)")
    ds = sub.add_parser("dirsent-more"); ds.add_argument("--n", type=int, required=True)
    ds.add_argument("--round", type=int, required=True)
    pm2 = sub.add_parser("polnear-more"); pm2.add_argument("--n", type=int, required=True)
    pm2.add_argument("--round", type=int, required=True)
    pm2.add_argument("--split", choices=("train", "dev", "tune"), default="train",
                     help="train: from PolNeAR's train split; dev: from its dev split (for our dev); "
                          "tune: from its test split (for our tune)")
    pm2.add_argument("--max-words", type=int,
                     help=f"longest article drawn, in words (default {MAX_WORDS}, as the first rounds)")
    sub.add_parser("build")
    st = sub.add_parser("stats"); st.add_argument("files", nargs="+")
    rp = sub.add_parser("replay"); rp.add_argument("--round", type=int, nargs="+", required=True)
    rp.add_argument("--replay", type=int, required=True); rp.add_argument("--seed", type=int, required=True)
    rp.add_argument("--out", required=True)
    pm = sub.add_parser("plv-map"); pm.add_argument("files", nargs="+")
    a = p.parse_args()
    cmds = {"sample": cmd_sample, "show": cmd_show, "todo": cmd_todo, "check": cmd_check,
            "agreement": cmd_agreement, "diff": cmd_diff, "batches": cmd_batches, "build": cmd_build,
            "stats": cmd_stats, "plv-map": cmd_plv_map, "merge": cmd_merge, "sample-more": cmd_sample_more,
            "dirsent-more": cmd_dirsent_more,
            "polnear-more": cmd_polnear_more, "replay": cmd_replay}
    try:
        cmds[a.cmd](a)
    except ValueError as e:
        raise SystemExit(f"error: {e}")
    except BrokenPipeError:
        pass


if __name__ == "__main__":
    main()
