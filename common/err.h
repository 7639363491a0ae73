/*
** common/err.h — Meadow's error convention.
**
** Every function that can fail returns int: 0 on success, a negative code on
** failure. Codes are either -errno (from libc) or one of the MDW_E* project
** codes below. LMDB's own MDB_* codes (also negative, -30799..-30780) pass
** through unchanged except MDB_MAP_FULL, which becomes MDW_EFULL so callers can
** treat "storage full, pause ingest" without including lmdb.h.
** mdw_strerror() names any of them. Log the detail once where the error
** happens; callers only pass the code up.
*/
#ifndef MDW_ERR_H
#define MDW_ERR_H

enum {
    MDW_OK = 0,
    MDW_EBASE = -1000,
    MDW_EFULL = -1001,      /* storage (LMDB map) full: pause ingest, drain, retry */
    MDW_ETOOBIG = -1002,    /* input over a named maximum: refused, never truncated */
    MDW_EMALFORMED = -1003, /* outside bytes that do not parse */
    MDW_ENOTFOUND = -1004,
    MDW_ECORRUPT = -1005,   /* stored data fails a check */
    MDW_ECONFIG = -1006,    /* bad setting */
    MDW_EUNIMPL = -1007,    /* stage not built yet */
    MDW_EINVALID = -1008,   /* record fails lexicon or application rules */
    MDW_EDENIED = -1009,    /* not authorized */
    MDW_EAGAIN = -1010,     /* nothing now, try later */
    MDW_ELOCKED = -1011,    /* another process holds the lock */
    MDW_EVERSION = -1012,   /* stored format version unknown */
    MDW_EHTTP = -1013,      /* remote HTTP/XRPC error */
    MDW_ECRYPTO = -1014,    /* signature or key failure */
    MDW_EEOF = -1015,       /* input ended early */
    MDW_ESTOPPED = -1016,   /* shutdown requested */
    MDW_ECOLLISION = -1017, /* a hashed key already holds another string: refused (index) */
    MDW_ELAST = -1018
};

/* A static string naming code (never NULL). */
const char *mdw_strerror(int code);

/* Map an LMDB return code (0, positive errno or MDB_*) to Meadow's. */
int mdw_err_from_lmdb(int rc);

/*
** 1 when code is the environment's fault, not the input's: storage full
** (MDW_EFULL, -ENOSPC, -EDQUOT), an I/O error, memory or reader slots
** exhausted. Nothing is wrong with the data being written: keep it, pause,
** retry with backoff (docs/processor.md, "A full disk").
*/
int mdw_err_environment(int code);

/*
** LMDB reports a short write as EIO (mdb_page_flush: "short write,
** filesystem full?"). -EIO while the filesystem holding path has less than
** 1 MiB left is -ENOSPC; any other code is returned unchanged.
*/
int mdw_err_nospace(int code, const char *path);

#endif
