/* SPDX-License-Identifier: Apache-2.0 */
#include "metald/agent.h"
#include "metald/util.h"
#include "test.h"

#define S USEC_PER_SEC

TEST(agent_classify)
{
        static const struct {
                enum agent_call call;
                long status;
                enum agent_verdict v;
        } cases[] = {
                { AGENT_CALL_REGISTER, 200, AGENT_OK },
                { AGENT_CALL_REGISTER, 0, AGENT_RETRY },
                { AGENT_CALL_HEARTBEAT, 500, AGENT_RETRY },
                { AGENT_CALL_HEARTBEAT, 502, AGENT_RETRY },
                { AGENT_CALL_HEARTBEAT, 503, AGENT_RETRY },
                { AGENT_CALL_REGISTER, 401, AGENT_UNAUTHORIZED },
                { AGENT_CALL_HEARTBEAT, 401, AGENT_UNAUTHORIZED },
                { AGENT_CALL_EVENT, 401, AGENT_UNAUTHORIZED },
                { AGENT_CALL_REGISTER, 409, AGENT_RETRY_SLOW },
                { AGENT_CALL_EVENT, 409, AGENT_REFUSED },
                { AGENT_CALL_HEARTBEAT, 400, AGENT_RETRY_SLOW },
                { AGENT_CALL_HEARTBEAT, 404, AGENT_RETRY_SLOW },
                { AGENT_CALL_HEARTBEAT, 413, AGENT_RETRY_SLOW },
                { AGENT_CALL_HEARTBEAT, 415, AGENT_RETRY_SLOW },
                { AGENT_CALL_HEARTBEAT, 429, AGENT_RETRY },
                { AGENT_CALL_HEARTBEAT, 204, AGENT_RETRY_SLOW },
                { AGENT_CALL_HEARTBEAT, 302, AGENT_RETRY_SLOW },
        };

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
                CHECK_EQ(agent_classify(cases[i].call, cases[i].status), cases[i].v);
}

TEST(agent_backoff)
{
        static const uint64_t caps[] = { 1 * S, 2 * S, 4 * S, 8 * S, 16 * S, 32 * S, 60 * S, 60 * S, 60 * S };

        for (unsigned f = 1; f <= ARRAY_SIZE(caps); f++) {
                uint64_t cap = caps[f - 1];

                CHECK_EQ(agent_backoff_usec(f, 0), 0);
                CHECK_EQ(agent_backoff_usec(f, (uint32_t)cap), cap);          /* the top of the range */
                CHECK_EQ(agent_backoff_usec(f, (uint32_t)cap + 1), 0);        /* wraps: never above */
                CHECK(agent_backoff_usec(f, UINT32_MAX) <= cap);
        }
        CHECK(agent_backoff_usec(0, UINT32_MAX) <= 1 * S);
        CHECK(agent_backoff_usec(UINT32_MAX, UINT32_MAX) <= 60 * S);
        CHECK_EQ(agent_backoff_usec(UINT32_MAX, 60 * S), 60 * S);
}

TEST(agent_retry_delay)
{
        /* 503 with Retry-After: at least that, at most 20 % more */
        CHECK_EQ(agent_retry_delay_usec(AGENT_RETRY, 3, 5 * S, 0), 5 * S);
        CHECK_EQ(agent_retry_delay_usec(AGENT_RETRY, 3, 5 * S, 1 * S), 6 * S);
        CHECK(agent_retry_delay_usec(AGENT_RETRY, 3, 5 * S, UINT32_MAX) <= 6 * S);
        CHECK_EQ(agent_retry_delay_usec(AGENT_RETRY, 1, 3600 * S, 0), AGENT_MAX_RETRY_AFTER_USEC);
        /* without: the backoff */
        CHECK_EQ(agent_retry_delay_usec(AGENT_RETRY, 3, 0, 4 * S), 4 * S);
        CHECK_EQ(agent_retry_delay_usec(AGENT_RETRY, 3, 0, 4 * S + 1), 0);
        /* slow retries never spin, whatever the failures count */
        for (unsigned f = 0; f < 10; f++) {
                CHECK_EQ(agent_retry_delay_usec(AGENT_RETRY_SLOW, f, 0, 0), AGENT_SLOW_RETRY_USEC / 2);
                CHECK(agent_retry_delay_usec(AGENT_RETRY_SLOW, f, 9 * S, UINT32_MAX) <= AGENT_SLOW_RETRY_USEC);
        }
}

TEST(agent_heartbeat_delay)
{
        CHECK_EQ(agent_heartbeat_delay_usec(10, 0), 8 * S);
        CHECK_EQ(agent_heartbeat_delay_usec(10, 4 * S), 12 * S);
        CHECK(agent_heartbeat_delay_usec(10, UINT32_MAX) <= 12 * S);
        CHECK(agent_heartbeat_delay_usec(10, UINT32_MAX) >= 8 * S);
        CHECK_EQ(agent_heartbeat_delay_usec(0, 0), 800 * USEC_PER_MSEC);    /* clamped to 1 s */
        CHECK_EQ(agent_heartbeat_delay_usec(100000, 0), 3600 * S * 8 / 10);
}

