/* SPDX-License-Identifier: Apache-2.0 */
#include "metald/http.h"
#include "metald/util.h"
#include "test.h"

static int target(const char *raw, struct http_target *t)
{
        return http_target_parse(raw, strlen(raw), t);
}

TEST(http_target_forms)
{
        static const struct {
                const char *raw, *path, *query;
        } good[] = {
                { "/", "/", "" },
                { "/boot.ipxe", "/boot.ipxe", "" },
                { "/boot.ipxe?", "/boot.ipxe", "" },
                { "/boot.ipxe?mac=1&x=2", "/boot.ipxe", "mac=1&x=2" },
                { "/a%20b/c%2Fd", "/a b/c/d", "" },                     /* %2F decodes; the root check is fs's */
                { "/a+b", "/a+b", "" },                                 /* '+' is only a space in queries */
                { "/%C3%A9", "/\xc3\xa9", "" },
                { "/x?a=%ZZ", "/x", "a=%ZZ" },                          /* the query stays raw here */
                { "http://10.0.0.1:8080/ipxe.efi?x", "/ipxe.efi", "x" },
                { "HTTP://host/", "/", "" },
                { "http://host", "/", "" },
                { "http://host?q=1", "/", "q=1" },
                { "/../etc/passwd", "/../etc/passwd", "" },             /* not normalised: openat2 refuses it */
        };
        static const char *const bad[] = {
                "", "boot.ipxe", "*", "/a%", "/a%2", "/a%G0", "/a%00b", "/a%0a", "/a%7F", "/a\x01", "/a#frag",
                "https://host/x", "?q",
        };
        struct http_target t;

        for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
                CHECK_EQ(target(good[i].raw, &t), 0);
                CHECK_STREQ(t.path, good[i].path);
                CHECK_EQ(t.path_len, strlen(good[i].path));
                CHECK_EQ(t.query_len, strlen(good[i].query));
                CHECK(memcmp(t.query, good[i].query, t.query_len) == 0);
        }
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                if (target(bad[i], &t) == 0)
                        fprintf(stderr, "  accepted: %s\n", bad[i]);
                CHECK_EQ(target(bad[i], &t), -EINVAL);
        }
}

TEST(http_target_limits)
{
        char raw[HTTP_MAX_URL_BYTES + 2];
        struct http_target t;

        memset(raw, 'a', sizeof(raw));
        raw[0] = '/';
        CHECK_EQ(http_target_parse(raw, HTTP_MAX_URL_BYTES, &t), 0);
        CHECK_EQ(t.path_len, (size_t)HTTP_MAX_URL_BYTES);
        CHECK_EQ(http_target_parse(raw, HTTP_MAX_URL_BYTES + 1, &t), -E2BIG);
        /* the length given is the length used: no terminating NUL needed, none read past */
        CHECK_EQ(http_target_parse("/ab", 2, &t), 0);
        CHECK_STREQ(t.path, "/a");
}

static int query(const char *q, struct http_query *ret)
{
        return http_query_parse(q, strlen(q), ret);
}

TEST(http_query_params)
{
        struct http_query q;

        CHECK_EQ(query("", &q), 0);
        CHECK_EQ(q.n_params, 0);
        CHECK_EQ(query("&&&", &q), 0);
        CHECK_EQ(q.n_params, 0);
        CHECK_EQ(query("mac=52-54-00-12-34-56&serial=A+B%2BC&flag&empty=", &q), 0);
        CHECK_EQ(q.n_params, 4);
        CHECK_STREQ(http_query_get(&q, "mac")->value, "52-54-00-12-34-56");
        CHECK_STREQ(http_query_get(&q, "serial")->value, "A B+C");
        CHECK_STREQ(http_query_get(&q, "flag")->value, "");
        CHECK_STREQ(http_query_get(&q, "empty")->value, "");
        CHECK(http_query_get(&q, "missing") == NULL);
        CHECK_EQ(query("a=1&a=2&b=%3D", &q), 0);
        CHECK_EQ(http_query_count(&q, "a"), 2);
        CHECK_STREQ(http_query_get(&q, "a")->value, "1");
        CHECK_STREQ(http_query_get(&q, "b")->value, "=");
        CHECK_EQ(query("a=b=c", &q), 0);
        CHECK_STREQ(http_query_get(&q, "a")->value, "b=c");
        CHECK_EQ(query("%6dac=1", &q), 0);                      /* names are decoded too */
        CHECK(http_query_get(&q, "mac") != NULL);
}

TEST(http_query_hostile)
{
        static const struct {
                const char *q;
                int r;
        } cases[] = {
                { "=1", -EINVAL },
                { "a=%", -EINVAL },
                { "a=%4", -EINVAL },
                { "a=%4g", -EINVAL },
                { "a=%00", -EINVAL },
                { "a%00=1", -EINVAL },
                { "a=%%41", -EINVAL },
                { "a=\xff\xfe", 0 },                    /* bytes are bytes; the boot code validates values */
        };
        char big[HTTP_MAX_PARAM_VALUE * 4];
        struct http_query q;

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
                CHECK_EQ(query(cases[i].q, &q), cases[i].r);
        /* a value exactly at the cap, then one byte over */
        memcpy(big, "v=", 2);
        memset(big + 2, 'x', HTTP_MAX_PARAM_VALUE);
        big[2 + HTTP_MAX_PARAM_VALUE] = '\0';
        CHECK_EQ(query(big, &q), 0);
        CHECK_EQ(q.params[0].value_len, (size_t)HTTP_MAX_PARAM_VALUE);
        memcpy(big + 2 + HTTP_MAX_PARAM_VALUE, "x", 2);
        CHECK_EQ(query(big, &q), -E2BIG);
        /* three encoded bytes per decoded byte still count as one */
        big[2] = '\0';
        for (size_t i = 0; i < HTTP_MAX_PARAM_VALUE; i++)
                memcpy(big + 2 + 3 * i, "%41", 4);
        CHECK_EQ(query(big, &q), 0);
        CHECK_EQ(q.params[0].value_len, (size_t)HTTP_MAX_PARAM_VALUE);
        /* too many parameters */
        big[0] = '\0';
        for (size_t i = 0; i <= HTTP_MAX_QUERY_PARAMS; i++)
                strcat(big, "k=v&");
        CHECK_EQ(query(big, &q), -E2BIG);
        /* an over-long name */
        memset(big, 'k', HTTP_MAX_PARAM_KEY + 1);
        memcpy(big + HTTP_MAX_PARAM_KEY + 1, "=1", 3);
        CHECK_EQ(query(big, &q), -E2BIG);
}
