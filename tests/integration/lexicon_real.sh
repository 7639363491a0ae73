#!/usr/bin/env bash
# Real records through the generic validator: every record of the real
# Jetstream captures in ../shared/testdata/atproto-corpus (likes, reposts,
# posts with embeds and facets, follows, blocks, a profile with blobs, two
# collections no official document defines), judged against the full
# official lexicon set of the pinned @atproto/api (387 documents, exported
# by tests/node/lexicon-export.mjs) by Meadow (no builtin documents) and by
# @atproto/lexicon. Verdicts and messages must agree on every record; then
# the same records, damaged in known ways, must be refused alike.
. "$(dirname "$0")/../lib.sh"
REPO=$(cd "$(dirname "$0")/../.." && pwd)
DATA=$REPO/../shared/testdata/atproto-corpus

NODE=$("$REPO/tests/node/setup.sh") || { bad "node setup" "tests/node/setup.sh failed"; finish; exit 1; }
n=$(cd "$REPO/tests/node" && "$NODE" lexicon-export.mjs "$T/docs")
check "official documents exported" test "${n:-0}" -ge 300

python3 - "$DATA" "$T/real.jsonl" <<'PY'
import copy, json, sys
data, out = sys.argv[1], sys.argv[2]
recs = []
for f in ("jetstream_expected_first100.jsonl", "jetstream_golden_10.jsonl"):
    for k, l in enumerate(open(f"{data}/{f}", encoding="utf-8")):
        e = json.loads(l)
        c = e.get("commit") or {}
        if e.get("kind") == "commit" and "record" in c:
            recs.append({"id": f"{f.split('_')[1]}-{k:03d}-{c['collection']}", "nsid": c["collection"],
                         "record": c["record"]})
# damaged copies: a required property removed, a wrong type, a bad datetime
dmg = []
for r in recs:
    rec = r["record"]
    if "createdAt" in rec:
        a = copy.deepcopy(r); a["id"] += "-no-createdAt"; del a["record"]["createdAt"]; dmg.append(a)
        b = copy.deepcopy(r); b["id"] += "-bad-createdAt"; b["record"]["createdAt"] = "2024-13-01T00:00:00Z"; dmg.append(b)
    if isinstance(rec.get("subject"), dict) and "uri" in rec["subject"]:
        s = copy.deepcopy(r); s["id"] += "-bad-subject-uri"; s["record"]["subject"]["uri"] = "https://bsky.app/x"; dmg.append(s)
    if isinstance(rec.get("text"), str):
        t = copy.deepcopy(r); t["id"] += "-text-301-graphemes"; t["record"]["text"] = "x" * 301; dmg.append(t)
with open(out, "w", encoding="utf-8") as f:
    for r in recs + dmg:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
print(len(recs), len(dmg))
PY
(cd "$REPO/tests/node" && "$NODE" lexicon-judge.mjs "$T/real.jsonl" "$T/docs") > "$T/ref.tsv"
"$TOOLS/lexicon_judge" --no-builtin "$T/real.jsonl" "$T/docs" > "$T/meadow.tsv"
total=$(wc -l < "$T/real.jsonl")
expect_eq "reference judged every record" "$(wc -l < "$T/ref.tsv")" "$total"
expect_eq "meadow judged every record" "$(wc -l < "$T/meadow.tsv")" "$total"
diffs=$(paste "$T/ref.tsv" "$T/meadow.tsv" | awk -F'\t' '$1 != $4 || $2 != $5 || $3 != $6')
[ -n "$diffs" ] && echo "$diffs" | head -20
expect_eq "verdicts and messages agree on all $total records" "$(printf %s "$diffs" | grep -c .)" 0
valid=$(grep -c "	valid	" "$T/meadow.tsv")
echo "records=$total valid=$valid invalid=$((total - valid))"
check "real records are valid ($valid)" test "$valid" -ge 100
check "damaged records are refused" test "$(grep -- '-no-createdAt	invalid	Record must have the property "createdAt"' "$T/meadow.tsv" | wc -l)" -ge 90
expect_contains "unknown collection reported" "$(cat "$T/meadow.tsv")" "Lexicon not found: lex:fm.teal.alpha.actor.status"
finish