TEST(agent_retry_after)
{
        static const struct {
                const char *in;
                int r;
                uint64_t usec;
        } cases[] = {
                { "5", 0, 5 * S },
                { " 120 \r\n", 0, 120 * S },
                { "0", 0, 1 * S },
                { "600", 0, 600 * S },
                { "601", 0, AGENT_MAX_RETRY_AFTER_USEC },
                { "99999999999999999999999999", 0, AGENT_MAX_RETRY_AFTER_USEC },
                { "", -EINVAL, 0 },
                { " \r\n", -EINVAL, 0 },
                { "-1", -EINVAL, 0 },
                { "1.5", -EINVAL, 0 },
                { "5 5", -EINVAL, 0 },
                { "Wed, 21 Oct 2015 07:28:00 GMT", -EINVAL, 0 },
        };

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                uint64_t usec = 42;

                CHECK_EQ(agent_retry_after_parse(cases[i].in, strlen(cases[i].in), &usec), cases[i].r);
                CHECK_EQ(usec, cases[i].r == 0 ? cases[i].usec : 42);
        }
}

static int cmdline(const char *text, struct agent_cmdline *ret)
{
        return agent_cmdline_parse(text, strlen(text), ret);
}

TEST(agent_cmdline)
{
        static const char nul_text[] = "metald.url=a\0metald.mac=b";
        struct agent_cmdline c;

        CHECK_EQ(cmdline("BOOT_IMAGE=/vmlinuz console=ttyS0 metald.url=http://10.0.0.1:8080 "
                         "metald.mac=52:54:00:12:34:56 metald.nonce=8Xq0rJ3m2vO1pZQy9dK6fA quiet\n", &c), 0);
        CHECK_STREQ(c.url, "http://10.0.0.1:8080");
        CHECK_STREQ(c.mac, "52:54:00:12:34:56");
        CHECK_STREQ(c.nonce, "8Xq0rJ3m2vO1pZQy9dK6fA");
        agent_cmdline_free(&c);
        CHECK(!c.text && !c.nonce);

        /* the last one wins; quotes are removed; look-alike keys are not ours */
        CHECK_EQ(cmdline("metald.url=http://a metald.url=\"http://b:1\" xmetald.mac=1 \"metald.mac=aa\" "
                         "metald.nonce= metald.urlx=c", &c), 0);
        CHECK_STREQ(c.url, "http://b:1");
        CHECK_STREQ(c.mac, "aa");
        CHECK_STREQ(c.nonce, "");
        agent_cmdline_free(&c);

        CHECK_EQ(cmdline("", &c), 0);
        CHECK(!c.url && !c.mac && !c.nonce);
        agent_cmdline_free(&c);
        CHECK_EQ(cmdline("metald.url=\"unterminated value", &c), 0);
        CHECK_STREQ(c.url, "unterminated value");
        agent_cmdline_free(&c);
        CHECK_EQ(cmdline("\"\" \"\" metald.mac=x\t\"\"", &c), 0);
        CHECK_STREQ(c.mac, "x");
        agent_cmdline_free(&c);
        /* NUL separates like a space */
        CHECK_EQ(agent_cmdline_parse(nul_text, sizeof(nul_text) - 1, &c), 0);
        CHECK_STREQ(c.url, "a");
        CHECK_STREQ(c.mac, "b");
        agent_cmdline_free(&c);
}

TEST(agent_url_check)
{
        static const struct {
                const char *in, *out;
        } cases[] = {
                { "http://10.0.0.1:8080", "http://10.0.0.1:8080" },
                { "http://10.0.0.1:8080/", "http://10.0.0.1:8080" },
                { "http://metald.example.com", "http://metald.example.com" },
                { "http://[fd00::1]:80", "http://[fd00::1]:80" },
                { "http://h:65535", "http://h:65535" },
                { "https://10.0.0.1", NULL },
                { "ftp://10.0.0.1", NULL },
                { "http://", NULL },
                { "http:///", NULL },
                { "http://10.0.0.1:0", NULL },
                { "http://10.0.0.1:65536", NULL },
                { "http://10.0.0.1:", NULL },
                { "http://10.0.0.1:80x", NULL },
                { "http://10.0.0.1/path", NULL },
                { "http://10.0.0.1//", NULL },
                { "http://user@host", NULL },
                { "http://host?q", NULL },
                { "http://-host", NULL },
                { "http://[]", NULL },
                { "http://[fd00::1", NULL },
                { "http://ho st", NULL },
                { "HTTP://host", NULL },
        };
        char out[AGENT_MAX_URL + 1];

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                int r = agent_url_check(cases[i].in, out, sizeof(out));

                if (cases[i].out) {
                        CHECK_EQ(r, 0);
                        CHECK_STREQ(out, cases[i].out);
                } else if (r != -EINVAL) {
                        fprintf(stderr, "  accepted %s\n", cases[i].in);
                        CHECK(false);
                }
        }
        CHECK_EQ(agent_url_check("http://10.0.0.1:8080", out, 10), -ENAMETOOLONG);
}

TEST(agent_nonce_check)
{
        CHECK_EQ(agent_nonce_check("8Xq0rJ3m2vO1pZQy9dK6fA"), 0);
        CHECK_EQ(agent_nonce_check("-_-_-_-_-_-_-_-_-_-_-_"), 0);
        CHECK_EQ(agent_nonce_check("8Xq0rJ3m2vO1pZQy9dK6f"), -EINVAL);
        CHECK_EQ(agent_nonce_check("8Xq0rJ3m2vO1pZQy9dK6fAA"), -EINVAL);
        CHECK_EQ(agent_nonce_check("8Xq0rJ3m2vO1pZQy9dK6f="), -EINVAL);
        CHECK_EQ(agent_nonce_check("8Xq0rJ3m2vO1pZQy9dK6f+"), -EINVAL);
        CHECK_EQ(agent_nonce_check(""), -EINVAL);
}
