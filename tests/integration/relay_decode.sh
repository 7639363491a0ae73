#!/usr/bin/env bash
# meadow relay decode / car ls / car info on the real corpus: the decoded
# window equals production Jetstream (first 100, in order, semantically),
# every commit verifies, and corrupted inputs fail with a clear message.
. "$(dirname "$0")/../lib.sh"
C="$PWD/../shared/testdata/atproto-corpus"
[ -n "${MEADOW_CORPUS:-}" ] && C=$MEADOW_CORPUS
cd "$T"
VERIFY=(--verify_commits true --did_docs_file "$C/did_docs.json.zst")

"$MEADOW" "${VERIFY[@]}" relay decode "$C/relay_frames.bin.zst" >out.jsonl 2>err; rc=$?
expect_eq "decode+verify exits 0" "$rc" 0
expect_eq "152 events" "$(wc -l <out.jsonl | tr -d ' ')" 152
sum=$(cat err)
expect_contains "kinds as manifest" "$sum" "events=152 creates=144 updates=2 deletes=4 identity=1 account=1"
expect_contains "148 commits verified" "$sum" "commit_frames=148"
expect_contains "every commit verified" "$sum" "failed_frames=0 failed_ops=0 verified=148 high_s=0"
out=$("$TOOLS/relay_jsoncmp" "$C/jetstream_expected_first100.jsonl" out.jsonl); rc=$?
expect_eq "first 100 equal production Jetstream, in order" "$rc" 0
expect_contains "jsoncmp counted 100" "$out" "100 of 100 equal"
expect_eq "identity event present" "$(grep -c '"kind":"identity"' out.jsonl)" 1
expect_eq "account event present" "$(grep -c '"kind":"account"' out.jsonl)" 1

"$TOOLS/relay_frames" plain "$C/relay_frames.bin.zst" plain.bin
"$MEADOW" relay decode plain.bin >plain.jsonl 2>/dev/null
check "plain input decodes the same as zstd" cmp -s plain.jsonl out.jsonl

"$TOOLS/relay_frames" forge-sig "$C/relay_frames.bin.zst" badsig.bin 3
"$MEADOW" "${VERIFY[@]}" relay decode badsig.bin >badsig.jsonl 2>err; rc=$?
expect_eq "bad signature exits 1" "$rc" 1
expect_contains "bad signature named" "$(cat err)" "frame 3: #commit seq 31527015325 "
expect_contains "bad signature reason" "$(cat err)" "commit signature: does not verify against the DID document's #atproto key"
expect_eq "other frames still decoded" "$(wc -l <badsig.jsonl | tr -d ' ')" 151
"$MEADOW" relay decode badsig.bin >/dev/null 2>&1; rc=$?
expect_eq "without verify_commits the forged frame passes (only the signature is bad)" "$rc" 0

"$TOOLS/relay_frames" flip-block "$C/relay_frames.bin.zst" badblock.bin 7
"$MEADOW" "${VERIFY[@]}" relay decode badblock.bin >/dev/null 2>err; rc=$?
expect_eq "flipped block byte exits 1" "$rc" 1
expect_contains "flipped block named" "$(cat err)" "frame 7: #commit seq 31527015329"
expect_contains "flipped block reason" "$(cat err)" "does not match its CID (sha-256 mismatch)"

"$TOOLS/relay_frames" cut "$C/relay_frames.bin.zst" cut.bin 100
"$MEADOW" relay decode cut.bin >cut.jsonl 2>err; rc=$?
expect_eq "truncated file exits 1" "$rc" 1
expect_contains "truncation named" "$(cat err)" "frame 149: file ends inside the frame (truncated)"
expect_eq "frames before the cut decoded" "$(wc -l <cut.jsonl | tr -d ' ')" 151

"$TOOLS/relay_frames" oversize "$C/relay_frames.bin.zst" big.bin
"$MEADOW" relay decode big.bin >big.jsonl 2>err; rc=$?
expect_eq "oversize frame exits 1" "$rc" 1
expect_contains "oversize named" "$(cat err)" "frame 150: frame of 5242881 bytes is over the 5242880-byte limit"
expect_eq "frames before it decoded" "$(wc -l <big.jsonl | tr -d ' ')" 152

"$MEADOW" --verify_commits true relay decode "$C/relay_frames.bin.zst" >/dev/null 2>err; rc=$?
expect_eq "verify without DID documents exits 2" "$rc" 2
expect_contains "verify without DID documents says why" "$(cat err)" "verify_commits needs did_docs_file"
"$MEADOW" relay decode nosuch.bin >/dev/null 2>err; rc=$?
expect_eq "missing file exits 2" "$rc" 2

# car ls / car info on the repository export
"$MEADOW" car ls "$C/repo.car" >ls.tsv; rc=$?
expect_eq "car ls exits 0" "$rc" 0
check "car ls first 12 rows equal the independent walk" cmp -s <(head -12 ls.tsv) "$C/repo_records_first12.tsv"
check "car ls lists more than 12" test "$(wc -l <ls.tsv)" -gt 12
info=$("$MEADOW" car info "$C/repo.car")
for key in DID "Data CID" Revision; do
  line=$(grep "^$key: " "$C/repo_commit.txt")
  expect_contains "car info $key" "$info" "$line"
done
cp "$C/repo.car" bad.car; chmod u+w bad.car
printf '\x00' | dd of=bad.car bs=1 seek=4000 conv=notrunc status=none
"$MEADOW" car ls bad.car >/dev/null 2>err; rc=$?
expect_eq "corrupt CAR exits 1" "$rc" 1
expect_contains "corrupt CAR reason" "$(cat err)" "does not match its CID"
finish
