#include "firehose/firehose.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/stop.h"
#include "firehose/ingest.h"
#include "firehose/jetstream.h"
#include "firehose/relay_source.h"
#include "common/banned.h"

struct mdw_firehose {
    mdw_ingest *in;
    mdw_jetstream *js;
    mdw_relay_source *rs; /* source = relay */
    pthread_t thread;
    int started;
    int result;
    atomic_int ended; /* the thread returned (mdw_firehose_ended) */
};

static void fh_free(mdw_firehose *fh)
{
    mdw_jetstream_free(fh->js);
    mdw_relay_source_free(fh->rs);
    mdw_ingest_free(fh->in);
    free(fh);
}

static int fh_new(mdw_firehose **out, const mdw_config *cfg, mdw_queue *q, mdw_clock *clock)
{
    int relay = strcmp(cfg->source, "relay") == 0;
    if (!relay && strcmp(cfg->source, "jetstream") != 0) {
        mdw_error("firehose", "source not available in this build", "source=%s", cfg->source);
        return MDW_EUNIMPL;
    }
    mdw_firehose *fh = xcalloc(1, sizeof *fh);
    mdw_ingest_opts io;
    mdw_ingest_opts_default(&io, relay ? MDW_SOURCE_RELAY : MDW_SOURCE_JETSTREAM,
                            relay ? "relay" : "jetstream");
    mdw_ingest_opts_from_config(&io, cfg);
    io.async = 1;
    int rc = mdw_ingest_new(&fh->in, q, clock, &io);
    if (rc) {
        free(fh);
        return rc;
    }
    if (relay) {
        mdw_relay_source_opts ro;
        rc = mdw_relay_source_opts_from_config(&ro, cfg);
        if (!rc)
            rc = mdw_relay_source_new(&fh->rs, &ro, fh->in, clock);
        mdw_relay_source_opts_release(&ro);
    } else {
        mdw_jetstream_opts jo;
        rc = mdw_jetstream_opts_from_config(&jo, cfg);
        if (!rc) {
            rc = mdw_jetstream_new(&fh->js, &jo, fh->in, clock);
            mdw_jetstream_opts_release(&jo);
        }
    }
    if (rc) {
        fh_free(fh);
        return rc;
    }
    *out = fh;
    return 0;
}

static int fh_run(mdw_firehose *fh)
{
    return fh->rs ? mdw_relay_source_run(fh->rs) : mdw_jetstream_run(fh->js);
}

static void *fh_main(void *arg)
{
    mdw_firehose *fh = arg;
    fh->result = fh_run(fh);
    fh->ended = 1;
    return NULL;
}

int mdw_firehose_ended(const mdw_firehose *fh)
{
    return fh && fh->ended;
}

int mdw_firehose_start(mdw_firehose **out, const mdw_config *cfg, mdw_queue *q, mdw_clock *clock)
{
    *out = NULL;
    if (strcmp(cfg->source, "none") == 0)
        return 0; /* no ingest: mdw_firehose_stop(NULL) is a no-op */
    mdw_firehose *fh;
    int rc = fh_new(&fh, cfg, q, clock);
    if (rc)
        return rc;
    rc = pthread_create(&fh->thread, NULL, fh_main, fh);
    if (rc) {
        fh_free(fh);
        return -rc;
    }
    fh->started = 1;
    *out = fh;
    return 0;
}

int mdw_firehose_stop(mdw_firehose *fh)
{
    if (!fh)
        return 0;
    if (fh->started) {
        if (fh->rs)
            mdw_relay_source_request_stop(fh->rs);
        else
            mdw_jetstream_request_stop(fh->js);
        pthread_join(fh->thread, NULL);
    }
    int rc = fh->result;
    fh_free(fh);
    return rc;
}

int mdw_firehose_run(const mdw_config *cfg, mdw_queue *q, mdw_clock *clock)
{
    mdw_firehose *fh;
    int rc = fh_new(&fh, cfg, q, clock);
    if (rc)
        return rc;
    rc = fh_run(fh);
    fh_free(fh);
    return rc;
}
