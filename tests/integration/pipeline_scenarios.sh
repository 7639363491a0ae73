#!/usr/bin/env bash
# The whole pipeline on the scenarios of issue 5: jetstream_replay (127.0.0.1)
# -> `meadow serve` (firehose -> queue -> processor -> index -> feedgen) ->
# getFeedSkeleton with curl. Events are stamped near now (time_us, revs,
# record keys and createdAt from the real clock: the binary uses it too).
#
# Three phases. Each appends its events to one stream file and restarts the
# replay server on the same port with the whole file; meadow reconnects and
# resumes from its stored cursor (minus rewind: the overlap is deduplicated
# by revs). Each phase ends with a sentinel post in community 0: once it is
# visible, every earlier event has been applied (the queue and the processor
# keep stream order), so "not listed" is asserted after the fact, not early.
# Every feed is then polled (bounded, 10 s) until it equals its expected list.
. "$(dirname "$0")/../lib.sh"
T_DIR=$T
. "$(dirname "$0")/pipeline_lib.bash"
cd "$T"
: >"$STREAM"

RPORT=$(free_port)
HPORT=$(free_port)

O0=$(mkdid ownerzero) O1=$(mkdid ownerone) O2=$(mkdid ownertwo) O3=$(mkdid ownerthree)
O4=$(mkdid ownerfour) O5=$(mkdid ownerfive) O6=$(mkdid ownersix) O7=$(mkdid ownerseven)
O8=$(mkdid ownereight) O9=$(mkdid ownernine)
A=$(mkdid alice) B=$(mkdid bob) C=$(mkdid carol) D=$(mkdid dave) E=$(mkdid erin)
N=$(mkdid nonmember) M=$(mkdid mallory) S=$(mkdid stranger) MOD1=$(mkdid moderatorone)
F1=$(mkdid fivemembersone) F2=$(mkdid fivememberstwo) F3=$(mkdid fivembthree)
F4=$(mkdid fivemembersfour) F5=$(mkdid fivemembersfive) G=$(mkdid inactive) H=$(mkdid blocklisted)
I=$(mkdid leaver) J=$(mkdid early) D2=$(mkdid dianne)
t0=00c0ffee t1=0123abcd t2=1111aaaa t3=2222bbbb t4=3333cccc t6=6666dddd t7=7777eeee
t8=8888ffff t9=99990000

SENT=""
sentinel() { # phase: the last event of a phase, in community 0
  local s
  post s "$O0" "phase $1 done #atr_$t0"
  SENT="$s${SENT:+ $SENT}"
}
run_phase() { # phase
  replay_stop
  check "replay server up (phase $1)" replay_start
  [ "$1" = 1 ] && check "meadow serve up" serve_start "$T/data" "$HPORT" "$T/serve.log"
  wait_feed "phase $1: sentinel visible (every earlier event applied)" "$HPORT" "$O0" "$t0" "$SENT" 30
}
feed() { wait_feed "$1" "$HPORT" "$2" "$3" "$4"; }

# ---------------------------------------------------------------- phase 1
clock_now
config c0 "$O0" $t0
# C1: owner + one member + a non-member; moderator MOD1 named in the config
config c1 "$O1" $t1 ",\"moderators\":[\"$MOD1\"]"
join _ "$A" "$c1"
post pA1 "$A" "first post #atr_$t1"
post pA2 "$A" "second post #atr_$t1"
post pO1 "$O1" "the owner's own post, no membership record #atr_$t1"
post pN "$N" "a non-member #atr_$t1"
# retention: a post dated 8 days ago is never listed
old=$(($(now_us) - 8 * 86400 * 1000000))
tid $old 3
iso $old
commit "$O1" app.bsky.feed.post create "$TID" \
  "{\"\$type\":\"app.bsky.feed.post\",\"text\":\"too old #atr_$t1\",\"createdAt\":\"$ISO\"}"
