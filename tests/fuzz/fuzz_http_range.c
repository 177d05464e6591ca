/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What a client controls in an artifact request: the request target, the
 * query, and the Range / If-Range / If-Match / If-None-Match /
 * If-Modified-Since / If-Unmodified-Since values, against a file size and
 * validators drawn from the input. The parsers and the decision run on them;
 * invariants abort.
 *
 * Input: 8 bytes of file size, 1 byte of flags, then newline-separated
 * fields: target, range, if-range, if-match, if-none-match,
 * if-modified-since, if-unmodified-since.
 */
#include <stdlib.h>
#include <string.h>

#include "metald/http.h"
#include "metald/util.h"

#define FUZZ_FIELDS 7

static void require(bool ok)
{
        if (!ok)
                abort();
}

static void check_target(const char *raw, size_t len)
{
        struct http_target t;
        struct http_query q;

        if (http_target_parse(raw, len, &t) < 0)
                return;
        require(t.path[0] == '/' && t.path_len == strlen(t.path) && t.path_len <= HTTP_MAX_URL_BYTES);
        for (size_t i = 0; i < t.path_len; i++)
                require((uint8_t)t.path[i] >= 0x20 && t.path[i] != 0x7f);
        require(t.query_len <= len && (t.query_len == 0 || (t.query >= raw && t.query + t.query_len <= raw + len)));
        if (http_query_parse(t.query, t.query_len, &q) < 0)
                return;
        require(q.n_params <= HTTP_MAX_QUERY_PARAMS);
        for (size_t i = 0; i < q.n_params; i++) {
                require(q.params[i].key[0] && strlen(q.params[i].key) <= HTTP_MAX_PARAM_KEY);
                require(q.params[i].value_len == strlen(q.params[i].value));
                require(q.params[i].value_len <= HTTP_MAX_PARAM_VALUE);
        }
}

static void check_date(const char *s)
{
        char buf[HTTP_DATE_BYTES];
        int64_t t, again;

        if (http_date_parse(s, &t) < 0)
                return;
        http_date_format(t, buf);
        require(http_date_parse(buf, &again) == 0 && again == t);
}

static void check_range(const char *s, uint64_t size)
{
        uint64_t off = 0, len = 0;
        int r = http_range_parse(s, size, &off, &len);

        require(r == 0 || r == -ERANGE || r == -EINVAL || r == -EOPNOTSUPP);
        if (r == 0)
                require(len >= 1 && off < size && len <= size - off);
}

static void check_decision(const struct http_validators *v, const struct http_preconditions *p, bool is_get)
{
        struct http_decision d;

        http_decide(v, p, is_get, 1700000000, &d);
        switch (d.status) {
        case 200:
                require(d.offset == 0 && d.length == v->size);
                break;
        case 206:
                require(is_get && p->range && d.length >= 1 && d.offset < v->size && d.length <= v->size - d.offset);
                break;
        case 304:
                require(p->if_none_match || p->if_modified_since);
                break;
        case 412:
                require(p->if_match || p->if_unmodified_since);
                break;
        case 416:
                require(is_get && p->range);
                break;
        default:
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *fields[FUZZ_FIELDS] = { 0 }, *text, *p;
        struct http_preconditions pre;
        uint64_t file_size = 0;
        uint8_t flags;

        if (size < 9)
                return 0;
        memcpy(&file_size, data, 8);
        flags = data[8];
        /* small sizes most of the time, so ranges hit both ends */
        if (!(flags & 0x80))
                file_size %= 4096;
        text = malloc(size - 9 + 1);
        if (!text)
                return 0;
        memcpy(text, data + 9, size - 9);
        text[size - 9] = '\0';
        p = text;
        for (size_t i = 0; i < FUZZ_FIELDS && p; i++) {
                fields[i] = p;
                p = strchr(p, '\n');
                if (p)
                        *p++ = '\0';
        }
        if (fields[0])
                check_target(fields[0], strlen(fields[0]));
        for (size_t i = 1; i < FUZZ_FIELDS; i++)
                if (fields[i]) {
                        check_range(fields[i], file_size);
                        check_date(fields[i]);
                        (void)http_etag_match(fields[i], "\"abc\"", flags & 1);
                }
        pre = (struct http_preconditions){
                .range = fields[1], .if_range = fields[2], .if_match = fields[3], .if_none_match = fields[4],
                .if_modified_since = fields[5], .if_unmodified_since = fields[6],
        };
        check_decision(&(struct http_validators){ .size = file_size, .mtime = 1600000000,
                                                  .etag = flags & 2 ? "\"abc\"" : NULL },
                       &pre, flags & 4);
        free(text);
        return 0;
}
