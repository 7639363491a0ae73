/*
** cmd/cmd_pds.c — the commands that write records into the user's own
** repository through their PDS (pds/pds.h):
**
**   meadow community create --name N [--description D] [--stage S]
**   meadow community join|leave <config-uri | hashtag> [--owner H]
**   meadow moderate hide|unhide <post-uri> --community C [--owner H] [--reason R]
**   meadow moderate block|unblock <did | handle> --community C [--owner H] [--reason R]
**   meadow feed publish <community> --display-name N [--description D]
**
** Every record is validated with lexicon/ (and Meadow's application rules)
** before it is written; the PDS's own `validate` is left unset. A community
** is named by its config AT-URI, or by its hashtag (#atr_<id>, atr_<id> or
** <id>) looked up among the configs of --owner (default: yourself) with
** listRecords; the index is not consulted (it may not exist where the CLI
** runs). The app password comes from app_password_file or
** MEADOW_APP_PASSWORD, never from the command line.
**
** Output: the AT-URI(s) written, on stdout. Exit 0 on success, 1 when the
** operation failed (the message says why), 2 on a usage error.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <errno.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/commands.h"
#include "common/atname.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "common/mem.h"
#include "firehose/sources.h"
#include "pds/pds.h"
#include "index/index.h"
#include "lexicon/lexicon.h"
#include "processor/processor.h"
#include "queue/queue.h"
#include "common/banned.h"

#define NSID_CONFIG     "net.atrarium.community.config"
#define NSID_MEMBERSHIP "net.atrarium.community.membership"
#define NSID_ACTION     "net.atrarium.moderation.action"
#define NSID_GENERATOR  "app.bsky.feed.generator"

typedef struct cli {
    const mdw_config *cfg;
    mdw_pds *pds;
    mdw_lexicon *lex;
    mdw_clock *clock;
} cli;

/* ---- arguments ---- */

/*
** Every option of these commands has one index here; a spec lists the ones
** it accepts at their index, so a value can only land in its own slot
** (mdw_cmd_args.opt[O_X]), and any other option is an error.
*/
enum { O_NAME, O_DISPLAY_NAME, O_DESCRIPTION, O_STAGE, O_COMMUNITY, O_OWNER, O_REASON, O_CID };

#define OPT_OWNER                                                                                  \
    [O_OWNER] = {"owner", 0, "HANDLE|DID", "the community's owner, when it is not you"}
#define OPT_COMMUNITY                                                                              \
    [O_COMMUNITY] = {"community", 0, "C", "the community: its config AT-URI or its hashtag"}
#define OPT_REASON [O_REASON] = {"reason", 0, "TEXT", "why (kept in the record)"}

static const mdw_cmd_spec create_spec = {
    .path = "community create",
    .summary = "create a community: a config record with a new hashtag",
    .synopsis = "--name NAME [--description TEXT] [--stage theme|community|graduated]",
    .opts = {[O_NAME] = {"name", 0, "NAME", "the community's name (required)"},
             [O_DESCRIPTION] = {"description", 0, "TEXT", "a description"},
             [O_STAGE] = {"stage", 0, "STAGE", "theme (default), community or graduated"}},
};
static const mdw_cmd_spec join_spec = {
    .path = "community join",
    .summary = "join a community (a membership record)",
    .synopsis = "<config-uri | hashtag> [--owner HANDLE|DID]",
    .opts = {OPT_OWNER},
    .min_pos = 1,
    .max_pos = 1,
};
static const mdw_cmd_spec leave_spec = {
    .path = "community leave",
    .summary = "leave a community (deletes your membership records)",
    .synopsis = "<config-uri | hashtag> [--owner HANDLE|DID]",
    .opts = {OPT_OWNER},
    .min_pos = 1,
    .max_pos = 1,
};
const mdw_cmd_spec mdw_cmd_community_spec = {
    .path = "community",
    .summary = "community create|join|leave",
    .subs = (const mdw_cmd_spec *const[]){&create_spec, &join_spec, &leave_spec, NULL},
    .run = mdw_cmd_community,
};

#define POST_SPEC(verb, what)                                                                      \
    {                                                                                              \
        .path = "moderate " verb, .summary = what,                                                 \
        .synopsis = "<post-uri> --community C [--owner HANDLE|DID] [--reason TEXT] [--cid CID]",   \
        .opts = {OPT_COMMUNITY, OPT_OWNER, OPT_REASON,                                             \
                 [O_CID] = {"cid", 0, "CID", "the post version acted on (default: read it)"}},     \
        .min_pos = 1, .max_pos = 1,                                                                \
    }
#define USER_SPEC(verb, what)                                                                      \
    {                                                                                              \
        .path = "moderate " verb, .summary = what,                                                 \
        .synopsis = "<did | handle> --community C [--owner HANDLE|DID] [--reason TEXT]",           \
        .opts = {OPT_COMMUNITY, OPT_OWNER, OPT_REASON}, .min_pos = 1, .max_pos = 1,                \
    }
