/* SPDX-License-Identifier: Apache-2.0 */
#include "metald/http.h"
#include "metald/util.h"
#include "test.h"

TEST(http_range_forms)
{
        static const struct {
                const char *header;
                uint64_t size;
                int r;
                uint64_t offset, length;
        } cases[] = {
                { "bytes=0-9", 100, 0, 0, 10 },
                { "bytes=10-", 100, 0, 10, 90 },
                { "bytes=-10", 100, 0, 90, 10 },
                { "bytes=-1000", 100, 0, 0, 100 },              /* suffix longer than the file: all of it */
                { "bytes=90-1000", 100, 0, 90, 10 },            /* last-pos clamped */
                { "bytes=99-99", 100, 0, 99, 1 },
                { "BYTES = 0-0", 100, 0, 0, 1 },                /* unit is case-insensitive, OWS allowed */
                { "bytes=0-0,", 100, 0, 0, 1 },                 /* empty list elements are ignored */
                { "bytes=, ,5-6", 100, 0, 5, 2 },
                { "bytes=100-", 100, -ERANGE, 0, 0 },
                { "bytes=100-200", 100, -ERANGE, 0, 0 },
                { "bytes=-0", 100, -ERANGE, 0, 0 },
                { "bytes=-5", 0, -ERANGE, 0, 0 },
                { "bytes=0-", 0, -ERANGE, 0, 0 },
                { "bytes=99999999999999999999999-", 100, -ERANGE, 0, 0 },      /* saturates, past the end */
                { "bytes=0-99999999999999999999999", 100, 0, 0, 100 },
                { "bytes=-99999999999999999999999", 100, 0, 0, 100 },
                { "bytes=5-4", 100, -EINVAL, 0, 0 },
                { "bytes=", 100, -EINVAL, 0, 0 },
                { "bytes=,", 100, -EINVAL, 0, 0 },
                { "bytes=a-b", 100, -EINVAL, 0, 0 },
                { "bytes=1-2x", 100, -EINVAL, 0, 0 },
                { "bytes=--1", 100, -EINVAL, 0, 0 },
                { "bytes=+1-2", 100, -EINVAL, 0, 0 },
                { "bytes 0-1", 100, -EINVAL, 0, 0 },
                { "items=0-1", 100, -EINVAL, 0, 0 },
                { "bytes=0-1,5-6", 100, -EOPNOTSUPP, 0, 0 },
                { "bytes=0-1,x", 100, -EINVAL, 0, 0 },
                { "", 100, -EINVAL, 0, 0 },
                { "bytes=4294967296-4294967305", 5ULL << 30, 0, 4294967296ULL, 10 },   /* past 4 GiB */
                { "bytes=-1", 5ULL << 30, 0, (5ULL << 30) - 1, 1 },
        };

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                uint64_t off = 7, len = 7;
                int r = http_range_parse(cases[i].header, cases[i].size, &off, &len);

                if (r != cases[i].r)
                        fprintf(stderr, "  case %zu: %s\n", i, cases[i].header);
                CHECK_EQ(r, cases[i].r);
                if (r == 0) {
                        CHECK_EQ(off, cases[i].offset);
                        CHECK_EQ(len, cases[i].length);
                }
        }
}

TEST(http_etag_lists)
{
        static const char etag[] = "\"abc\"";
        static const struct {
                const char *list;
                bool weak, match;
        } cases[] = {
                { "\"abc\"", false, true },
                { "\"abc\"", true, true },
                { "W/\"abc\"", true, true },
                { "W/\"abc\"", false, false },          /* strong comparison never matches a weak tag */
                { "\"x\", \"abc\"", false, true },
                { "\"x\",\"abc\"", true, true },
                { " *", false, true },
                { "*, \"x\"", false, false },           /* '*' only stands alone */
                { "\"ab\"", true, false },
                { "\"abcd\"", true, false },
                { "abc", true, false },                 /* unquoted: not an entity-tag */
                { "\"abc", true, false },
                { "", true, false },
                { "\"x\" junk \"abc\"", true, false },  /* malformed list: no match */
        };

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
                CHECK_EQ(http_etag_match(cases[i].list, etag, cases[i].weak), cases[i].match);
        CHECK(http_etag_match("*", NULL, true));
        CHECK(!http_etag_match("\"abc\"", NULL, true));
}

