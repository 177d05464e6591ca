/* SPDX-License-Identifier: Apache-2.0 */
#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <strings.h>

#include "metald/agent.h"
#include "metald/agent_install.h"
#include "metald/log.h"
#include "metald/util.h"
#include "metald/version.h"

/*
 * Ranges of the disk artifact over plain HTTP. The server is not trusted:
 * every chunk is verified by its digest afterwards, and here every reply is
 * held to what was asked. A Range request must get 206 with exactly the
 * Content-Range asked for; a 200 (a server that ignores Range) is taken only
 * when it is the whole file and that is exactly the chunk asked for (an image
 * whose disk file is one chunk). No reply may bring more bytes than asked.
 */

struct agent_http_fetcher {
        CURL *curl;
        char url[AGENT_MAX_URL + 1];
        char errbuf[CURL_ERROR_SIZE];
};

struct reply {
        uint8_t *buf;
        size_t cap, got;
        bool overflow;
        bool have_range, bad_range, have_length;
        uint64_t first, last, total, length;
};

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

/* Digits into *ret; advances *i. At most 19 digits, so no overflow. */
static int take_number(const char *s, size_t len, size_t *i, uint64_t *ret)
{
        uint64_t v = 0;
        size_t start = *i;

        while (*i < len && is_digit(s[*i]) && *i - start < 19)
                v = v * 10 + (uint64_t)(s[(*i)++] - '0');
        if (*i == start || (*i < len && is_digit(s[*i])))
                return -EBADMSG;
        *ret = v;
        return 0;
}

static size_t trim_end(const char *s, size_t len)
{
        while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r' || s[len - 1] == '\n'))
                len--;
        return len;
}

int agent_content_range_parse(const char *s, size_t len, uint64_t *ret_first, uint64_t *ret_last,
                              uint64_t *ret_total)
{
        uint64_t first, last, total;
        size_t i = 0;

        while (i < len && (s[i] == ' ' || s[i] == '\t'))
                i++;
        len = trim_end(s, len);
        if (len - MIN(len, i) < 6 || strncasecmp(s + i, "bytes ", 6) != 0)
                return -EBADMSG;
        i += 6;
        if (take_number(s, len, &i, &first) < 0 || i >= len || s[i++] != '-' ||
            take_number(s, len, &i, &last) < 0 || i >= len || s[i++] != '/' ||
            take_number(s, len, &i, &total) < 0 || i != len)
                return -EBADMSG;
        if (first > last || last >= total)
                return -EBADMSG;
        *ret_first = first;
        *ret_last = last;
        *ret_total = total;
        return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *userdata)
{
        struct reply *r = userdata;
        size_t len = size * n;

        if (len > r->cap - r->got) {
                r->overflow = true;
                return 0;       /* aborts the transfer */
        }
        memcpy(r->buf + r->got, p, len);
        r->got += len;
        return len;
}

static bool header_is(const char *p, size_t len, const char *name, size_t *ret_value)
{
        size_t n = strlen(name);

        if (len <= n || strncasecmp(p, name, n) != 0)
                return false;
        *ret_value = n;
        return true;
}

static size_t on_header(char *p, size_t size, size_t n, void *userdata)
{
        struct reply *r = userdata;
        size_t len = size * n, v, i;

        if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
                /* a new response: forget what an earlier one (a 100 Continue) said */
                r->have_range = r->bad_range = r->have_length = false;
        } else if (header_is(p, len, "Content-Range:", &v)) {
                r->have_range = agent_content_range_parse(p + v, len - v, &r->first, &r->last, &r->total) == 0;
                r->bad_range = !r->have_range;
        } else if (header_is(p, len, "Content-Length:", &v)) {
                i = v;
                while (i < len && (p[i] == ' ' || p[i] == '\t'))
                        i++;
                r->have_length = take_number(p, trim_end(p, len), &i, &r->length) == 0 && i == trim_end(p, len);
        }
        return len;
}