static const mdw_cmd_spec hide_spec = POST_SPEC("hide", "hide a post from the community's feed");
static const mdw_cmd_spec unhide_spec = POST_SPEC("unhide", "undo hide");
static const mdw_cmd_spec block_spec = USER_SPEC("block", "keep a user's posts out of the feed");
static const mdw_cmd_spec unblock_spec = USER_SPEC("unblock", "undo block");
const mdw_cmd_spec mdw_cmd_moderate_spec = {
    .path = "moderate",
    .summary = "moderate hide|unhide|block|unblock (C: config AT-URI or hashtag)",
    .subs =
        (const mdw_cmd_spec *const[]){&hide_spec, &unhide_spec, &block_spec, &unblock_spec, NULL},
    .run = mdw_cmd_moderate,
};

static const mdw_cmd_spec publish_spec = {
    .path = "feed publish",
    .summary = "publish (or update) the community's feed generator record; owner only",
    .synopsis = "<config-uri | hashtag> --display-name NAME [--description TEXT]",
    .opts = {[O_DISPLAY_NAME] = {"display-name", 0, "NAME", "the feed's name (required)"},
             [O_DESCRIPTION] = {"description", 0, "TEXT", "a description"}},
    .min_pos = 1,
    .max_pos = 1,
};
const mdw_cmd_spec mdw_cmd_feed_spec = {
    .path = "feed",
    .summary = "feed publish COMMUNITY --display-name ...",
    .subs = (const mdw_cmd_spec *const[]){&publish_spec, NULL},
    .run = mdw_cmd_feed,
};

enum { O_FROM, O_RELAY, O_EVENTS };
const mdw_cmd_spec mdw_cmd_rebuild_spec = {
    .path = "rebuild",
    .summary = "rebuild the index from PDS records (into an empty data directory)",
    .synopsis = "[--from URL] [--relay] [--events]",
    .opts = {[O_FROM] = {"from", 0, "URL", "the PDS (or relay) to walk; default pds_url"},
             [O_RELAY] = {"relay", 0, NULL, "URL is a relay: listReposByCollection, then each PDS"},
             [O_EVENTS] = {"events", 0, NULL,
                           "print the records as Jetstream events (JSON lines) instead of "
                           "building the index"}},
    .run = mdw_cmd_rebuild,
};

/* ---- the client ---- */

static int cli_open(cli *c, const mdw_config *cfg)
{
    memset(c, 0, sizeof *c);
    c->cfg = cfg;
    c->clock = mdw_clock_real();
    int rc = mdw_lexicon_load_builtin(&c->lex);
    if (rc) {
        fprintf(stderr, "meadow: cannot load the lexicon documents: %s\n", mdw_strerror(rc));
        return rc;
    }
    char *session =
        cfg->session_file[0] ? xstrdup(cfg->session_file) : xasprintf("%s/session.json", cfg->data);
    mdw_pds_opts o;
    mdw_pds_opts_init(&o);
    o.pds_url = cfg->pds_url;
    o.plc_url = cfg->plc_url;
    o.identifier = cfg->identifier;
    o.app_password_file = cfg->app_password_file;
    o.app_password = getenv("MEADOW_APP_PASSWORD");
    o.session_file = session;
    o.timeout_ms = (long)cfg->pds_timeout_s * 1000;
    o.max_retries = (int)cfg->pds_retries;
    o.clock = c->clock;
    rc = mdw_pds_open(&c->pds, &o);
    free(session);
    if (rc)
        fprintf(stderr, "meadow: cannot start the PDS client (pds_url \"%s\"): %s\n", cfg->pds_url,
                mdw_strerror(rc));
    return rc;
}

static void cli_close(cli *c)
{
    mdw_pds_close(c->pds);
    mdw_lexicon_free(c->lex);
}

/* Prints the client's last error and returns the exit code 1. */
static int fail(cli *c, const char *what)
{
    const char *e = mdw_pds_error(c->pds);
    fprintf(stderr, "meadow: %s: %s\n", what, e[0] ? e : "failed");
    return 1;
}

static int login(cli *c)
{
    if (mdw_pds_login(c->pds) != 0)
        return fail(c, "cannot log in");
    return 0;
}

static void now_text(cli *c, char out[40])
{
    mdw_time_format(mdw_clock_now_us(c->clock), out, 40);
}