TEST(http_dates)
{
        static const struct {
                const char *s;
                int64_t t;
        } good[] = {
                { "Sun, 06 Nov 1994 08:49:37 GMT", 784111777 },
                { "Sunday, 06-Nov-94 08:49:37 GMT", 784111777 },
                { "Sun Nov  6 08:49:37 1994", 784111777 },
                { "Thu, 01 Jan 1970 00:00:00 GMT", 0 },
                { "Tue, 29 Feb 2000 12:00:00 GMT", 951825600 },
                { "Fri, 31 Dec 9999 23:59:59 GMT", 253402300799 },
                { "Wed, 30 Jun 2027 23:59:60 GMT", 1814399999 },   /* leap second: the second before */
        };
        static const char *const bad[] = {
                "", "Sun, 06 Nov 1994 08:49:37", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 6 Nov 1994 08:49:37 GMT",
                "Sun, 06 Nov 1994 08:49:37 GMT ", "Sun, 31 Feb 1994 08:49:37 GMT", "Sun, 29 Feb 1900 08:49:37 GMT",
                "Sun, 06 Xyz 1994 08:49:37 GMT", "Sun, 06 Nov 1994 24:00:00 GMT", "Sun, 06 Nov 1994 08:60:00 GMT",
                "Funday, 06-Nov-94 08:49:37 GMT", "Sun, 00 Nov 1994 08:49:37 GMT", "1994-11-06T08:49:37Z",
                "Sun, 06 Nov 1994 8:49:37 GMT", "Sun Nov 6 08:49:37 1994",
        };
        char buf[HTTP_DATE_BYTES];
        int64_t t;

        for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
                CHECK_EQ(http_date_parse(good[i].s, &t), 0);
                CHECK_EQ(t, good[i].t);
        }
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                if (http_date_parse(bad[i], &t) == 0)
                        fprintf(stderr, "  accepted: %s\n", bad[i]);
                CHECK_EQ(http_date_parse(bad[i], &t), -EINVAL);
        }
        http_date_format(784111777, buf);
        CHECK_STREQ(buf, "Sun, 06 Nov 1994 08:49:37 GMT");
        http_date_format(0, buf);
        CHECK_STREQ(buf, "Thu, 01 Jan 1970 00:00:00 GMT");
        http_date_format(-1, buf);
        CHECK_STREQ(buf, "Wed, 31 Dec 1969 23:59:59 GMT");
        /* round trip across leap years and centuries */
        for (int64_t x = -86400LL * 400 * 365; x < 86400LL * 365 * 200; x += 86400LL * 37 + 3607) {
                http_date_format(x, buf);
                CHECK_EQ(http_date_parse(buf, &t), 0);
                CHECK_EQ(t, x);
        }
}

static struct http_decision decide(const struct http_preconditions *p, bool is_get)
{
        struct http_validators v = { .size = 1000, .mtime = 784111777, .etag = "\"e1\"" };
        struct http_decision d;

        http_decide(&v, p, is_get, 784111777 + 10, &d);
        return d;
}

