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

TEST(http_request_line_target)
{
        static const struct {
                const char *line, *target;
        } good[] = {
                { "GET / HTTP/1.1\r\n", "/" },
                { "GET /a/b?x=1 HTTP/1.1\r\nHost: x\r\n", "/a/b?x=1" },
                { "HEAD /big.img HTTP/1.0\r\n", "/big.img" },
                { "\r\n\r\nGET /x HTTP/1.1\r\n", "/x" },         /* empty lines ahead are skipped */
                { "GET http://h/x HTTP/1.1", "http://h/x" },
                { "GET /x ", "/x" },                            /* the rest may not have arrived */
        };
        static const char *const bad[] = {
                "", "\r\n", "GET", "GET ", "GET /x", "GET  /x HTTP/1.1", "get /x HTTP/1.1", "POST /x HTTP/1.1",
                "PUT /x HTTP/1.1", "GETX /x HTTP/1.1", "HEAD/x HTTP/1.1", "OPTIONS * HTTP/1.1", " GET /x HTTP/1.1",
        };
        const char *t;
        size_t n;

        for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
                CHECK_EQ(http_request_line_target(good[i].line, strlen(good[i].line), &t, &n), 0);
                CHECK_EQ(n, strlen(good[i].target));
                CHECK(memcmp(t, good[i].target, n) == 0);
        }
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
                CHECK_EQ(http_request_line_target(bad[i], strlen(bad[i]), &t, &n), -EINVAL);
        /* bytes after the given length are not looked at */
        CHECK_EQ(http_request_line_target("GET /x HTTP/1.1", 6, &t, &n), -EINVAL);
}

TEST(http_client_counts)
{
        struct http_client_counts c;
        uint32_t a;

        CHECK_EQ(http_client_counts_init(&c, 64), 0);
        CHECK_EQ(http_client_count(&c, 1), 0);
        CHECK_EQ(http_client_counts_add(&c, 1), 0);
        CHECK_EQ(http_client_counts_add(&c, 1), 0);
        CHECK_EQ(http_client_count(&c, 1), 2);
        http_client_counts_del(&c, 7);                  /* never counted */
        CHECK_EQ(c.n_addrs, 1);
        /* fill to the cap with addresses that share low bits, then take every other one out */
        for (a = 0; a < 63; a++)
                CHECK_EQ(http_client_counts_add(&c, 0x0a000000u + (a << 24)), 0);
        CHECK_EQ(c.n_addrs, 64);
        CHECK_EQ(http_client_counts_add(&c, 0xdeadbeefu), -ENOSPC);
        CHECK_EQ(http_client_counts_add(&c, 1), 0);     /* a known address still counts */
        for (a = 0; a < 63; a += 2)
                http_client_counts_del(&c, 0x0a000000u + (a << 24));
        for (a = 0; a < 63; a++)
                CHECK_EQ(http_client_count(&c, 0x0a000000u + (a << 24)), a % 2);
        CHECK_EQ(http_client_count(&c, 1), 3);
        for (int i = 0; i < 3; i++)
                http_client_counts_del(&c, 1);
        CHECK_EQ(http_client_count(&c, 1), 0);
        CHECK_EQ(c.n_addrs, 31);
        http_client_counts_free(&c);
        http_client_counts_free(&c);                    /* twice is harmless */
}

/* Random adds and deletes against a plain array: the table never loses or invents a count. */
TEST(http_client_counts_random)
{
        static uint32_t model[256];
        struct http_client_counts c;
        uint32_t x = 12345;

        CHECK_EQ(http_client_counts_init(&c, 256), 0);
        for (int i = 0; i < 200000; i++) {
                uint32_t k;

                x = x * 1103515245u + 12345u;
                k = (x >> 8) % 256;
                if ((x >> 20) & 1) {
                        CHECK_EQ(http_client_counts_add(&c, k * 0x01000001u), 0);
                        model[k]++;
                } else if (model[k]) {
                        http_client_counts_del(&c, k * 0x01000001u);
                        model[k]--;
                }
                if (i % 9973 == 0)
                        for (uint32_t j = 0; j < 256; j++)
                                CHECK_EQ(http_client_count(&c, j * 0x01000001u), model[j]);
        }
        http_client_counts_free(&c);
}