int agent_http_fetcher_new(const char *url, struct agent_http_fetcher **ret)
{
        struct agent_http_fetcher *f;

        if (!str_has_prefix(url, "http://"))
                return -EINVAL;
        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        if (str_copy(f->url, sizeof(f->url), url) < 0) {
                free(f);
                return -EINVAL;
        }
        f->curl = curl_easy_init();
        if (!f->curl) {
                free(f);
                return -ENOMEM;
        }
        if (curl_easy_setopt(f->curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
            curl_easy_setopt(f->curl, CURLOPT_PROTOCOLS_STR, "http") != CURLE_OK ||
            curl_easy_setopt(f->curl, CURLOPT_PROXY, "") != CURLE_OK ||
            curl_easy_setopt(f->curl, CURLOPT_URL, f->url) != CURLE_OK ||
            curl_easy_setopt(f->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)AGENT_CONNECT_TIMEOUT_MS) != CURLE_OK ||
            curl_easy_setopt(f->curl, CURLOPT_TIMEOUT_MS, (long)AGENT_INSTALL_CHUNK_TIMEOUT_MS) != CURLE_OK ||
            curl_easy_setopt(f->curl, CURLOPT_LOW_SPEED_LIMIT, (long)AGENT_INSTALL_LOW_SPEED_BYTES) != CURLE_OK ||
            curl_easy_setopt(f->curl, CURLOPT_LOW_SPEED_TIME, (long)AGENT_INSTALL_LOW_SPEED_S) != CURLE_OK ||
            curl_easy_setopt(f->curl, CURLOPT_USERAGENT, "metald-agent/" METALD_VERSION) != CURLE_OK ||
            curl_easy_setopt(f->curl, CURLOPT_ERRORBUFFER, f->errbuf) != CURLE_OK ||
            curl_easy_setopt(f->curl, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
            curl_easy_setopt(f->curl, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK) {
                agent_http_fetcher_free(f);
                return -EINVAL;
        }
        *ret = f;
        return 0;
}

void agent_http_fetcher_free(struct agent_http_fetcher *f)
{
        if (!f)
                return;
        if (f->curl)
                curl_easy_cleanup(f->curl);
        free(f);
}

static bool transient(CURLcode cc)
{
        switch (cc) {
        case CURLE_URL_MALFORMAT:
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_OUT_OF_MEMORY:
        case CURLE_TOO_MANY_REDIRECTS:
                return false;
        default:
                return true;    /* refused, reset, timed out, cut short: the next try may get through */
        }
}

/* What the reply says about the bytes it brought: 0 when they are the range asked for. */
static int check_reply(const struct reply *r, long status, uint64_t offset, size_t length, char *why, size_t cap)
{
        if (status == 206) {
                if (!r->have_range || r->first != offset || r->last != offset + length - 1) {
                        snprintf(why, cap, "206 without the Content-Range bytes %" PRIu64 "-%" PRIu64 "/*", offset,
                                 offset + length - 1);
                        return -EBADMSG;
                }
                return 0;
        }
        if (status == 200) {
                if (offset != 0 || r->have_range || !r->have_length || r->length != length || r->got != length) {
                        snprintf(why, cap, "200 to a Range request, and not a whole file of exactly %zu bytes",
                                 length);
                        return -EBADMSG;
                }
                return 0;
        }
        snprintf(why, cap, "HTTP %ld", status);
        return status >= 500 || status == 408 || status == 429 ? -EAGAIN : -ENOENT;
}

int agent_http_fetch(void *userdata, uint64_t offset, size_t length, uint8_t *buf, size_t *ret_got, char *why,
                     size_t why_cap)
{
        struct agent_http_fetcher *f = userdata;
        struct reply r = { .buf = buf, .cap = length };
        char range[64], esc[CURL_ERROR_SIZE];
        long status = 0;
        CURLcode cc;
        int k;

        if (length == 0 || offset > UINT64_MAX - length)
                return -EINVAL;
        snprintf(range, sizeof(range), "%" PRIu64 "-%" PRIu64, offset, offset + length - 1);
        f->errbuf[0] = '\0';
        curl_easy_setopt(f->curl, CURLOPT_RANGE, range);
        curl_easy_setopt(f->curl, CURLOPT_WRITEDATA, &r);
        curl_easy_setopt(f->curl, CURLOPT_HEADERDATA, &r);
        cc = curl_easy_perform(f->curl);
        curl_easy_getinfo(f->curl, CURLINFO_RESPONSE_CODE, &status);
        if (r.overflow) {
                snprintf(why, why_cap, "HTTP %ld: more than the %zu bytes asked for", status, length);
                return -EBADMSG;
        }
        if (r.bad_range) {
                snprintf(why, why_cap, "HTTP %ld: malformed Content-Range", status);
                return -EBADMSG;
        }
        if (cc != CURLE_OK) {
                const char *e = f->errbuf[0] ? f->errbuf : curl_easy_strerror(cc);

                snprintf(why, why_cap, "%s", log_escape(esc, sizeof(esc), e, strnlen(e, sizeof(f->errbuf))));
                return transient(cc) ? -EAGAIN : -EINVAL;
        }
        k = check_reply(&r, status, offset, length, why, why_cap);
        if (k < 0)
                return k;
        *ret_got = r.got;
        return 0;
}
