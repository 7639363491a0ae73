#!/usr/bin/env python3
"""Writes tests/lexicon/corpus.jsonl: the records of the lexicon cross-check.

One JSON object per line: {"id", "nsid", "record"} and, for a record in a
documented class of deliberate difference (docs/lexicon.md), "diff": class.
Each record is judged by Meadow (tests/tools/lexicon_judge.c) and by
@atproto/lexicon (tests/node/lexicon-judge.mjs); tests/integration/
lexicon_xcheck.sh compares the verdicts. Re-run after editing and commit the
output (the corpus is data; this script is how it was made).
"""
import copy, hashlib, json, os

CFG, MEM, ACT, GEN, KIT = ("net.atrarium.community.config", "net.atrarium.community.membership",
                           "net.atrarium.moderation.action", "app.bsky.feed.generator",
                           "com.example.lexicon.kitchen")
DID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
CONFIG_URI = f"at://{DID}/net.atrarium.community.config/3kfwpqaijmk2c"
POST_URI = f"at://{DID}/app.bsky.feed.post/3kfwpqaijmk2d"
NOW = "2024-05-01T12:00:00.000Z"

# ---- CIDs computed here, so the corpus carries real ones ----
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
def basex(b, alpha):
    n = int.from_bytes(b, "big"); out = ""
    while n: n, r = divmod(n, len(alpha)); out = alpha[r] + out
    return alpha[0] * (len(b) - len(b.lstrip(b"\0"))) + out
def b32(b):
    bits = "".join(f"{x:08b}" for x in b); bits += "0" * (-len(bits) % 5)
    return "".join("abcdefghijklmnopqrstuvwxyz234567"[int(bits[i:i+5], 2)] for i in range(0, len(bits), 5))
MH = bytes([0x12, 0x20]) + hashlib.sha256(b"meadow").digest()
CBOR_V1 = bytes([1, 0x71]) + MH
RAW_V1 = bytes([1, 0x55]) + MH
CID = "b" + b32(CBOR_V1)
CID_RAW = "b" + b32(RAW_V1)
CID_V0 = basex(MH, B58)
CID_B58 = "z" + basex(CBOR_V1, B58)
CID_B36 = "k" + basex(CBOR_V1, "0123456789abcdefghijklmnopqrstuvwxyz")

out = []
def add(id_, nsid, rec, diff=None):
    assert not any(o["id"] == id_ for o in out), id_
    e = {"id": id_, "nsid": nsid, "record": rec}
    if diff: e["diff"] = diff
    out.append(e)

def base(nsid):
    return copy.deepcopy({
        CFG: {"$type": CFG, "name": "Meadow fans", "hashtag": "#atr_0123abcd", "stage": "theme", "createdAt": NOW},
        MEM: {"$type": MEM, "community": CONFIG_URI, "role": "member", "joinedAt": NOW},
        ACT: {"$type": ACT, "action": "hide_post", "target": {"$type": ACT + "#postTarget", "uri": POST_URI},
              "community": CONFIG_URI, "createdAt": NOW},
        GEN: {"$type": GEN, "did": "did:web:feeds.example.com", "displayName": "Meadow", "createdAt": NOW},
        KIT: {"$type": KIT, "req": "x", "maybeReq": None},
    }[nsid])

def var(id_, nsid, diff=None, drop=(), **kv):
    r = base(nsid)
    for k in drop: r.pop(k, None)
    for k, v in kv.items(): r[k.replace("__", "$")] = v
    add(id_, nsid, r, diff)

# ---- net.atrarium.community.config ----
var("config-minimal", CFG)
var("config-full", CFG, description="A place for #atr_0123abcd", moderators=[DID, "did:web:mod.example.com"],
    blocklist=["did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"], feedMix={"own": 60, "parent": 30, "global": 10},
    parentCommunity=CONFIG_URI, updatedAt="2024-05-02T00:00:00Z")
for f in ("name", "hashtag", "stage", "createdAt"):
    var(f"config-missing-{f}", CFG, drop=[f])