# C2: blocked and unblocked member; a moderator of C1 acting here
config c2 "$O2" $t2
join _ "$B" "$c2"
join _ "$D2" "$c2"
post pB1 "$B" "bob one #atr_$t2"
post pB2 "$B" "bob two #atr_$t2"
post pD2 "$D2" "dianne #atr_$t2"
# C3: delete, edit dropping the tag, one post with two community tags
config c3 "$O3" $t3
join _ "$C" "$c3"
join _ "$A" "$c3"
post pC1 "$C" "stays #atr_$t3"
post pCdel "$C" "will be deleted #atr_$t3"
post pCedit "$C" "will lose its tag #atr_$t3"
post pTwo "$A" "two communities #atr_$t1 and #atr_$t3"
# C4: forged owner role, stranger's moderation
config c4 "$O4" $t4
join _ "$D" "$c4"
join _ "$M" "$c4" owner
post pD4 "$D" "dave in four #atr_$t4"
post pM4 "$M" "mallory claims to own four #atr_$t4"
post pS4 "$S" "stranger, not a member #atr_$t4"
# C5: a second owner squats hashtag t1: a separate community
config c5 "$O5" $t1
post pO5 "$O5" "squatter's post #atr_$t1"
# C6: config deleted in phase 2
config c6 "$O6" $t6
post pO6 "$O6" "six #atr_$t6"
# C7: deactivated account (phase 2), reactivated (phase 3)
config c7 "$O7" $t7
join _ "$E" "$c7"
post pE7 "$E" "erin #atr_$t7"
account "$E" true "" 100
# C8: five members newest first, tag forms, malformed tags, inactive /
# blocklisted members, a membership deleted in phase 2
config c8 "$O8" $t8 ",\"blocklist\":[\"$H\"]"
for f in "$F1" "$F2" "$F3" "$F4" "$F5" "$H"; do join _ "$f" "$c8"; done
join _ "$G" "$c8" member false
join mI "$I" "$c8"
post pI "$I" "leaver #atr_$t8"
post pF1 "$F1" "facet only" ",\"facets\":[{\"features\":[{\"\$type\":\"app.bsky.richtext.facet#tag\",\"tag\":\"atr_$t8\"}],\"index\":{\"byteEnd\":5,\"byteStart\":0}}]"
post pF2 "$F2" "tags array only" ",\"tags\":[\"atr_$t8\"]"
post pF3 "$F3" "escaped hash \\u0023atr_$t8"
post pF4 "$F4" "plain #atr_$t8"
post pF5 "$F5" "five #atr_$t8 ok"
for bad in "#atr_xyz" "#atr_${t8^^}" "#atr_${t8:0:7}" "#atr_${t8}e" "word#atr_$t8" "atr_$t8" "untagged"; do
  post _ "$F4" "malformed $bad"
done
post pG "$G" "inactive member #atr_$t8"
post pH "$H" "blocklisted member #atr_$t8"
# C9: a membership (and a post) before the config, which comes in phase 2
tid $((EV + 500)) 3
c9rk=$TID
c9="at://$O9/net.atrarium.community.config/$c9rk"
join _ "$J" "$c9"
post pJ "$J" "early bird #atr_$t9"
sentinel 1
run_phase 1

C1_1="$pTwo $pO1 $pA2 $pA1"
feed "member's tagged post listed; owner's own post listed without membership; non-member not listed; expired post not listed" "$O1" $t1 "$C1_1"
feed "C2 members listed" "$O2" $t2 "$pD2 $pB2 $pB1"
feed "one post with two community tags is in both; C3 before delete/edit" "$O3" $t3 "$pTwo $pCedit $pCdel $pC1"
feed "C4: forged owner is still a member; stranger not listed" "$O4" $t4 "$pM4 $pD4"
feed "squatted hashtag: separate community with the squatter's post only" "$O5" $t1 "$pO5"
feed "C6 listed before its config is deleted" "$O6" $t6 "$pO6"
feed "C7 listed while the account is active" "$O7" $t7 "$pE7"
feed "five members newest first; facet-only, tags-only and \\u0023 tags found; malformed and untagged not; inactive and blocklisted members not listed" \
  "$O8" $t8 "$pF5 $pF4 $pF3 $pF2 $pF1 $pI"