/* Lexicon + application rules; prints the reason and returns 1 when invalid. */
static int validate(cli *c, const char *nsid, const cJSON *rec)
{
    char err[512] = "";
    int rc = mdw_lexicon_validate_record(c->lex, nsid, rec, err, sizeof err);
    if (rc == 0)
        rc = mdw_lexicon_app_check(nsid, rec, err, sizeof err);
    if (rc) {
        fprintf(stderr, "meadow: refusing to write an invalid %s record: %s\n", nsid,
                err[0] ? err : mdw_strerror(rc));
        return 1;
    }
    return 0;
}

/* Writes a new record under a client-chosen TID (so a retried create cannot duplicate). */
static int create(cli *c, const char *nsid, const cJSON *rec, char **uri)
{
    char rkey[14];
    mdw_pds_tid(mdw_clock_now_us(c->clock), rkey);
    if (mdw_pds_create_record(c->pds, nsid, rkey, rec, uri, NULL) != 0)
        return fail(c, "cannot write the record");
    return 0;
}

/* ---- communities ---- */

/* "#atr_0123abcd", "atr_0123abcd" or "0123abcd" -> "0123abcd"; 0 when valid. */
static int parse_hashtag(const char *s, char id[9])
{
    if (s[0] == '#')
        s++;
    if (!strncmp(s, "atr_", 4))
        s += 4;
    uint8_t tag[4];
    if (mdw_tag_id_parse(s, strlen(s), tag))
        return MDW_EMALFORMED;
    memcpy(id, s, 8);
    id[8] = '\0';
    return 0;
}

typedef struct community {
    char *uri, *owner, *id; /* config AT-URI (DID authority), owner DID, hashtag id */
    cJSON *value;           /* the config record, NULL when unread */
} community;

static void community_release(community *m)
{
    free(m->uri);
    free(m->owner);
    free(m->id);
    cJSON_Delete(m->value);
    memset(m, 0, sizeof *m);
}

/* The PDS holding did's repository: ours for ourselves, else resolved. */
static int endpoint_of(cli *c, const char *did, char **base)
{
    const char *me = mdw_pds_did(c->pds);
    if (me && !strcmp(me, did)) {
        *base = xstrdup(c->cfg->pds_url);
        return 0;
    }
    if (mdw_pds_resolve_endpoint(c->pds, did, base) != 0)
        return fail(c, "cannot find the PDS of the community's owner");
    return 0;
}

typedef struct find_ctx {
    const char *hashtag; /* "#atr_<id>" */
    char *best_uri, *best_created;
    cJSON *best;
    int used; /* for create: the hashtag is taken */
} find_ctx;

static int find_config(void *ctx, const char *uri, const char *cid, const cJSON *value)
{
    find_ctx *f = ctx;
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(value, "hashtag");
    if (!cJSON_IsString(h) || strcmp(h->valuestring, f->hashtag) != 0)
        return 0;
    f->used = 1;
    const cJSON *ca = cJSON_GetObjectItemCaseSensitive(value, "createdAt");
    const char *created = cJSON_IsString(ca) ? ca->valuestring : "";
    /* Several configs with one hashtag: the lowest (createdAt, URI) wins (DESIGN). */
    int better = !f->best_uri || strcmp(created, f->best_created) < 0 ||
                 (!strcmp(created, f->best_created) && strcmp(uri, f->best_uri) < 0);
    if (better) {
        free(f->best_uri);
        free(f->best_created);
        cJSON_Delete(f->best);
        f->best_uri = xstrdup(uri);
        f->best_created = xstrdup(created);
        f->best = cJSON_Duplicate(value, 1);
    }
    return 0;
}