var("config-extra-field-ignored", CFG, colour="green")
var("config-hashtag-bad-form-is-lexicon-valid", CFG, hashtag="#atr_XYZ")
var("config-hashtag-not-string", CFG, hashtag=12345678)
var("config-stage-community", CFG, stage="community")
var("config-stage-graduated", CFG, stage="graduated")
var("config-stage-unknown", CFG, stage="archived")
var("config-stage-case", CFG, stage="Theme")
var("config-name-null", CFG, name=None)
var("config-name-number", CFG, name=7)
var("config-name-empty", CFG, name="")
var("config-name-100-ascii", CFG, name="a" * 100)
var("config-name-101-ascii-graphemes", CFG, name="a" * 101)
var("config-name-100-precomposed-200-bytes", CFG, name="\u00e9" * 100)
var("config-name-101-precomposed-bytes", CFG, name="\u00e9" * 101)
var("config-name-66-euro-198-bytes", CFG, name="\u20ac" * 66)
var("config-name-67-euro-201-bytes", CFG, name="\u20ac" * 67)
FAMILY = "\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466"  # 25 bytes, 1 grapheme
var("config-name-8-zwj-families-200-bytes", CFG, name=FAMILY * 8)
var("config-name-9-zwj-families-bytes", CFG, name=FAMILY * 9)
var("config-name-combining-300-bytes", CFG, name="e\u0301" * 100)
var("config-description-600-combining", CFG, description="e\u0301" * 600)
var("config-description-1001-graphemes", CFG, description="x" * 1001)
var("config-description-2001-bytes", CFG, description="\u00e9" * 1000 + "x")
var("config-moderators-empty", CFG, moderators=[])
var("config-moderators-50", CFG, moderators=[f"did:plc:mod{i:03d}" for i in range(50)])
var("config-moderators-51", CFG, moderators=[f"did:plc:mod{i:03d}" for i in range(51)])
var("config-moderators-bad-did", CFG, moderators=[DID, DID, DID, "alice.bsky.social"])
var("config-moderators-not-array", CFG, moderators=DID)
var("config-moderators-item-null", CFG, moderators=[None])
var("config-blocklist-1000", CFG, blocklist=[f"did:plc:b{i:04d}" for i in range(1000)])
var("config-blocklist-1001", CFG, blocklist=[f"did:plc:b{i:04d}" for i in range(1001)])
var("config-feedmix-sum-not-100-lexicon-valid", CFG, feedMix={"own": 10, "parent": 10, "global": 10})
var("config-feedmix-empty", CFG, feedMix={})
var("config-feedmix-101", CFG, feedMix={"own": 101})
var("config-feedmix-negative", CFG, feedMix={"parent": -1})
var("config-feedmix-fraction", CFG, feedMix={"own": 50.5})
var("config-feedmix-integral-float", CFG, feedMix={"own": 50.0, "parent": 50.0})
var("config-feedmix-string", CFG, feedMix={"global": "50"})
var("config-feedmix-bool", CFG, feedMix={"global": True})
var("config-feedmix-null", CFG, feedMix=None)
var("config-feedmix-array", CFG, feedMix=[])
var("config-feedmix-string-whole", CFG, feedMix="50/30/20")
var("config-parent-did-only", CFG, parentCommunity=f"at://{DID}")
var("config-parent-https", CFG, parentCommunity="https://example.com/c")
var("config-updated-bad", CFG, updatedAt="yesterday")

# datetimes, on createdAt
DATES_OK = ["2024-05-01T12:00:00Z", "2024-05-01T12:00:00.1Z", "2024-05-01T12:00:00.123456Z",
            "2024-05-01T12:00:00.123456789012Z", "2024-05-01T12:00:00+09:00", "2024-05-01T12:00:00-05:30",
            "2024-05-01T12:00:00.5+14:00", "2024-02-30T00:00:00Z", "2023-02-29T00:00:00Z",
            "0000-01-01T00:00:00Z", "0000-01-01T01:00:00+01:00", "9999-12-31T23:59:59.999Z",
            "1985-04-12T23:20:50.123-23:59", "2024-05-01T23:59:59Z"]
