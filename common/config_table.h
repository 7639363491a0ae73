/*
** common/config_table.h — THE table of Meadow's settings (redis-style: one
** table, one place). A setting `x_y` is `x_y = …` in meadow.conf, MEADOW_X_Y
** in the environment and --x_y (or --x-y) on the command line; later sources
** win: default < file < env < flag.
**
** X(name, type, default, min, max, allowed, help)
**   type STR: allowed NULL; INT: min..max inclusive; BOOL: true/false;
**   ENUM: allowed is "a|b|c".
*/
#define MDW_JETSTREAM_DEFAULT_URLS                                                                 \
    "wss://jetstream1.us-east.bsky.network/subscribe,"                                             \
    "wss://jetstream2.us-east.bsky.network/subscribe,"                                             \
    "wss://jetstream1.us-west.bsky.network/subscribe,"                                             \
    "wss://jetstream2.us-west.bsky.network/subscribe"

#define MDW_SETTINGS(X)                                                                            \
    X(config, STR, "meadow.conf", 0, 0, NULL,                                                      \
      "settings file (key = value); optional when default")                                        \
    X(data, STR, "./data", 0, 0, NULL, "data directory (queue/ and index/ live here)")             \
    X(log_level, ENUM, "info", 0, 0, "debug|info|warn|error|off", "least severe level logged")     \
    X(bind, STR, "127.0.0.1", 0, 0, NULL, "address the HTTP server listens on")                    \
    X(port, INT, "3000", 1, 65535, NULL, "HTTP port")                                              \
    X(hostname, STR, "localhost", 0, 0, NULL, "public host name of the did:web identity")          \
    X(service_did, STR, "", 0, 0, NULL, "this feed generator's DID; empty = did:web:<hostname>")   \
    X(source, ENUM, "jetstream", 0, 0, "jetstream|relay|none", "firehose source")                  \
    X(jetstream_urls, STR, MDW_JETSTREAM_DEFAULT_URLS, 0, 0, NULL,                                 \
      "comma-separated Jetstream /subscribe URLs, tried in order (failover)")                      \
    X(relay_url, STR, "wss://bsky.network", 0, 0, NULL,                                            \
      "relay or PDS base URL for com.atproto.sync.subscribeRepos")                                 \
    X(rewind_s, INT, "5", 0, 3600, NULL, "seconds to rewind the cursor on reconnect")              \
    X(watchdog_s, INT, "30", 1, 3600, NULL, "reconnect after this many seconds of silence")        \
    X(backoff_min_ms, INT, "250", 1, 600000, NULL, "first reconnect delay")                        \
    X(backoff_max_ms, INT, "30000", 1, 3600000, NULL, "largest reconnect delay")                   \
    X(batch_max_events, INT, "1000", 1, 100000, NULL, "events per queue append transaction")       \
    X(batch_max_ms, INT, "5", 0, 1000, NULL, "longest a batch stays open")                         \
    X(queue_map_mb, INT, "1024", 1, 1048576, NULL, "queue LMDB map size (MiB)")                    \
    X(queue_high_water, INT, "200000", 1, 1000000000, NULL, "stop reading above this depth")       \
    X(queue_low_water, INT, "100000", 0, 1000000000, NULL, "resume reading below this depth")      \
    X(queue_max_attempts, INT, "5", 1, 1000, NULL, "failures before an event is dead-lettered")    \
    X(index_map_mb, INT, "4096", 1, 1048576, NULL, "index LMDB map size (MiB)")                    \
    X(retention_days, INT, "7", 1, 3650, NULL, "posts older than this leave the feeds")            \
    X(sweep_interval_s, INT, "600", 1, 86400, NULL, "retention sweep period")                      \
    X(process_batch, INT, "16384", 1, 100000, NULL, "events claimed per processor transaction")    \
    X(http_threads, INT, "2", 1, 256, NULL, "HTTP worker threads")                                 \
    X(http_max_connections, INT, "1024", 1, 100000, NULL, "concurrent HTTP connections")           \
    X(http_timeout_s, INT, "10", 1, 3600, NULL, "idle connection timeout")                         \
    X(auth, ENUM, "optional", 0, 0, "off|optional|required", "service-auth JWT on feed requests")  \
    X(jwt_leeway_s, INT, "30", 0, 3600, NULL, "allowed clock skew on JWT exp")                     \
    X(plc_url, STR, "https://plc.directory", 0, 0, NULL, "PLC directory for did:plc resolution")   \
    X(did_cache_ttl_s, INT, "3600", 0, 604800, NULL, "how long resolved DID documents are kept")   \
    X(did_cache_max, INT, "100000", 1, 100000000, NULL, "most DID documents kept")                 \
    X(verify_commits, BOOL, "false", 0, 0, NULL, "check relay commit signatures")                  \
    X(did_docs_file, STR, "", 0, 0, NULL, "JSON map DID -> DID document (tests, offline)")         \
    X(pds_url, STR, "https://bsky.social", 0, 0, NULL, "PDS the CLI writes records to")            \
    X(identifier, STR, "", 0, 0, NULL, "handle or DID the CLI logs in as")                         \
    X(app_password_file, STR, "", 0, 0, NULL,                                                      \
      "file (mode 0600) holding the app password; else MEADOW_APP_PASSWORD")                       \
    X(session_file, STR, "", 0, 0, NULL, "cached PDS session (0600); empty = <data>/session.json") \
    X(pds_timeout_s, INT, "30", 1, 3600, NULL, "timeout of one PDS / PLC request")                 \
    X(pds_retries, INT, "3", 0, 20, NULL, "retries of a PDS request after 429, 5xx or no answer")