/*
** Names a community from a config AT-URI or a hashtag (owned by --owner or by
** the logged-in account). need_record: the config must exist.
*/
static int resolve_community(cli *c, const char *arg, const char *owner_arg, int need_record,
                             community *out)
{
    memset(out, 0, sizeof *out);
    int rc;
    if (!strncmp(arg, "at://", 5)) {
        char *auth = NULL, *coll = NULL, *rkey = NULL;
        if (mdw_pds_parse_at_uri(arg, &auth, &coll, &rkey) != 0 || strcmp(coll, NSID_CONFIG)) {
            fprintf(stderr, "meadow: %s is not the AT-URI of a %s record\n", arg, NSID_CONFIG);
            free(auth), free(coll), free(rkey);
            return 2;
        }
        if (mdw_pds_resolve_actor(c->pds, auth, &out->owner) != 0) {
            free(auth), free(coll), free(rkey);
            return fail(c, "cannot resolve the community's owner");
        }
        out->uri = xasprintf("at://%s/%s/%s", out->owner, NSID_CONFIG, rkey);
        char *base = NULL;
        rc = endpoint_of(c, out->owner, &base);
        cJSON *res = NULL;
        if (rc == 0 && mdw_pds_get_record(c->pds, base, out->owner, NSID_CONFIG, rkey, &res) == 0) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(res, "value");
            const cJSON *h = cJSON_GetObjectItemCaseSensitive(v, "hashtag");
            char id[9];
            if (cJSON_IsString(h) && parse_hashtag(h->valuestring, id) == 0) {
                out->id = xstrdup(id);
                out->value = cJSON_Duplicate(v, 1);
            }
        }
        cJSON_Delete(res);
        free(base);
        free(auth), free(coll), free(rkey);
        if (rc)
            return rc;
        if (need_record && !out->value) {
            fprintf(stderr, "meadow: no community config at %s: %s\n", out->uri,
                    mdw_pds_error(c->pds)[0] ? mdw_pds_error(c->pds) : "no valid hashtag");
            return 1;
        }
        return 0;
    }
    char id[9];
    if (parse_hashtag(arg, id) != 0) {
        fprintf(stderr,
                "meadow: \"%s\" is neither a config AT-URI nor a hashtag (#atr_ + 8 lowercase hex "
                "digits)\n",
                arg);
        return 2;
    }
    if (owner_arg) {
        if (mdw_pds_resolve_actor(c->pds, owner_arg, &out->owner) != 0)
            return fail(c, "cannot resolve --owner");
    } else {
        if ((rc = login(c)) != 0)
            return rc;
        out->owner = xstrdup(mdw_pds_did(c->pds));
    }
    char *base = NULL;
    if ((rc = endpoint_of(c, out->owner, &base)) != 0)
        return rc;
    char tag[16];
    snprintf(tag, sizeof tag, "#atr_%s", id);
    find_ctx f = {.hashtag = tag};
    rc = mdw_pds_list_records(c->pds, base, out->owner, NSID_CONFIG, find_config, &f);
    free(base);
    free(f.best_created);
    if (rc) {
        free(f.best_uri);
        cJSON_Delete(f.best);
        return fail(c, "cannot list the owner's communities");
    }
    if (!f.best_uri) {
        fprintf(stderr,
                "meadow: %s owns no community %s: give the community's config AT-URI, or "
                "--owner <handle or DID> of its owner\n",
                out->owner, tag);
        return 1;
    }
    out->uri = f.best_uri;
    out->value = f.best;
    out->id = xstrdup(id);
    return 0;
}

static int community_create(cli *c, const mdw_cmd_args *a)
{
    int rc = login(c);
    if (rc)
        return rc;
    const char *me = mdw_pds_did(c->pds);
    /* A random hashtag from the kernel's CSPRNG, not one this owner already uses. */
    char id[9], tag[16];
    for (int tries = 0;; tries++) {
        uint32_t r;
        if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) {
            fprintf(stderr, "meadow: no random bytes from the kernel\n");
            return 1;
        }
        snprintf(id, sizeof id, "%08x", r);
        snprintf(tag, sizeof tag, "#atr_%s", id);
        find_ctx f = {.hashtag = tag};
        rc = mdw_pds_list_records(c->pds, NULL, me, NSID_CONFIG, find_config, &f);
        free(f.best_uri);
        free(f.best_created);
        cJSON_Delete(f.best);
        if (rc)
            return fail(c, "cannot list your communities");
        if (!f.used)
            break;
        if (tries == 8) {
            fprintf(stderr, "meadow: no unused hashtag found\n");
            return 1;
        }
    }
    char now[40];
    now_text(c, now);
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "$type", NSID_CONFIG);
    cJSON_AddStringToObject(rec, "name", a->opt[O_NAME]);
    if (a->opt[O_DESCRIPTION])
        cJSON_AddStringToObject(rec, "description", a->opt[O_DESCRIPTION]);
    cJSON_AddStringToObject(rec, "hashtag", tag);
    cJSON_AddStringToObject(rec, "stage", a->opt[O_STAGE] ? a->opt[O_STAGE] : "theme");
    cJSON_AddStringToObject(rec, "createdAt", now);
    char *uri = NULL;
    rc = validate(c, NSID_CONFIG, rec);
    if (rc == 0)
        rc = create(c, NSID_CONFIG, rec, &uri);
    cJSON_Delete(rec);
    if (rc == 0) {
        printf("hashtag: %s\nconfig: %s\nfeed: at://%s/%s/%s\n", tag, uri, me, NSID_GENERATOR, id);
        mdw_info("pds", "community created", "uri=%s hashtag=%s", uri, tag);
    }
    free(uri);
    return rc;
}

typedef struct member_ctx {
    const char *community; /* config AT-URI */
    char **uris;           /* own membership records naming it */
    size_t n, active;
} member_ctx;

static int find_membership(void *ctx, const char *uri, const char *cid, const cJSON *value)
{
    member_ctx *m = ctx;
    const cJSON *com = cJSON_GetObjectItemCaseSensitive(value, "community");
    if (!cJSON_IsString(com) || strcmp(com->valuestring, m->community) != 0)
        return 0;
    m->uris = xrealloc(m->uris, (m->n + 1) * sizeof *m->uris);
    m->uris[m->n++] = xstrdup(uri);
    if (!cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(value, "active")))
        m->active++;
    return 0;
}