DATES_BAD = ["2024-05-01", "2024-05-01 12:00:00Z", "2024-05-01t12:00:00z", "2024-05-01T12:00:00-00:00",
             "2024-05-01T12:00Z", "2024-05-01T12:00:00.Z", "2024-05-01T12:00:00+01", "2024-13-01T00:00:00Z",
             "2024-05-00T00:00:00Z", "2024-05-32T00:00:00Z", "24-05-01T12:00:00Z", "", "now", " 2024-05-01T12:00:00Z",
             "2024-05-01T12:00:00Z ", "2024-05-01T12:00:00+24:00", "+002024-05-01T12:00:00Z"]
DATES_LENIENT = ["2024-05-01T12:00:00", "2024-05-01T12:00:00.123", "2024-05-01T12:00:00+0900",
                 "20240501T120000Z", "2024-05-01T24:00:00Z", "2024-05-01T23:59:60Z",
                 "0000-01-01T00:30:00+01:00", "9999-12-31T23:00:00-01:00"]
for i, d in enumerate(DATES_OK): var(f"datetime-ok-{i:02d}", CFG, createdAt=d)
for i, d in enumerate(DATES_BAD): var(f"datetime-bad-{i:02d}", CFG, createdAt=d)
for i, d in enumerate(DATES_LENIENT): var(f"datetime-lenient-{i:02d}", CFG, diff="lenient-datetime", createdAt=d)
var("datetime-not-string", CFG, createdAt=1714564800)

# $type of the record
var("type-missing", CFG, drop=["$type"])
var("type-not-string", CFG, __type=5)
var("type-other-collection", CFG, __type=MEM)
var("type-lex-prefix", CFG, __type="lex:" + CFG)
var("type-main-fragment", CFG, __type=CFG + "#main")
var("type-two-hashes", CFG, __type=CFG + "#a#b")
add("record-array", CFG, [])
add("record-string", CFG, "config")
add("record-null", CFG, None)

# ---- membership ----
var("membership-minimal", MEM)
var("membership-full", MEM, active=True, invitedBy=DID, customTitle="gardener")
var("membership-inactive", MEM, active=False)
var("membership-active-string", MEM, active="false")
var("membership-active-null", MEM, active=None)
var("membership-active-number", MEM, active=0)
for r in ("owner", "moderator"): var(f"membership-role-{r}", MEM, role=r)
var("membership-role-admin", MEM, role="admin")
var("membership-role-missing", MEM, drop=["role"])
var("membership-community-handle-authority", MEM, community="at://alice.bsky.social/net.atrarium.community.config/3kfwpqaijmk2c")
var("membership-community-bad", MEM, community="at://did:plc:abc/not a collection/x")
var("membership-community-missing", MEM, drop=["community"])
var("membership-joined-missing", MEM, drop=["joinedAt"])
var("membership-invited-by-handle", MEM, invitedBy="alice.bsky.social")
var("membership-invited-by-web", MEM, invitedBy="did:web:example.com")
var("membership-title-50-ascii", MEM, customTitle="a" * 50)
var("membership-title-51-ascii", MEM, customTitle="a" * 51)
var("membership-title-33-combining-99-bytes", MEM, customTitle="e\u0301" * 33)
var("membership-title-34-combining-102-bytes", MEM, customTitle="e\u0301" * 34)
var("membership-title-12-flags", MEM, customTitle="\U0001F1EF\U0001F1F5" * 12)
var("membership-title-13-flags-bytes", MEM, customTitle="\U0001F1EF\U0001F1F5" * 13)
var("membership-title-4-families", MEM, customTitle=FAMILY * 4)
var("membership-title-5-families-bytes", MEM, customTitle=FAMILY * 5)
var("membership-title-11-skin-tones", MEM, customTitle="\U0001F44D\U0001F3FD" * 11)
var("membership-title-50-crlf", MEM, customTitle="\r\n" * 50)
var("membership-title-crlf-plus-26", MEM, customTitle="\r\n" * 25 + "a" * 26)
var("membership-title-26-lfcr", MEM, customTitle="\n\r" * 26)
var("membership-title-11-hangul-lvt", MEM, customTitle="\u1100\u1161\u11a8" * 11)
var("membership-title-kiss-zwj", MEM, customTitle="\U0001F469\u200d\u2764\ufe0f\u200d\U0001F48B\u200d\U0001F468" * 3)
var("membership-title-rainbow-flag", MEM, customTitle="\U0001F3F3\ufe0f\u200d\U0001F308" * 7)
var("membership-title-50-cjk", MEM, customTitle="\u8349" * 33)
var("membership-title-keycaps", MEM, customTitle="1\ufe0f\u20e3" * 14)
var("membership-title-zalgo", MEM, customTitle="Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334")

