/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "metald/limits.h"

/* Request-target and query parsing (src/core/http_query.c): pure, bounded, for untrusted bytes. */

/* A request target split and decoded: path percent-decoded, query left raw. */
struct http_target {
        char path[HTTP_MAX_URL_BYTES + 1];
        size_t path_len;
        const char *query;              /* points into the raw target; "" when absent */
        size_t query_len;
};

/*
 * Parses origin-form ("/a/b?q") or absolute-form ("http://host/a?q"). The path
 * must decode to bytes without NUL or control characters: -EINVAL otherwise,
 * -E2BIG when longer than HTTP_MAX_URL_BYTES.
 */
int http_target_parse(const char *raw, size_t len, struct http_target *ret);

struct http_param {
        char key[HTTP_MAX_PARAM_KEY + 1];
        char value[HTTP_MAX_PARAM_VALUE + 1];
        size_t value_len;
};

struct http_query {
        struct http_param params[HTTP_MAX_QUERY_PARAMS];
        size_t n_params;
};

/*
 * application/x-www-form-urlencoded: "k=v&k2=v2", '+' is a space, %XX must be
 * two hex digits and must not decode to NUL. Empty segments are skipped; a
 * parameter without '=' has an empty value. -EINVAL for bad encoding or an
 * empty name, -E2BIG for too many parameters or an over-long name or value.
 * Duplicates are kept in order; http_query_count() finds them.
 */
int http_query_parse(const char *q, size_t len, struct http_query *ret);
const struct http_param *http_query_get(const struct http_query *q, const char *key);
size_t http_query_count(const struct http_query *q, const char *key);