static void member_release(member_ctx *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->uris[i]);
    free(m->uris);
}

static int community_join_leave(cli *c, int join, const mdw_cmd_args *a)
{
    int rc = login(c);
    if (rc)
        return rc;
    community m;
    /* Leaving works even when the config is gone; joining needs it. */
    if ((rc = resolve_community(c, a->pos[0], a->opt[O_OWNER], join, &m)) != 0) {
        community_release(&m);
        return rc;
    }
    const char *me = mdw_pds_did(c->pds);
    member_ctx mc = {.community = m.uri};
    if (mdw_pds_list_records(c->pds, NULL, me, NSID_MEMBERSHIP, find_membership, &mc) != 0) {
        rc = fail(c, "cannot list your memberships");
        goto out;
    }
    if (join) {
        if (!strcmp(m.owner, me))
            fprintf(stderr,
                    "meadow: note: you own %s; an owner is a member without a "
                    "membership record\n",
                    m.uri);
        if (mc.active) {
            fprintf(stderr, "meadow: already a member of %s\n", m.uri);
            for (size_t i = 0; i < mc.n; i++)
                printf("%s\n", mc.uris[i]);
            goto out;
        }
        char now[40];
        now_text(c, now);
        cJSON *rec = cJSON_CreateObject();
        cJSON_AddStringToObject(rec, "$type", NSID_MEMBERSHIP);
        cJSON_AddStringToObject(rec, "community", m.uri);
        cJSON_AddStringToObject(rec, "role", "member");
        cJSON_AddStringToObject(rec, "joinedAt", now);
        cJSON_AddBoolToObject(rec, "active", 1);
        char *uri = NULL;
        rc = validate(c, NSID_MEMBERSHIP, rec);
        if (rc == 0)
            rc = create(c, NSID_MEMBERSHIP, rec, &uri);
        cJSON_Delete(rec);
        if (rc == 0)
            printf("%s\n", uri);
        free(uri);
    } else {
        if (mc.n == 0)
            fprintf(stderr, "meadow: you have no membership record for %s\n", m.uri);
        for (size_t i = 0; i < mc.n && rc == 0; i++) {
            char *rkey = NULL;
            if (mdw_pds_parse_at_uri(mc.uris[i], NULL, NULL, &rkey) == 0 &&
                mdw_pds_delete_record(c->pds, NSID_MEMBERSHIP, rkey) == 0)
                printf("deleted %s\n", mc.uris[i]);
            else
                rc = fail(c, "cannot delete a membership record");
            free(rkey);
        }
    }
out:
    member_release(&mc);
    community_release(&m);
    return rc;
}

int mdw_cmd_community(const mdw_config *cfg, int argc, char **argv)
{
    mdw_cmd_args a;
    if (mdw_cmd_parse(&mdw_cmd_community_spec, argc, argv, &a))
        return a.status;
    int create_ = a.spec == &create_spec, join = a.spec == &join_spec;
    if (create_ && !a.opt[O_NAME])
        return mdw_cmd_usage_error(a.spec, "--name is required");
    int rc;
    cli c;
    if (cli_open(&c, cfg) != 0) {
        cli_close(&c);
        return 1;
    }
    rc = create_ ? community_create(&c, &a) : community_join_leave(&c, join, &a);
    cli_close(&c);
    return rc;
}

/* ---- moderation ---- */

static int is_moderator(const cJSON *config, const char *did)
{
    const cJSON *mods = cJSON_GetObjectItemCaseSensitive(config, "moderators");
    const cJSON *m;
    cJSON_ArrayForEach(m, mods) if (cJSON_IsString(m) && !strcmp(m->valuestring, did)) return 1;
    return 0;
}