feed "membership before its config: feed unknown until the config arrives" "$O9" $t9 "ERR:UnknownFeed"

# ---------------------------------------------------------------- phase 2
clock_now
modact hide1 "$O1" "$c1" hide_post "$pA1"
modact hide2 "$O1" "$c1" hide_post "$pA2"
join _ "$N" "$c1"
modact _ "$O2" "$c2" block_user "$B"
modact _ "$MOD1" "$c2" hide_post "$pD2"
del "$pCdel"
edit "$pCedit" "no tag any more"
modact _ "$M" "$c4" hide_post "$pD4"
modact _ "$S" "$c4" hide_post "$pD4"
modact _ "$S" "$c4" block_user "$D"
del "$c6"
account "$E" false deactivated 101
del "$mI"
config _ "$O9" $t9 "" "$c9rk"
sentinel 2
run_phase 2

feed "owner hides a post -> gone (two hidden); non-member listed once joined" "$O1" $t1 "$pTwo $pN $pO1"
feed "owner blocks a member -> their posts gone; a moderator of another community cannot hide here" "$O2" $t2 "$pD2"
feed "deleted post leaves; post edited to drop its tag leaves" "$O3" $t3 "$pTwo $pC1"
feed "forged role owner cannot hide; stranger's hide and block ignored" "$O4" $t4 "$pM4 $pD4"
feed "deleted config -> UnknownFeed" "$O6" $t6 "ERR:UnknownFeed"
feed "deactivated account's posts hidden" "$O7" $t7 ""
feed "deleted membership -> not listed" "$O8" $t8 "$pF5 $pF4 $pF3 $pF2 $pF1"
feed "membership before its config takes effect when the config arrives" "$O9" $t9 "$pJ"
feed "squatter's community unchanged" "$O5" $t1 "$pO5"

# ---------------------------------------------------------------- phase 3
clock_now
modact _ "$O1" "$c1" unhide_post "$pA1"
del "$hide2"
modact _ "$O2" "$c2" unblock_user "$B"
account "$E" true "" 102
sentinel 3
run_phase 3

feed "unhide -> back; deleting a hide action restores the post" "$O1" $t1 "$pTwo $pN $pO1 $pA2 $pA1"
feed "unblock -> back" "$O2" $t2 "$pD2 $pB2 $pB1"
feed "reactivated account's posts restored" "$O7" $t7 "$pE7"
feed "squatted hashtag still separate after all phases" "$O5" $t1 "$pO5"
page=$(feed_all "$HPORT" "$O1" $t1 2)
expect_eq "paging with limit 2 gives the same feed" "$page" "$pTwo $pN $pO1 $pA2 $pA1"
desc=$(curl -s "http://127.0.0.1:$HPORT/xrpc/app.bsky.feed.describeFeedGenerator")
expect_contains "describeFeedGenerator lists the squatter's feed" "$desc" "at://$O5/app.bsky.feed.generator/$t1"
case "$desc" in *"at://$O6/"*) bad "closed community not described" "$desc" ;; *) ok "closed community not described" ;; esac
m=$(curl -s "http://127.0.0.1:$HPORT/metrics")
expect_contains "metrics count received events" "$m" 'meadow_firehose_events_total'
conn=$(grep -c 'replay: connection cursor=[0-9]' "$T/replay.log")
[ "$conn" -ge 2 ] && ok "meadow resumed with a cursor after each replay restart" || bad "resumed with cursor" "$conn"

kill -TERM "$SPID"
wait "$SPID"
expect_eq "meadow serve exits 0 on SIGTERM" "$?" 0
finish
