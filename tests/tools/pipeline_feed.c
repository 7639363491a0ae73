/*
** tests/tools/pipeline_feed — reads a whole feed through getFeedSkeleton,
** page by page on one keep-alive connection (libcurl), for the pipeline
** tests: a curl process per page costs ~0.1 s on the loaded CI machine.
**
**   pipeline_feed --port P --feed at://<owner>/app.bsky.feed.generator/<id>
**                 [--limit N] [--max-pages K]
**
** Prints the post URIs of every page, newest first, separated by one space,
** on one line; "ERR:<error name>" on an XRPC error (e.g. ERR:UnknownFeed);
** "ERR:http" when the server cannot be reached or answers something else.
** Also checks each page's shape: a page shorter than the limit must be the
** last one (no cursor), since hidden posts never shorten a page.
** Exit 0 when a feed or an XRPC error was read, 1 otherwise.
*/
#include <cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/banned.h"

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    mdw_buf *b = ud;
    mdw_buf_append(b, p, sz * n);
    return sz * n;
}

int main(int argc, char **argv)
{
    long port = 0, limit = 100, max_pages = 10000;
    const char *feed = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port"))
            port = strtol(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--feed"))
            feed = argv[i + 1];
        else if (!strcmp(argv[i], "--limit"))
            limit = strtol(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--max-pages"))
            max_pages = strtol(argv[i + 1], NULL, 10);
    }
    if (!port || !feed) {
        fprintf(stderr, "usage: pipeline_feed --port P --feed URI [--limit N] [--max-pages K]\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *h = curl_easy_init();
    char *efeed = curl_easy_escape(h, feed, 0);
    mdw_buf body = MDW_BUF_INIT(16u << 20);
    mdw_buf out = MDW_BUF_INIT(64u << 20);
    mdw_buf_puts(&out, "");
    char cursor[256] = "";
    int rc = 1;
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    for (long page = 0; page < max_pages; page++) {
        char url[8192];
        snprintf(url, sizeof url,
                 "http://127.0.0.1:%ld/xrpc/app.bsky.feed.getFeedSkeleton?feed=%s&limit=%ld%s%s",
                 port, efeed, limit, cursor[0] ? "&cursor=" : "", cursor);
        mdw_buf_reset(&body);
        curl_easy_setopt(h, CURLOPT_URL, url);
        if (curl_easy_perform(h) != CURLE_OK) {
            mdw_buf_reset(&out);
            mdw_buf_puts(&out, "ERR:http");
            break;
        }
        cJSON *j = cJSON_ParseWithLength(body.data ? body.data : "", body.len);
        const char *err = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "error"));
        cJSON *items = cJSON_GetObjectItemCaseSensitive(j, "feed");
        if (err || !cJSON_IsArray(items)) {
            mdw_buf_reset(&out);
            mdw_buf_printf(&out, "ERR:%s", err ? err : "http");
            rc = err ? 0 : 1;
            cJSON_Delete(j);
            break;
        }
        long n = 0;
        cJSON *it;
        cJSON_ArrayForEach(it, items)
        {
            const char *uri = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "post"));
            mdw_buf_printf(&out, "%s%s", out.len ? " " : "", uri ? uri : "(no post)");
            n++;
        }
        const char *cur = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "cursor"));
        if (cur && n < limit) {
            /* a short page with a cursor: a hidden post shortened it */
            fprintf(stderr, "pipeline_feed: page %ld has %ld < %ld posts and a cursor\n", page, n,
                    limit);
            mdw_buf_puts(&out, " SHORT-PAGE");
        }
        snprintf(cursor, sizeof cursor, "%s", cur ? cur : "");
        cJSON_Delete(j);
        if (!cursor[0]) {
            rc = 0;
            break;
        }
    }
    printf("%s\n", out.data ? out.data : "");
    mdw_buf_release(&out);
    mdw_buf_release(&body);
    curl_free(efeed);
    curl_easy_cleanup(h);
    curl_global_cleanup();
    return rc;
}