int mdw_cmd_moderate(const mdw_config *cfg, int argc, char **argv)
{
    mdw_cmd_args a;
    if (mdw_cmd_parse(&mdw_cmd_moderate_spec, argc, argv, &a))
        return a.status;
    const char *action = a.spec == &hide_spec     ? "hide_post"
                         : a.spec == &unhide_spec ? "unhide_post"
                         : a.spec == &block_spec  ? "block_user"
                                                  : "unblock_user";
    int post = a.spec == &hide_spec || a.spec == &unhide_spec;
    if (!a.opt[O_COMMUNITY])
        return mdw_cmd_usage_error(a.spec, "--community is required");
    int rc;
    cli c;
    if (cli_open(&c, cfg) != 0) {
        cli_close(&c);
        return 1;
    }
    community m = {0};
    char *target_did = NULL, *post_cid = NULL, *uri = NULL;
    if ((rc = login(&c)) != 0 ||
        (rc = resolve_community(&c, a.opt[O_COMMUNITY], a.opt[O_OWNER], 1, &m)) != 0)
        goto out;
    const char *me = mdw_pds_did(c.pds);
    if (strcmp(me, m.owner) != 0 && !is_moderator(m.value, me))
        fprintf(stderr,
                "meadow: warning: you are neither the owner nor a moderator of %s: Meadow will "
                "ignore this action\n",
                m.uri);
    cJSON *target = cJSON_CreateObject();
    if (post) {
        char *auth = NULL, *coll = NULL, *rkey = NULL, *author = NULL, *base = NULL, *turi = NULL;
        cJSON *res = NULL;
        if (mdw_pds_parse_at_uri(a.pos[0], &auth, &coll, &rkey) != 0 ||
            strcmp(coll, "app.bsky.feed.post") != 0) {
            fprintf(stderr, "meadow: %s is not the AT-URI of an app.bsky.feed.post record\n",
                    a.pos[0]);
            rc = 2;
        } else if (mdw_pds_resolve_actor(c.pds, auth, &author) != 0) {
            rc = fail(&c, "cannot resolve the post's author");
        } else {
            /* The index knows posts by DID URIs: a handle in the URI is replaced. */
            turi = xasprintf("at://%s/%s/%s", author, coll, rkey);
            /* The CID pins the version acted on; a post already gone is hidden by URI. */
            if (a.opt[O_CID])
                post_cid = xstrdup(a.opt[O_CID]);
            else if (mdw_pds_resolve_endpoint(c.pds, author, &base) == 0 &&
                     mdw_pds_get_record(c.pds, base, author, coll, rkey, &res) == 0) {
                const cJSON *cid = cJSON_GetObjectItemCaseSensitive(res, "cid");
                if (cJSON_IsString(cid))
                    post_cid = xstrdup(cid->valuestring);
            } else {
                fprintf(stderr,
                        "meadow: note: the post could not be read (%s); acting on its URI\n",
                        mdw_pds_error(c.pds));
            }
            cJSON_AddStringToObject(target, "$type", NSID_ACTION "#postTarget");
            cJSON_AddStringToObject(target, "uri", turi);
            if (post_cid)
                cJSON_AddStringToObject(target, "cid", post_cid);
        }
        cJSON_Delete(res);
        free(author), free(base), free(auth), free(coll), free(rkey), free(turi);
        if (rc) {
            cJSON_Delete(target);
            goto out;
        }
    } else {
        if (mdw_pds_resolve_actor(c.pds, a.pos[0], &target_did) != 0) {
            cJSON_Delete(target);
            rc = fail(&c, "cannot resolve the user");
            goto out;
        }
        cJSON_AddStringToObject(target, "$type", NSID_ACTION "#userTarget");
        cJSON_AddStringToObject(target, "did", target_did);
    }
    char now[40];
    now_text(&c, now);
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "$type", NSID_ACTION);
    cJSON_AddStringToObject(rec, "action", action);
    cJSON_AddItemToObject(rec, "target", target);
    cJSON_AddStringToObject(rec, "community", m.uri);
    if (a.opt[O_REASON])
        cJSON_AddStringToObject(rec, "reason", a.opt[O_REASON]);
    cJSON_AddStringToObject(rec, "createdAt", now);
    rc = validate(&c, NSID_ACTION, rec);
    if (rc == 0)
        rc = create(&c, NSID_ACTION, rec, &uri);
    cJSON_Delete(rec);
    if (rc == 0)
        printf("%s\n", uri);
out:
    free(uri);
    free(target_did);
    free(post_cid);
    community_release(&m);
    cli_close(&c);
    return rc;
}

/* ---- feed ---- */

int mdw_cmd_feed(const mdw_config *cfg, int argc, char **argv)
{
    mdw_cmd_args a;
    if (mdw_cmd_parse(&mdw_cmd_feed_spec, argc, argv, &a))
        return a.status;
    if (!a.opt[O_DISPLAY_NAME])
        return mdw_cmd_usage_error(a.spec, "--display-name is required");
    int rc;
    cli c;
    if (cli_open(&c, cfg) != 0) {
        cli_close(&c);
        return 1;
    }
    community m = {0};
    char *service = mdw_config_service_did(cfg), *uri = NULL;
    if ((rc = login(&c)) != 0 || (rc = resolve_community(&c, a.pos[0], NULL, 1, &m)) != 0)
        goto out;
    const char *me = mdw_pds_did(c.pds);
    if (strcmp(m.owner, me) != 0) {
        fprintf(stderr, "meadow: %s belongs to %s: only its owner publishes its feed\n", m.uri,
                m.owner);
        rc = 1;
        goto out;
    }
    char now[40];
    now_text(&c, now);
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "$type", NSID_GENERATOR);
    cJSON_AddStringToObject(rec, "did", service);
    cJSON_AddStringToObject(rec, "displayName", a.opt[O_DISPLAY_NAME]);
    if (a.opt[O_DESCRIPTION])
        cJSON_AddStringToObject(rec, "description", a.opt[O_DESCRIPTION]);
    cJSON_AddStringToObject(rec, "createdAt", now);
    rc = validate(&c, NSID_GENERATOR, rec);
    /* rkey = the hashtag id, so the feed URI names the community; publishing again updates it. */
    if (rc == 0 && mdw_pds_put_record(c.pds, NSID_GENERATOR, m.id, rec, &uri, NULL) != 0)
        rc = fail(&c, "cannot write the feed record");
    cJSON_Delete(rec);
    if (rc == 0)
        printf("%s\n", uri);
