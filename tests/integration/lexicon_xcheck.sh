#!/usr/bin/env bash
# The lexicon cross-check: every record of tests/lexicon/corpus.jsonl judged
# by Meadow's validator (tests/tools/lexicon_judge) and by the official
# @atproto/lexicon (tests/node/lexicon-judge.mjs, Lexicons.assertValidRecord,
# one node run for the whole corpus). Verdicts and messages must agree on
# every record, except those marked with a "diff" class documented in
# docs/lexicon.md, whose verdicts must differ (so the list stays true). Then
# `meadow lexicon validate` on a sample, from another directory.
. "$(dirname "$0")/../lib.sh"
REPO=$(cd "$(dirname "$0")/../.." && pwd)
CORPUS=$REPO/tests/lexicon/corpus.jsonl
DOCS=$REPO/tests/lexicon/docs

NODE=$("$REPO/tests/node/setup.sh") || { bad "node setup" "tests/node/setup.sh failed"; finish; exit 1; }
(cd "$REPO/tests/node" && "$NODE" lexicon-judge.mjs "$CORPUS" "$REPO/lexicon" "$DOCS") > "$T/ref.tsv"
check "reference judged the corpus" test -s "$T/ref.tsv"
"$TOOLS/lexicon_judge" "$CORPUS" "$DOCS" > "$T/meadow.tsv"
check "meadow judged the corpus" test -s "$T/meadow.tsv"

python3 - "$CORPUS" "$T/ref.tsv" "$T/meadow.tsv" "$REPO/docs/lexicon.md" > "$T/cmp.txt" <<'PY'
import json, sys
corpus = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
def load(p):
    d = {}
    for l in open(p, encoding="utf-8"):
        i, v, m = l.rstrip("\n").split("\t", 2)
        d[i] = (v, m)
    return d
ref, mdw = load(sys.argv[2]), load(sys.argv[3])
doc = open(sys.argv[4], encoding="utf-8").read()
agree = msg_agree = differ = 0
problems = []
for c in corpus:
    i = c["id"]
    if i not in ref or i not in mdw:
        problems.append(f"{i}: missing verdict"); continue
    (rv, rm), (mv, mm) = ref[i], mdw[i]
    cls = c.get("diff")
    if cls:
        if f"`{cls}`" not in doc:
            problems.append(f"{i}: difference class {cls} not documented in docs/lexicon.md")
        if rv == mv:
            problems.append(f"{i}: marked {cls} but both say {rv} (remove the mark)")
        else:
            differ += 1
        continue
    if rv != mv:
        problems.append(f"{i}: reference {rv} ({rm}), meadow {mv} ({mm})")
    elif rm != mm:
        problems.append(f"{i}: messages differ: reference [{rm}] meadow [{mm}]")
    else:
        agree += 1
valid = sum(1 for v, _ in ref.values() if v == "valid")
print(f"records={len(corpus)} valid={valid} invalid={len(ref) - valid} agree={agree} documented_differences={differ}")
for p in problems:
    print("PROBLEM " + p)
PY
summary=$(head -1 "$T/cmp.txt")
echo "$summary"
grep '^PROBLEM' "$T/cmp.txt" | head -40
expect_eq "no disagreement" "$(grep -c '^PROBLEM' "$T/cmp.txt")" 0
n=$(echo "$summary" | sed -n 's/.*records=\([0-9]*\).*/\1/p')
check "corpus has at least 200 records" test "${n:-0}" -ge 200
check "corpus has valid records" test "$(echo "$summary" | sed -n 's/.* valid=\([0-9]*\).*/\1/p')" -ge 50
check "corpus has invalid records" test "$(echo "$summary" | sed -n 's/.*invalid=\([0-9]*\).*/\1/p')" -ge 50

# The CLI agrees with the judge on a sample (every 41st record), run from
# another directory so the builtin documents must come from the binary.
python3 - "$CORPUS" "$T/sample" <<'PY'
import json, os, sys
os.makedirs(sys.argv[2])
for k, l in enumerate(open(sys.argv[1], encoding="utf-8")):
    if k % 41: continue
    c = json.loads(l)
    try:
        text = json.dumps(c["record"], allow_nan=False)
    except ValueError:  # 1e400 does not survive a round trip
        continue
    open(os.path.join(sys.argv[2], c["id"] + ".json"), "w", encoding="utf-8").write(text)
    open(os.path.join(sys.argv[2], c["id"] + ".nsid"), "w").write(c["nsid"])
PY
cd "$T"
mismatch=0 sampled=0
for f in sample/*.json; do
  id=$(basename "$f" .json)
  out=$("$MEADOW" lexicon validate --no-app --dir "$DOCS" "$(cat "sample/$id.nsid")" "$f"); rc=$?
  want=$(awk -F'\t' -v id="$id" '$1 == id { print ($2 == "valid" ? "valid" : $3) }' "$T/meadow.tsv")
  sampled=$((sampled + 1))
  if [ "$out" != "$want" ] || { [ "$out" = valid ] && [ $rc -ne 0 ]; } || { [ "$out" != valid ] && [ $rc -ne 1 ]; }; then
    mismatch=$((mismatch + 1)); echo "cli $id: got [$out] rc=$rc want [$want]"
  fi
done
expect_eq "cli agrees with the judge on $sampled records" "$mismatch" 0

rec='{"$type":"net.atrarium.community.config","name":"n","hashtag":"#atr_0123ABCD","stage":"theme","createdAt":"2024-05-01T12:00:00Z"}'
out=$(echo "$rec" | "$MEADOW" lexicon validate net.atrarium.community.config -); rc=$?
expect_eq "cli app rule exit code" "$rc" 1
expect_contains "cli app rule reported as such" "$out" "application rule: hashtag"
out=$(echo "$rec" | "$MEADOW" lexicon validate --no-app net.atrarium.community.config); rc=$?
expect_eq "cli --no-app: lexicon only" "$out/$rc" "valid/0"
"$MEADOW" lexicon validate net.atrarium.nosuch.thing <<<'{}' 2>"$T/err"; rc=$?
expect_eq "cli unknown nsid exits 2" "$rc" 2
expect_contains "cli unknown nsid named" "$(cat "$T/err")" "Lexicon not found: lex:net.atrarium.nosuch.thing"
out=$(echo '{nope' | "$MEADOW" lexicon validate net.atrarium.community.config); rc=$?
expect_eq "cli malformed JSON" "$out/$rc" "not JSON/1"
finish
