/* SPDX-License-Identifier: Apache-2.0 */
#include <strings.h>

#include "metald/http_query.h"
#include "metald/util.h"

static int hex_digit(uint8_t c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/*
 * Percent-decodes src[0..len) into dst (cap bytes including the NUL). A '%'
 * must be followed by two hex digits and no byte may decode to NUL.
 */
static int decode(const char *src, size_t len, bool plus_is_space, char *dst, size_t cap, size_t *ret_len)
{
        size_t o = 0;

        for (size_t i = 0; i < len; i++) {
                uint8_t c = (uint8_t)src[i];

                if (c == '%') {
                        int hi, lo;

                        if (len - i < 3)
                                return -EINVAL;
                        hi = hex_digit((uint8_t)src[i + 1]);
                        lo = hex_digit((uint8_t)src[i + 2]);
                        if (hi < 0 || lo < 0)
                                return -EINVAL;
                        c = (uint8_t)(hi << 4 | lo);
                        i += 2;
                } else if (c == '+' && plus_is_space) {
                        c = ' ';
                }
                if (c == 0)
                        return -EINVAL;
                if (o + 1 >= cap)
                        return -E2BIG;
                dst[o++] = (char)c;
        }
        dst[o] = '\0';
        *ret_len = o;
        return 0;
}

/* Skips "http://authority" of an absolute-form target; the path starts at the next '/'. */
static size_t skip_authority(const char *raw, size_t len)
{
        static const char scheme[] = "http://";
        size_t n = sizeof(scheme) - 1, i;

        if (len < n || strncasecmp(raw, scheme, n) != 0)
                return 0;
        for (i = n; i < len && raw[i] != '/' && raw[i] != '?'; i++)
                ;
        return i;
}

int http_target_parse(const char *raw, size_t len, struct http_target *ret)
{
        size_t start = skip_authority(raw, len), path_end;
        const char *q;
        int r;

        if (len > HTTP_MAX_URL_BYTES)
                return -E2BIG;
        q = memchr(raw + start, '?', len - start);
        path_end = q ? (size_t)(q - raw) : len;
        if (start == path_end && start > 0) {
                /* "http://host" and "http://host?q" name the root */
                ret->path[0] = '/';
                ret->path[1] = '\0';
                ret->path_len = 1;
        } else {
                if (path_end == start || raw[start] != '/' || memchr(raw + start, '#', path_end - start))
                        return -EINVAL;
                r = decode(raw + start, path_end - start, false, ret->path, sizeof(ret->path), &ret->path_len);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < ret->path_len; i++)
                if ((uint8_t)ret->path[i] < 0x20 || ret->path[i] == 0x7f)
                        return -EINVAL;
        ret->query = q ? q + 1 : "";
        ret->query_len = q ? len - path_end - 1 : 0;
        return 0;
}

static int parse_param(const char *seg, size_t len, struct http_param *p)
{
        const char *eq = memchr(seg, '=', len);
        size_t klen = eq ? (size_t)(eq - seg) : len, kdec;
        int r;

        if (klen == 0)
                return -EINVAL;
        r = decode(seg, klen, true, p->key, sizeof(p->key), &kdec);
        if (r < 0)
                return r;
        if (!eq) {
                p->value[0] = '\0';
                p->value_len = 0;
                return 0;
        }
        return decode(eq + 1, len - klen - 1, true, p->value, sizeof(p->value), &p->value_len);
}

int http_query_parse(const char *q, size_t len, struct http_query *ret)
{
        size_t i = 0;

        ret->n_params = 0;
        while (i < len) {
                const char *amp = memchr(q + i, '&', len - i);
                size_t seg = amp ? (size_t)(amp - (q + i)) : len - i;
                int r;

                if (seg > 0) {
                        if (ret->n_params >= HTTP_MAX_QUERY_PARAMS)
                                return -E2BIG;
                        r = parse_param(q + i, seg, &ret->params[ret->n_params]);
                        if (r < 0)
                                return r;
                        ret->n_params++;
                }
                i += seg + 1;
        }
        return 0;
}

const struct http_param *http_query_get(const struct http_query *q, const char *key)
{
        for (size_t i = 0; i < q->n_params; i++)
                if (strcmp(q->params[i].key, key) == 0)
                        return &q->params[i];
        return NULL;
}

size_t http_query_count(const struct http_query *q, const char *key)
{
        size_t n = 0;

        for (size_t i = 0; i < q->n_params; i++)
                n += strcmp(q->params[i].key, key) == 0;
        return n;
}