TEST(http_decide_conditionals)
{
        static const char lm[] = "Sun, 06 Nov 1994 08:49:37 GMT";
        static const char before[] = "Sun, 06 Nov 1994 08:49:36 GMT";
        static const struct {
                struct http_preconditions p;
                bool is_get;
                unsigned status;
                uint64_t offset, length;
        } cases[] = {
                { { 0 }, true, 200, 0, 1000 },
                { { .range = "bytes=0-9" }, true, 206, 0, 10 },
                { { .range = "bytes=0-9" }, false, 200, 0, 1000 },      /* HEAD: Range is for GET only */
                { { .range = "bytes=2000-" }, true, 416, 0, 0 },
                { { .range = "bytes=0-1,3-4" }, true, 200, 0, 1000 },
                { { .range = "garbage" }, true, 200, 0, 1000 },
                { { .range = "bytes=-10", .if_range = "\"e1\"" }, true, 206, 990, 10 },
                { { .range = "bytes=-10", .if_range = "\"e2\"" }, true, 200, 0, 1000 },
                { { .range = "bytes=-10", .if_range = "W/\"e1\"" }, true, 200, 0, 1000 },
                { { .range = "bytes=-10", .if_range = lm }, true, 206, 990, 10 },
                { { .range = "bytes=-10", .if_range = before }, true, 200, 0, 1000 },
                { { .range = "bytes=-10", .if_range = "yesterday" }, true, 200, 0, 1000 },
                { { .if_none_match = "\"e1\"" }, true, 304, 0, 1000 },
                { { .if_none_match = "W/\"e1\"" }, false, 304, 0, 1000 },
                { { .if_none_match = "*" }, true, 304, 0, 1000 },
                { { .if_none_match = "\"e2\"", .range = "bytes=0-0" }, true, 206, 0, 1 },
                { { .if_none_match = "\"e2\"", .if_modified_since = lm }, true, 200, 0, 1000 },    /* INM wins */
                { { .if_modified_since = lm }, true, 304, 0, 1000 },
                { { .if_modified_since = before }, true, 200, 0, 1000 },
                { { .if_modified_since = "not a date" }, true, 200, 0, 1000 },
                { { .if_match = "\"e1\"", .range = "bytes=0-0" }, true, 206, 0, 1 },
                { { .if_match = "\"e2\"" }, true, 412, 0, 1000 },
                { { .if_match = "W/\"e1\"" }, true, 412, 0, 1000 },
                { { .if_match = "*" }, true, 200, 0, 1000 },
                { { .if_unmodified_since = before }, true, 412, 0, 1000 },
                { { .if_unmodified_since = lm }, true, 200, 0, 1000 },
                { { .if_match = "\"e1\"", .if_unmodified_since = before }, true, 200, 0, 1000 },
        };

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                struct http_decision d = decide(&cases[i].p, cases[i].is_get);

                if (d.status != cases[i].status)
                        fprintf(stderr, "  case %zu\n", i);
                CHECK_EQ(d.status, cases[i].status);
                if (d.status == 200 || d.status == 206) {
                        CHECK_EQ(d.offset, cases[i].offset);
                        CHECK_EQ(d.length, cases[i].length);
                }
        }
}

TEST(http_decide_unknown_etag)
{
        struct http_validators v = { .size = 10, .mtime = 100, .etag = NULL };
        struct http_decision d;

        http_decide(&v, &(struct http_preconditions){ .if_none_match = "\"x\"" }, true, 1000, &d);
        CHECK_EQ(d.status, 200);
        http_decide(&v, &(struct http_preconditions){ .range = "bytes=0-0", .if_range = "\"x\"" }, true, 1000, &d);
        CHECK_EQ(d.status, 200);
        /* a date validator only counts once the file is a second old */
        http_decide(&v, &(struct http_preconditions){ .range = "bytes=0-0", .if_range = "Thu, 01 Jan 1970 00:01:40 GMT" },
                    true, 100, &d);
        CHECK_EQ(d.status, 200);
        http_decide(&v, &(struct http_preconditions){ .range = "bytes=0-0", .if_range = "Thu, 01 Jan 1970 00:01:40 GMT" },
                    true, 101, &d);
        CHECK_EQ(d.status, 206);
}

TEST(http_content_types)
{
        CHECK_STREQ(http_content_type("/ipxe.efi"), "application/efi");
        CHECK_STREQ(http_content_type("/EFI/BOOT/BOOTX64.EFI"), "application/efi");
        CHECK_STREQ(http_content_type("/boot.ipxe"), "text/plain; charset=utf-8");
        CHECK_STREQ(http_content_type("/live.iso"), "application/vnd.efi-iso");
        CHECK_STREQ(http_content_type("/disk.img"), "application/vnd.efi-img");
        CHECK_STREQ(http_content_type("/a.tar.zst"), "application/zstd");
        CHECK_STREQ(http_content_type("/vmlinuz"), "application/octet-stream");
        CHECK_STREQ(http_content_type("/dir/.efi"), "application/octet-stream");
        CHECK_STREQ(http_content_type(""), "application/octet-stream");
}