out:
    free(uri);
    free(service);
    community_release(&m);
    cli_close(&c);
    return rc;
}

/* ---- rebuild ---- */

static const char *const rebuild_collections[] = {NSID_CONFIG, NSID_MEMBERSHIP, NSID_ACTION};

typedef struct progress {
    int tty;
    int64_t last_us;
    mdw_clock *clock;
} progress;

/* A bar on a terminal, plain lines otherwise (logs, CI). */
static void on_progress(void *ctx, const mdw_pds_walk_stats *st)
{
    progress *pr = ctx;
    if (pr->tty) {
        int64_t now = mdw_clock_mono_us(pr->clock);
        if (st->repos && st->repos < st->repos_total && now - pr->last_us < 100000)
            return;
        pr->last_us = now;
        int width = 30, filled = st->repos_total ? (int)(st->repos * 30 / st->repos_total) : 0;
        fprintf(stderr, "\rrebuild [%.*s%*s] repos %llu/%llu, records %llu", filled,
                "##############################", width - filled, "", (unsigned long long)st->repos,
                (unsigned long long)st->repos_total, (unsigned long long)st->records);
        fflush(stderr);
    } else if (st->repos) {
        fprintf(stderr, "rebuild: repos %llu/%llu records %llu skipped %llu\n",
                (unsigned long long)st->repos, (unsigned long long)st->repos_total,
                (unsigned long long)st->records, (unsigned long long)st->repos_skipped);
    }
}

/*
** Rebuild events go into <data>/queue under their own source id
** (MDW_SOURCE_REBUILD), so their cursor never touches a firehose source's.
*/
#define REBUILD_SOURCE   MDW_SOURCE_REBUILD
#define REBUILD_BATCH    500
#define REBUILD_BATCH_MB 8

typedef struct queue_sink {
    mdw_queue *q;
    mdw_queue_event ev[REBUILD_BATCH];
    char *text[REBUILD_BATCH];
    size_t n, bytes;
    int64_t time_us;
    uint64_t queued, oversized;
    int failed;
} queue_sink;

static int sink_flush(queue_sink *k)
{
    int rc = k->n ? mdw_queue_append(k->q, REBUILD_SOURCE, k->ev, k->n, k->time_us) : 0;
    if (rc) {
        fprintf(stderr, "meadow: rebuild: cannot queue events: %s\n", mdw_strerror(rc));
        k->failed = 1;
    } else
        k->queued += k->n;
    for (size_t i = 0; i < k->n; i++)
        free(k->text[i]);
    k->n = k->bytes = 0;
    return rc;
}

static int queue_event(void *ctx, const char *json, size_t len)
{
    queue_sink *k = ctx;
    if (!mdw_queue_event_fits(k->q, len)) {
        k->oversized++;
        return 0;
    }
    k->text[k->n] = xmemdup(json, len);
    k->ev[k->n] = (mdw_queue_event){.data = k->text[k->n], .len = len, .time_us = k->time_us};
    k->n++;
    k->bytes += len;
    if (k->n == REBUILD_BATCH || k->bytes >= (size_t)REBUILD_BATCH_MB << 20)
        return sink_flush(k);
    return 0;
}

