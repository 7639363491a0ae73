#include "common/err.h"

#include <errno.h>
#include <lmdb.h>
#include <string.h>
#include <sys/statvfs.h>

#include "common/banned.h"

const char *mdw_strerror(int code)
{
    switch (code) {
    case MDW_OK:
        return "success";
    case MDW_EFULL:
        return "storage full";
    case MDW_ETOOBIG:
        return "input too big";
    case MDW_EMALFORMED:
        return "malformed input";
    case MDW_ENOTFOUND:
        return "not found";
    case MDW_ECORRUPT:
        return "stored data corrupt";
    case MDW_ECONFIG:
        return "invalid configuration";
    case MDW_EUNIMPL:
        return "not implemented yet";
    case MDW_EINVALID:
        return "invalid record";
    case MDW_EDENIED:
        return "not authorized";
    case MDW_EAGAIN:
        return "try again";
    case MDW_ELOCKED:
        return "locked by another process";
    case MDW_EVERSION:
        return "unknown format version";
    case MDW_EHTTP:
        return "remote request failed";
    case MDW_ECRYPTO:
        return "signature or key check failed";
    case MDW_EEOF:
        return "unexpected end of input";
    case MDW_ESTOPPED:
        return "stopped";
    case MDW_ECOLLISION:
        return "hash collision";
    default:
        break;
    }
    if (code <= MDB_KEYEXIST && code >= MDB_LAST_ERRCODE)
        return mdb_strerror(code);
    if (code < 0 && code > -4096)
        return strerror(-code);
    return "unknown error";
}

int mdw_err_from_lmdb(int rc)
{
    if (rc == 0)
        return 0;
    if (rc == MDB_MAP_FULL)
        return MDW_EFULL;
    if (rc > 0)
        return -rc;
    return rc;
}

int mdw_err_environment(int code)
{
    switch (code) {
    case MDW_EFULL:
    case -ENOSPC:
    case -EDQUOT:
    case -EIO:
    case -ENOMEM:
    case -EAGAIN:
    case MDW_EAGAIN:
    case MDB_READERS_FULL:
        return 1;
    default:
        return 0;
    }
}

int mdw_err_nospace(int code, const char *path)
{
    struct statvfs sv;
    if (code == -EIO && path && statvfs(path, &sv) == 0 &&
        (unsigned long long)sv.f_bavail * sv.f_frsize < 1024ULL * 1024)
        return -ENOSPC;
    return code;
}
