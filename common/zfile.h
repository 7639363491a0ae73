/*
** common/zfile.h — read a file that may be zstd-compressed, transparently.
**
** Test corpora and captures ship as .zst; commands accept either form. The
** compression is detected by the zstd frame magic, not the file name. A
** reader streams (bounded memory whatever the file size); mdw_zfile_slurp()
** reads a whole file up to a stated maximum (MDW_ETOOBIG past it, never a
** truncation). One reader per thread; the caller owns what slurp returns.
*/
#ifndef MDW_ZFILE_H
#define MDW_ZFILE_H

#include <stddef.h>

typedef struct mdw_zfile mdw_zfile;

/* Opens path; -errno when it cannot be opened. */
int mdw_zfile_open(const char *path, mdw_zfile **out);
/* Reads up to n bytes; *got < n only at the end of the data. MDW_EMALFORMED
 * on a corrupt or truncated zstd stream, -errno on a read error. */
int mdw_zfile_read(mdw_zfile *z, void *buf, size_t n, size_t *got);
void mdw_zfile_close(mdw_zfile *z);

/* Whole (decompressed) file, NUL-terminated (not counted in *len); free(). */
int mdw_zfile_slurp(const char *path, size_t max, char **data, size_t *len);

#endif
