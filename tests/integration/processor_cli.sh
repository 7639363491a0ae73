#!/usr/bin/env bash
# `meadow process` and `meadow index stats|dump|backup` on a real data
# directory: events go in with tests/tools/processor_feed, the real binary
# processes them. Checks: everything applied (last seq), one processor per
# data directory (a second exits 3), SIGTERM stops cleanly, malformed input
# dead-lettered, a feed dump by feed URI, a compacted backup equal to the
# original, and kill -9 at random moments while events arrive gives an index
# whose dump (revs and tombstones included) equals the uninterrupted run's.
source "$(dirname "$0")/../lib.sh"

gen() { # out-file: a few thousand events stamped near now
  python3 - "$1" <<'PY'
import json, random, sys, time
random.seed(7)
A = "234567abcdefghijklmnopqrstuvwxyz"
def tid(us, c=1):
    v = (us << 10) | c; s = ""
    for _ in range(13): s = A[v & 31] + s; v >>= 5
    return s
def iso(us): return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(us // 1000000)) + ".%03dZ" % (us // 1000 % 1000)
t = int(time.time() * 1e6) - 3600 * 1000000
out = []
def ev(did, coll, rkey, op, rec=None):
    global t
    t += 1000 + random.randrange(5000)
    c = {"rev": tid(t, 9), "operation": op, "collection": coll, "rkey": rkey}
    if rec is not None: c["record"] = rec; c["cid"] = "bafyreib2rxk3rybk3aobmv5cjuql3bm2twh4jo5uxgf5lclrqnbwzq6tp4"
    out.append({"did": did, "time_us": t, "kind": "commit", "commit": c})
owners = ["did:plc:owner%d" % i for i in range(3)]
tags = ["0123abcd", "89abcdef", "0123abcd"]  # owner2 squats owner0's hashtag
curis = []
for o, tg in zip(owners, tags):
    rk = tid(t + 500, 3)
    ev(o, "net.atrarium.community.config", rk, "create", {"$type": "net.atrarium.community.config", "name": "c", "hashtag": "#atr_" + tg, "stage": "theme", "createdAt": iso(t)})
    curis.append("at://%s/net.atrarium.community.config/%s" % (o, rk))
users = ["did:plc:user%03d" % i for i in range(60)]
for i, u in enumerate(users):
    k = i % 3
    ev(u, "net.atrarium.community.membership", tid(t + 500, 4), "create", {"$type": "net.atrarium.community.membership", "community": curis[k], "role": "member", "joinedAt": iso(t)})
posts = []
for i in range(3000):
    u = random.choice(users + owners)
    tg = random.choice(tags + ["ffffffff"])
    rk = tid(t + 500, 5)
    text = random.choice(["hi #atr_%s", "#atr_%s!", "no tag %s", "tail #atr_%s"]) % tg
    ev(u, "app.bsky.feed.post", rk, "create", {"$type": "app.bsky.feed.post", "text": text, "createdAt": iso(t)})
    posts.append((u, rk))
    r = random.random()
    if r < 0.03:
        pu, prk = random.choice(posts)
        ev(pu, "app.bsky.feed.post", prk, "delete")
    elif r < 0.05:
        pu, prk = random.choice(posts)
        k = random.randrange(3)
        ev(owners[k], "net.atrarium.moderation.action", tid(t + 500, 6), "create", {"$type": "net.atrarium.moderation.action", "action": "hide_post", "target": {"$type": "net.atrarium.moderation.action#postTarget", "uri": "at://%s/app.bsky.feed.post/%s" % (pu, prk), "cid": "bafyreib2rxk3rybk3aobmv5cjuql3bm2twh4jo5uxgf5lclrqnbwzq6tp4"}, "community": curis[k], "createdAt": iso(t)})
    elif r < 0.06:
        u2 = random.choice(users)
        t += 1000
        out.append({"did": u2, "time_us": t, "kind": "account", "account": {"active": False, "did": u2, "seq": t, "status": "deactivated", "time": iso(t)}})
with open(sys.argv[1], "w") as f:
    for i, e in enumerate(out):
        f.write(json.dumps(e, separators=(",", ":")) + "\n")
        if i == 100:
            f.write('{"did":"did:plc:x","kind":"commit","commit":{\n')  # malformed
        if i == 200:  # invalid: application rule (hashtag form)
            f.write(json.dumps({"did": "did:plc:bad", "time_us": 1, "kind": "commit", "commit": {"rev": "3kaaaaaaaaaa2", "operation": "create", "collection": "net.atrarium.community.config", "rkey": "3kaaaaaaaaaa2", "record": {"$type": "net.atrarium.community.config", "name": "x", "hashtag": "#atr_NOPE", "stage": "theme", "createdAt": "2026-01-01T00:00:00Z"}}}) + "\n")
PY
}

stat_of() { "$MEADOW" --data "$1" --log_level off index stats 2>/dev/null | awk -v k="$2" '$1 == k {print $2}'; }
wait_seq() { # data-dir seq: until the processor has applied it (max 90 s)
  local i=0
  while [ "$(stat_of "$1" last_applied_seq)" != "$2" ]; do
    i=$((i + 1)); [ $i -gt 900 ] && return 1; sleep 0.1
  done
}

gen "$T/events.jsonl"
total=$(wc -l < "$T/events.jsonl")
check "events generated" test "$total" -gt 3000

# --- run 1: uninterrupted
mkdir -p "$T/d1"
fed=$("$TOOLS/processor_feed" "$T/d1" "$T/events.jsonl" 500)
expect_eq "all lines appended" "$fed" "$total"
"$MEADOW" --data "$T/d1" --log_level warn process 2>"$T/p1.log" &
P1=$!; PIDS+=("$P1")
check "run 1 applies every event" wait_seq "$T/d1" "$total"
"$MEADOW" --data "$T/d1" --log_level error process 2>"$T/p1b.log"
expect_eq "second processor refused (exit 3)" "$?" "3"
expect_contains "lock message" "$(cat "$T/p1b.log")" "another processor holds the lock"
kill -TERM "$P1"; wait "$P1"
expect_eq "SIGTERM: clean exit" "$?" "0"
expect_contains "invalid record logged with reason" "$(cat "$T/p1.log")" "application rule"
dead=$("$MEADOW" --data "$T/d1" queue dead list 2>&1)
expect_contains "malformed line dead-lettered" "$dead" "malformed JSON"
"$MEADOW" --data "$T/d1" index dump --records > "$T/d1.dump"
check "dump has communities" grep -q '^community did:plc:owner0 0123abcd' "$T/d1.dump"
check "squatter is a separate community" grep -q '^community did:plc:owner2 0123abcd' "$T/d1.dump"
feed=$("$MEADOW" --data "$T/d1" index dump at://did:plc:owner1/app.bsky.feed.generator/89abcdef)
n=$(echo "$feed" | grep -c '^  post ')
check "feed dump lists posts ($n)" test "$n" -gt 50
st=$("$MEADOW" --data "$T/d1" index stats)
expect_contains "stats: communities" "$st" "communities 3"
mkdir -p "$T/bk"
check "backup" "$MEADOW" --data "$T/d1" index backup "$T/bk/index"
"$MEADOW" --data "$T/bk" index dump --records > "$T/bk.dump"
check "backup dump equals original" cmp -s "$T/d1.dump" "$T/bk.dump"
"$MEADOW" --data "$T/d1" index backup "$T/bk/index" 2>/dev/null
check "backup onto an existing copy refused" test $? -ne 0

# --- run 2: events arrive in parts while the processor is killed -9 at random moments
mkdir -p "$T/d2"
split -n l/6 -d "$T/events.jsonl" "$T/part."
kills=0
for part in "$T"/part.*; do
  "$TOOLS/processor_feed" "$T/d2" "$part" 50 >/dev/null &
  F=$!
  "$MEADOW" --data "$T/d2" --log_level error process 2>>"$T/p2.log" &
  P2=$!
  sleep "0.$((RANDOM % 4))$((RANDOM % 10))"
  kill -9 "$P2" 2>/dev/null && kills=$((kills + 1))
  wait "$P2" 2>/dev/null
  wait "$F"
done
"$MEADOW" --data "$T/d2" --log_level error process 2>>"$T/p2.log" &
P2=$!; PIDS+=("$P2")
check "run 2 ($kills kills) applies every event" wait_seq "$T/d2" "$total"
kill -TERM "$P2"; wait "$P2"
"$MEADOW" --data "$T/d2" index dump --records > "$T/d2.dump"
if cmp -s "$T/d1.dump" "$T/d2.dump"; then ok "kill -9 run dumps equal"; else
  bad "kill -9 run dumps equal" "$(diff "$T/d1.dump" "$T/d2.dump" | head -5)"; fi
check "dumps are not trivial" test "$(wc -l < "$T/d1.dump")" -gt 1000
finish
