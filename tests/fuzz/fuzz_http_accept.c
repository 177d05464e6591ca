/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the acceptor reads before a connection reaches libmicrohttpd: the
 * first bytes a client sends, as peeked, through http_request_line_target and
 * then http_target_parse, as the acceptor does to route the connection. The
 * target must lie inside the bytes and hold no space. Then the same bytes
 * drive the per-client connection counts against a plain model: each byte
 * adds (high bit clear) or removes (set) one connection of one of 32
 * addresses chosen to collide in the table.
 */
#include <stdlib.h>
#include <string.h>

#include "metald/http.h"
#include "metald/util.h"

static void require(bool ok)
{
        if (!ok)
                abort();
}

static void check_request_line(const uint8_t *data, size_t size)
{
        struct http_target *t = malloc(sizeof(*t));
        const char *raw;
        size_t len;

        require(t != NULL);
        if (http_request_line_target(data, size, &raw, &len) == 0) {
                require(raw > (const char *)data && raw + len < (const char *)data + size);
                require(len > 0 && !memchr(raw, ' ', len) && raw[len] == ' ');
                if (http_target_parse(raw, len, t) == 0)
                        require(t->path[0] == '/' && t->path_len == strlen(t->path) &&
                                t->path_len <= HTTP_MAX_URL_BYTES);
        }
        free(t);
}

static void check_counts(const uint8_t *data, size_t size)
{
        uint32_t model[32] = { 0 };
        struct http_client_counts c;

        require(http_client_counts_init(&c, 32) == 0);
        for (size_t i = 0; i < size; i++) {
                unsigned k = data[i] & 31;
                uint32_t addr = (uint32_t)k << 27;      /* same low bits: long probe runs */

                if (data[i] & 0x80) {
                        http_client_counts_del(&c, addr);
                        model[k] -= model[k] > 0;
                } else if (http_client_counts_add(&c, addr) == 0) {
                        model[k]++;
                }
                require(http_client_count(&c, addr) == model[k]);
        }
        for (unsigned k = 0; k < 32; k++)
                require(http_client_count(&c, (uint32_t)k << 27) == model[k]);
        http_client_counts_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        check_request_line(data, size);
        check_counts(data, size);
        return 0;
}