# ---- moderation.action ----
var("action-hide-post", ACT)
for a in ("unhide_post", "block_user", "unblock_user"):
    var(f"action-{a}", ACT, action=a)
var("action-unknown-action", ACT, action="delete_post")
var("action-user-target", ACT, action="block_user", target={"$type": ACT + "#userTarget", "did": DID})
var("action-user-target-bad-did", ACT, action="block_user", target={"$type": ACT + "#userTarget", "did": "did:plc"})
var("action-user-target-missing-did", ACT, target={"$type": ACT + "#userTarget", "uri": POST_URI})
var("action-post-target-with-cid", ACT, target={"$type": ACT + "#postTarget", "uri": POST_URI, "cid": CID})
var("action-post-target-cid-raw", ACT, target={"$type": ACT + "#postTarget", "uri": POST_URI, "cid": CID_RAW})
var("action-post-target-cidv0", ACT, target={"$type": ACT + "#postTarget", "uri": POST_URI, "cid": CID_V0})
var("action-post-target-cid-bad", ACT, target={"$type": ACT + "#postTarget", "uri": POST_URI, "cid": "not-a-cid"})
var("action-post-target-missing-uri", ACT, target={"$type": ACT + "#postTarget"})
var("action-post-target-bad-uri", ACT, target={"$type": ACT + "#postTarget", "uri": "https://bsky.app/profile/x/post/y"})
var("action-target-lex-prefix", ACT, target={"$type": "lex:" + ACT + "#postTarget", "uri": POST_URI})
var("action-target-fragment-only", ACT, target={"$type": "#postTarget", "uri": POST_URI})
var("action-target-two-hashes", ACT, target={"$type": ACT + "#postTarget#x", "uri": POST_URI})
var("action-target-unknown-type-closed", ACT, target={"$type": "com.example.target", "uri": POST_URI})
var("action-target-main-type-closed", ACT, target={"$type": ACT, "uri": POST_URI})
var("action-target-no-type", ACT, target={"uri": POST_URI})
var("action-target-type-number", ACT, target={"$type": 1, "uri": POST_URI})
var("action-target-string", ACT, target=POST_URI)
var("action-target-null", ACT, target=None)
var("action-target-array", ACT, target=[])
var("action-reason-2000-graphemes", ACT, reason="r" * 2000)
var("action-reason-2001-graphemes", ACT, reason="r" * 2001)
var("action-reason-4001-bytes", ACT, reason="\u00e9" * 2000 + "r")
var("action-community-missing", ACT, drop=["community"])
var("action-created-missing", ACT, drop=["createdAt"])