/*
** Applies the queued events with the processor, exactly as live events are
** (same rules, validation and index transactions), until the queue is empty.
*/
static int apply_queue(const mdw_config *cfg, mdw_queue *q, mdw_clock *clock, const char *ixdir)
{
    mdw_index *ix = NULL;
    mdw_processor *p = NULL;
    mdw_index_opts io = {0};
    io.map_bytes = (size_t)cfg->index_map_mb << 20;
    int rc = mdw_index_open(&ix, ixdir, &io);
    if (rc) {
        fprintf(stderr, "meadow: rebuild: cannot open the index %s: %s\n", ixdir, mdw_strerror(rc));
        return 1;
    }
    mdw_processor_cfg pc;
    mdw_processor_cfg_from_config(&pc, cfg);
    if ((rc = mdw_processor_open(&p, &pc, q, ix, clock)) != 0) {
        fprintf(stderr, "meadow: rebuild: processor: %s\n", mdw_strerror(rc));
        mdw_index_close(ix);
        return 1;
    }
    size_t n;
    do
        rc = mdw_processor_step(p, &n);
    while (rc == 0 && n > 0);
    mdw_processor_stats st;
    mdw_processor_stats_get(p, &st);
    mdw_info("pds", "rebuild applied", "applied=%llu noop=%llu refused=%llu skipped=%llu dead=%llu",
             (unsigned long long)st.applied, (unsigned long long)st.noop,
             (unsigned long long)st.refused, (unsigned long long)st.skipped,
             (unsigned long long)st.dead);
    if (rc)
        fprintf(stderr, "meadow: rebuild: applying the events failed: %s\n", mdw_strerror(rc));
    mdw_processor_close(p);
    mdw_index_close(ix);
    return rc ? 1 : 0;
}

static int print_event(void *ctx, const char *json, size_t len)
{
    fwrite(json, 1, len, stdout);
    fputc('\n', stdout);
    return ferror(stdout) ? MDW_EEOF : 0;
}

int mdw_cmd_rebuild(const mdw_config *cfg, int argc, char **argv)
{
    mdw_cmd_args a;
    if (mdw_cmd_parse(&mdw_cmd_rebuild_spec, argc, argv, &a))
        return a.status;
    int relay = a.opt[O_RELAY] != NULL, events = a.opt[O_EVENTS] != NULL;
    const char *from = a.opt[O_FROM];
    cli c;
    if (cli_open(&c, cfg) != 0) {
        cli_close(&c);
        return 1;
    }
    int rc = 0;
    queue_sink *sink = NULL;
    char *qdir = mdw_queue_dir(cfg), *ixdir = xasprintf("%s/index", cfg->data);
    if (!events) {
        /* Into an empty data directory only: mixing with live state proves nothing. */
        struct stat st;
        if (stat(qdir, &st) == 0 || stat(ixdir, &st) == 0) {
            fprintf(stderr,
                    "meadow: rebuild needs an empty data directory: %s already holds queue/ or "
                    "index/\n",
                    cfg->data);
            rc = 1;
            goto out;
        }
        if (mkdir(cfg->data, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "meadow: cannot create %s: %s\n", cfg->data, strerror(errno));
            rc = 1;
            goto out;
        }
        sink = xcalloc(1, sizeof *sink);
        mdw_queue_opts qo;
        mdw_queue_opts_from_config(&qo, cfg);
        int qrc = mdw_queue_open(&sink->q, qdir, &qo);
        if (qrc) {
            fprintf(stderr, "meadow: cannot open %s: %s\n", qdir, mdw_strerror(qrc));
            rc = 1;
            goto out;
        }
    }
    progress pr = {.tty = isatty(2), .clock = c.clock};
    int64_t now = mdw_clock_now_us(c.clock);
    mdw_pds_walk_opts o = {
        .base_url = from,
        .relay = relay,
        .collections = rebuild_collections,
        .ncollections = sizeof rebuild_collections / sizeof rebuild_collections[0],
        .post_collection = "app.bsky.feed.post",
        .min_post_us = now - cfg->retention_days * 86400LL * 1000000,
        .time_us = now,
        .progress = on_progress,
        .progress_ctx = &pr,
    };
    mdw_pds_walk_stats st;
    if (sink)
        sink->time_us = now;
    int wrc = mdw_pds_walk(c.pds, &o, sink ? queue_event : print_event, sink, &st);
    if (pr.tty)
        fputc('\n', stderr);
    if (wrc == 0 && sink)
        wrc = sink_flush(sink);
    if (wrc) {
        /* A queue failure was reported where it happened; others are the PDS's. */
        if (!(sink && sink->failed))
            fail(&c, "rebuild failed");
        rc = 1;
        goto out;
    }
    mdw_info("pds", "rebuild walk done", "repos=%llu skipped=%llu records=%llu posts_seen=%llu",
             (unsigned long long)st.repos, (unsigned long long)st.repos_skipped,
             (unsigned long long)st.records, (unsigned long long)st.posts_seen);
    if (sink) {
        rc = apply_queue(cfg, sink->q, c.clock, ixdir);
        if (rc == 0)
            printf("rebuild: %llu events from %llu repositories applied to %s (%llu over the "
                   "event cap skipped)\n",
                   (unsigned long long)sink->queued, (unsigned long long)st.repos, ixdir,
                   (unsigned long long)sink->oversized);
    }
out:
    if (sink) {
        for (size_t i = 0; i < sink->n; i++)
            free(sink->text[i]);
        mdw_queue_close(sink->q);
        free(sink);
    }
    free(qdir);
    free(ixdir);
    cli_close(&c);
    return rc;
}
