/*
** common/limits.h — every cap on bytes that come from outside, in one place
** (after curl's DYNBUF "toobig" limits). A buffer fed by the network, a file
** or a client is created with one of these as its maximum; going over it is
** MDW_ETOOBIG, never a silent truncation.
*/
#ifndef MDW_LIMITS_H
#define MDW_LIMITS_H

#define MDW_MAX_EVENT_BYTES      (2u * 1024 * 1024) /* one Jetstream JSON event */
#define MDW_MAX_FRAME_BYTES      (5u * 1024 * 1024) /* one subscribeRepos frame */
#define MDW_MAX_RECORD_BYTES     (1u * 1024 * 1024) /* one record, JSON or CBOR */
#define MDW_MAX_CBOR_DEPTH       64                 /* nesting of DAG-CBOR / JSON */
#define MDW_MAX_CBOR_ITEMS       500000             /* items in one decoded DAG-CBOR object */
#define MDW_MAX_DID_BYTES        2048
#define MDW_MAX_URI_BYTES        8192
#define MDW_MAX_HTTP_URL_BYTES   8192 /* request line target incl. query */
#define MDW_MAX_HTTP_QUERY_BYTES 4096
#define MDW_MAX_HTTP_BODY_BYTES  (8u * 1024 * 1024) /* PDS client responses */
#define MDW_MAX_JWT_BYTES        8192
#define MDW_MAX_WS_HEAD_BYTES    (16u * 1024) /* a WebSocket server's 101 response head */
#define MDW_MAX_CONFIG_LINE      4096
#define MDW_MAX_LOG_LINE         4096

#endif