# ---- app.bsky.feed.generator ----
FACETS = [{"index": {"byteStart": 0, "byteEnd": 5},
           "features": [{"$type": "app.bsky.richtext.facet#mention", "did": DID}]},
          {"index": {"byteStart": 6, "byteEnd": 20},
           "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com"}]},
          {"index": {"byteStart": 21, "byteEnd": 35},
           "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "atr_0123abcd"}]}]
BLOB = {"$type": "blob", "ref": {"$link": CID_RAW}, "mimeType": "image/png", "size": 12345}
var("generator-minimal", GEN)
var("generator-full", GEN, description="@alice see https://example.com #atr_0123abcd", descriptionFacets=FACETS,
    avatar=BLOB, acceptsInteractions=True, labels={"$type": "com.atproto.label.defs#selfLabels",
    "values": [{"val": "nudity"}]}, contentMode="app.bsky.feed.defs#contentModeVideo")
var("generator-did-handle", GEN, did="feeds.example.com")
var("generator-display-24-graphemes", GEN, displayName="d" * 24)
var("generator-display-25-graphemes", GEN, displayName="d" * 25)
var("generator-display-9-families", GEN, displayName=FAMILY * 9)
var("generator-display-10-families-bytes", GEN, displayName=FAMILY * 10)
var("generator-display-missing", GEN, drop=["displayName"])
var("generator-description-301-graphemes", GEN, description="x" * 301)
var("generator-facet-unknown-feature-open-union", GEN,
    descriptionFacets=[{"index": {"byteStart": 0, "byteEnd": 1}, "features": [{"$type": "com.example.facet#sparkle"}]}])
var("generator-facet-bad-link", GEN,
    descriptionFacets=[{"index": {"byteStart": 0, "byteEnd": 1}, "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "not a uri"}]}])
var("generator-facet-negative-start", GEN,
    descriptionFacets=[{"index": {"byteStart": -1, "byteEnd": 1}, "features": []}])
var("generator-facet-missing-index", GEN, descriptionFacets=[{"features": []}])
var("generator-facet-tag-64-graphemes", GEN,
    descriptionFacets=[{"index": {"byteStart": 0, "byteEnd": 1}, "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "t" * 64}]}])
var("generator-facet-tag-65-graphemes", GEN,
    descriptionFacets=[{"index": {"byteStart": 0, "byteEnd": 1}, "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "t" * 65}]}])
var("generator-facet-feature-no-type", GEN,
    descriptionFacets=[{"index": {"byteStart": 0, "byteEnd": 1}, "features": [{"tag": "x"}]}])
var("generator-avatar-legacy", GEN, avatar={"cid": CID_RAW, "mimeType": "image/jpeg"})
var("generator-avatar-extra-key", GEN, avatar=dict(BLOB, alt="x"))
var("generator-avatar-bad-link", GEN, avatar=dict(BLOB, ref={"$link": "nope"}))
var("generator-avatar-size-string", GEN, avatar=dict(BLOB, size="12345"))
var("generator-avatar-no-mime", GEN, avatar={k: v for k, v in BLOB.items() if k != "mimeType"})
var("generator-avatar-wrong-mime-not-checked", GEN, avatar=dict(BLOB, mimeType="video/mp4"))
var("generator-avatar-string", GEN, avatar=CID_RAW)
var("generator-labels-unknown-type-open", GEN, labels={"$type": "com.example.labels", "whatever": 1})
var("generator-labels-11-values", GEN, labels={"$type": "com.atproto.label.defs#selfLabels", "values": [{"val": "x"}] * 11})
var("generator-labels-val-129-bytes", GEN, labels={"$type": "com.atproto.label.defs#selfLabels", "values": [{"val": "v" * 129}]})
var("generator-labels-no-values", GEN, labels={"$type": "com.atproto.label.defs#selfLabels"})
var("generator-accepts-string", GEN, acceptsInteractions="yes")
var("generator-content-mode-any-string", GEN, contentMode="anything goes")

# ---- kitchen: formats ----
def fmt(prop, good, bad, lenient=()):
    for i, v in enumerate(good): var(f"{prop}-ok-{i:02d}", KIT, **{prop: v})
    for i, v in enumerate(bad): var(f"{prop}-bad-{i:02d}", KIT, **{prop: v})
fmt("fDid", ["did:plc:ewvi7nxzyoun6zhxrhs64oiz", "did:web:example.com", "did:web:localhost%3A8080",
             "did:example:a:b:c", "did:x:" + "a" * 2042],
    ["did:PLC:abc", "did:plc:", "did:plc:abc:", "did:plc:abc%", "did:plc:a b", "did:plc:abc#frag",
     "did:1:abc", "did:x:" + "a" * 2043, "DID:plc:abc", "did:plc", "plc:abc", "did:plc:abc/x", ""])
fmt("fHandle", ["alice.bsky.social", "xn--ls8h.test", "a.co", "ALICE.COM", "localhost.local",
                "a" * 63 + ".com", "a-b.c-d.example"],
    ["alice", "alice.bsky.social.", ".alice.com", "-alice.com", "alice-.com", "alice.123", "al_ice.com",
     "a" * 64 + ".com", ("a" * 60 + ".") * 4 + "com", "alice..com", "al ice.com", "did:plc:abc", ""])
fmt("fAtIdentifier", ["did:plc:abc", "alice.bsky.social"], ["did:plc:", "alice", "", "@alice.bsky.social"])
fmt("fNsid", ["app.bsky.feed.post", "com.example.fooBar", "com.ex-ample.foo", "a.b.c", "net.atrarium.community.config"],
    ["com.example", "com.example.foo-bar", "com.example.3foo", "1com.example.foo", "com..foo",
     "com.example.*", "com.example.foo.", "a.b", "com.-x.foo", "com.example.fo_o"])
fmt("fAtUri", [f"at://{DID}", f"at://{DID}/app.bsky.feed.post", POST_URI,
               "at://alice.bsky.social/app.bsky.feed.post/3kabc", POST_URI + "#/text",
               POST_URI + "#/a%20b", POST_URI + "#/%E2%82%AC", f"at://{DID}/app.bsky.actor.profile/self"],
    [f"at://{DID}/", POST_URI + "/", POST_URI + "?x=1", f"at://{DID}//x", f"at://{DID}/not_nsid/x",
     f"at://{DID}/app.bsky.feed.post/.", POST_URI + "/extra", "https://bsky.app", POST_URI + " ",
     POST_URI + "#text", POST_URI + "#/a%zz", POST_URI + "#/%C0%80", "at://", "at://did:plc:",
     f"at://{DID}/app.bsky.feed.post/caf\u00e9", "AT://" + DID, "at://alice/app.bsky.feed.post/x", ""])
fmt("fCid", [CID, CID_RAW, CID_V0, CID_B58, CID_B36, CID + "=="],
    ["B" + CID[1:].upper(), CID[:-4], "z" + CID_V0, "f" + (CBOR_V1.hex()), CID_V0[:-1] + "0",
     "b" + "a" * 130, "", "bafy", CID + "a", CID_V0 + "1"])
fmt("fLanguage", ["en", "en-US", "zh-Hant-TW", "i-klingon", "x-private", "EN", "english", "de-CH-1996", "sgn-BE-FR"],
    ["en_US", "e", "123", "en-", "-en", "en--US", "toolonglanguage"])
fmt("fTid", ["3kfwpqaijmk2c", "2222222222222", "jzzzzzzzzzzzz"],
    ["3kfwpqaijmk2", "kkfwpqaijmk2c", "3KFWPQAIJMK2C", "3kfwpqaijmk21", "3kfwpqaijmk2cc", ""])
fmt("fRecordKey", ["self", "3kfwpqaijmk2c", "a:b", "~", "a.b", "_", "r" * 512],
    [".", "..", "a/b", "a b", "r" * 513, "", "caf\u00e9", "a#b"])
fmt("fUri", ["https://example.com", "mailto:me@example.com", POST_URI, "x:y", "urn:isbn:0451450523",
             "https://\u4f8b\u3048.jp/path", "https://example.com/a?b=c#d"],
    ["https:/x", "https://", "no-scheme", "https://ex ample.com", "ht-tp://x", "https://exa\u00a0mple",
     ":nothing", "", "https://x\u3000y"])
fmt("fDatetime", ["2024-05-01T12:00:00Z"], ["2024-05-01T12:00:00z"], )

# ---- kitchen: string rules ----
fmt("sConst", ["fixed"], ["Fixed", "fixed ", ""])
fmt("sEnum", ["a", "c"], ["d", "A", ""])
fmt("sKnown", ["x", "com.example.lexicon.defs#tokenA", "anything else"], [])
var("sDefault-missing-uses-default", KIT)
var("sDefault-too-long", KIT, sDefault="abc")
fmt("sBytes", ["ab", "\u00e9", "\u20ac\u20ac", "\U0001F600", "abcdef"], ["a", "", "\u20ac\u20aca", "abcdefg"])
fmt("sGraphemes", ["ab", "abc", "e\u0301a", FAMILY + "a", "\U0001F1EF\U0001F1F5\U0001F1FA", "\r\na"],
    ["a", "abcd", "e\u0301", FAMILY, "\U0001F1EF\U0001F1F5" * 4, "\r\n", "\n\r\n\r"])
fmt("sBoth", ["\u00e9\u00e9", FAMILY[:7] + "x"], ["\U0001F44D\U0001F3FD\U0001F44D\U0001F3FD", "\u00e9\u00e9\u00e9"])
LBL = lambda t: {"x": 1, "y": 2, "label": t}
# grapheme rule GB9c (Indic conjuncts are one cluster), across scripts and with extends between
for name, t in [("devanagari-ksha", "\u0915\u094d\u0937"), ("bengali-ksa", "\u0995\u09cd\u09b7"),
                ("gujarati", "\u0a95\u0acd\u0ab7"), ("oriya", "\u0b15\u0b4d\u0b37"),
                ("telugu", "\u0c15\u0c4d\u0c37"), ("malayalam", "\u0d15\u0d4d\u0d37"),
                ("devanagari-three", "\u0938\u094d\u0924\u094d\u0930"),
                ("nukta-between", "\u0915\u093c\u094d\u0937"), ("zwj-after-virama", "\u0915\u094d\u200d\u0937"),
                ("double-virama", "\u0915\u094d\u094d\u0937"), ("mixed-scripts", "\u0915\u094d\u0995"),
                ("myanmar", "\u1000\u1039\u1001"), ("khmer", "\u1780\u17d2\u1781")]:
    var(f"gb9c-{name}", KIT, localRef=LBL(t))
for name, t in [("vowel-sign-between", "\u0915\u093e\u094d\u0937"), ("no-virama", "\u0915\u0937"),
                ("virama-then-latin", "\u0915\u094d" + "a"), ("space-between", "\u0915\u094d \u0937"),
                ("virama-first", "\u094d\u0937")]:
    var(f"gb9c-not-{name}", KIT, localRef=LBL(t))
var("grapheme-virama-alone", KIT, localRef={"x": 1, "y": 2, "label": "\u0915\u094d"})
var("grapheme-zwj-emoji-one", KIT, localRef={"x": 1, "y": 2, "label": FAMILY})
var("grapheme-two-letters", KIT, localRef={"x": 1, "y": 2, "label": "ab"})

# ---- kitchen: integers, booleans, nullable, required ----
fmt("iRange", [-5, 0, 10, 3.0, -0.0], [-6, 11, 2.5, "3", True, 100.0, None])
fmt("iEnum", [1, 3], [4, 0, "1"])
fmt("iConst", [7], [8, "7"])
var("iDefault-missing-uses-default", KIT)
var("iDefault-below-minimum", KIT, iDefault=4)
fmt("bConst", [True], [False, "true", 1])
fmt("bDefault", [True, False], ["false", None])
var("maybe-null", KIT, maybe=None)
var("maybe-too-long", KIT, maybe="abcd")
var("maybeReq-missing", KIT, drop=["maybeReq"])
var("maybeReq-number", KIT, maybeReq=5)
var("maybeReq-string", KIT, maybeReq="5")
var("req-null-not-nullable", KIT, req=None)
var("req-missing", KIT, drop=["req"])

# ---- kitchen: arrays, refs, unions ----
fmt("arr", [[1], [1, 2, 3]], [[], [1, 2, 3, 4], [1, "x"], "x", {"0": 1}, [1, None]])
fmt("arrRefs", [[{"x": 1, "y": 2}], []], [[{"x": 1}], [{"x": 1, "y": 2}, 5]])
fmt("localRef", [{"x": 1, "y": 2, "label": "q"}, {"x": 1, "y": 2, "extra": True}],
    [{"x": 1}, {"x": "1", "y": 2}, {"x": 1, "y": 2, "label": "qq"}, "point"])
fmt("otherRef", [{"left": DID, "right": False}], [{"left": "me", "right": False}, {"left": DID}])
fmt("otherMain", [{"name": "abcdefgh"}], [{"name": "abcdefghi"}, {}])
PT = KIT + "#point"
fmt("openUnion", [{"$type": PT, "x": 1, "y": 2}, {"$type": "com.example.lexicon.defs#pair", "left": DID, "right": True},
                  {"$type": "com.example.unknown", "anything": [1, 2]}, {"$type": "lex:" + PT, "x": 0, "y": 0}],
    [{"$type": PT, "x": 1}, {"x": 1, "y": 2}, {"$type": "com.example.lexicon.defs#pair", "left": DID},
     {"$type": "#point", "x": 1, "y": 2}, []])
fmt("closedUnion", [{"$type": "com.example.lexicon.defs", "name": "n"}, {"$type": "com.example.lexicon.defs#main", "name": "n"},
                    {"$type": "lex:com.example.lexicon.defs", "name": "n"}, {"$type": PT, "x": 1, "y": 1}],
    [{"$type": "com.example.lexicon.defs#pair", "left": DID, "right": True}, {"$type": "com.example.other"},
     {"$type": "com.example.lexicon.defs", "name": "too long name"}, {"$type": ""}])

# ---- kitchen: unknown, blob, bytes, cid-link ----
fmt("anything", [{}, {"a": [1, {"b": None}]}, [], {"$type": "com.example.x"}, [[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]],
    ["str", 0, 1, True, False, None])
fmt("pic", [BLOB, {"cid": CID_V0, "mimeType": "image/png"}, dict(BLOB, size=-1)],
    [dict(BLOB, **{"$type": "blob2"}), {"ref": {"$link": CID}, "mimeType": "image/png", "size": 1}, {}, "blob"])
fmt("raw", [{"$bytes": "AQ"}, {"$bytes": "AQID"}, {"$bytes": "AQIDBA=="}, {"$bytes": "AQIDBA"}],
    [{"$bytes": ""}, {"$bytes": "AQIDBAU="}, {"$bytes": "!!!!"}, {"$bytes": "AQID", "x": 1}, "AQID", {"$bytes": 5}])
fmt("link", [{"$link": CID}, {"$link": CID_RAW}, {"$link": CID_V0}],
    [{"$link": "nope"}, CID, {"$link": CID, "x": 1}, {"$link": ""}, {}])

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus.jsonl")
with open(path, "w", encoding="utf-8") as f:
    for e in out:
        f.write(json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n")
    # Lines JSON libraries cannot produce from a dict: duplicate keys and out-of-range numbers.
    base_kit = json.dumps(base(KIT), separators=(",", ":"))[:-1]
    f.write('{"id":"duplicate-key-last-wins","nsid":"%s","record":%s,"iConst":8,"iConst":7}}\n' % (KIT, base_kit))
    f.write('{"id":"duplicate-key-last-bad","nsid":"%s","record":%s,"iConst":7,"iConst":8}}\n' % (KIT, base_kit))
    f.write('{"id":"integer-overflow-infinity","nsid":"%s","record":%s,"iRange":1e400}}\n' % (KIT, base_kit))
    f.write('{"id":"integer-exponent","nsid":"%s","record":%s,"iRange":1e1}}\n' % (KIT, base_kit))
    f.write('{"id":"integer-huge","nsid":"%s","record":%s,"iEnum":9007199254740993}}\n' % (KIT, base_kit))
print(f"{len(out) + 5} records -> {path}")
