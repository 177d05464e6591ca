/* SPDX-License-Identifier: Apache-2.0 */
#include <curl/curl.h>
#include <stdio.h>
#include <strings.h>

#include "metald/agent.h"
#include "metald/log.h"
#include "metald/util.h"
#include "metald/version.h"

#define AUTH_PREFIX "Authorization: Bearer "

struct agent_client {
        CURL *curl;
        char base[AGENT_MAX_URL + 1];
        char auth[sizeof(AUTH_PREFIX) + AGENT_MAX_SESSION];     /* empty until registered */
        char errbuf[CURL_ERROR_SIZE];
};

/* What one exchange brought back. */
struct response {
        struct buf body;
        bool too_big;
        uint64_t retry_after_usec;
};

enum agent_verdict agent_classify(enum agent_call call, long status)
{
        if (status == 200)
                return AGENT_OK;
        /* no answer, a server error, or a proxy asking to come back later */
        if (status == 0 || status >= 500 || status == 408 || status == 429)
                return AGENT_RETRY;
        if (status == 401)
                return AGENT_UNAUTHORIZED;
        if (status == 409 && call == AGENT_CALL_EVENT)
                return AGENT_REFUSED;
        return AGENT_RETRY_SLOW;
}

uint64_t agent_backoff_usec(unsigned failures, uint32_t rnd)
{
        uint64_t cap = AGENT_BACKOFF_MIN_USEC;

        for (unsigned i = 1; i < failures && cap < AGENT_BACKOFF_MAX_USEC; i++)
                cap *= 2;
        cap = MIN(cap, AGENT_BACKOFF_MAX_USEC);
        return rnd % (cap + 1);
}

uint64_t agent_retry_delay_usec(enum agent_verdict v, unsigned failures, uint64_t retry_after_usec, uint32_t rnd)
{
        if (v == AGENT_RETRY && retry_after_usec > 0) {
                /* at least what metald asked for; a little more so a storm of agents spreads out */
                retry_after_usec = MIN(retry_after_usec, AGENT_MAX_RETRY_AFTER_USEC);
                return retry_after_usec + rnd % (retry_after_usec / 5 + 1);
        }
        if (v == AGENT_RETRY)
                return agent_backoff_usec(failures, rnd);
        return AGENT_SLOW_RETRY_USEC / 2 + rnd % (AGENT_SLOW_RETRY_USEC / 2 + 1);
}

uint64_t agent_heartbeat_delay_usec(unsigned heartbeat_s, uint32_t rnd)
{
        uint64_t base;

        heartbeat_s = MAX(heartbeat_s, (unsigned)AGENT_MIN_HEARTBEAT_S);
        heartbeat_s = MIN(heartbeat_s, (unsigned)AGENT_MAX_HEARTBEAT_S);
        base = heartbeat_s * USEC_PER_SEC;
        return base - base / 5 + rnd % (2 * (base / 5) + 1);
}

int agent_retry_after_parse(const char *s, size_t len, uint64_t *ret_usec)
{
        uint64_t secs = 0;
        size_t i = 0;

        while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r' || s[len - 1] == '\n'))
                len--;
        while (i < len && (s[i] == ' ' || s[i] == '\t'))
                i++;
        if (i == len)
                return -EINVAL;
        for (; i < len; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                if (secs <= AGENT_MAX_RETRY_AFTER_USEC / USEC_PER_SEC)
                        secs = secs * 10 + (uint64_t)(s[i] - '0');
        }
        *ret_usec = MAX(MIN(secs * USEC_PER_SEC, AGENT_MAX_RETRY_AFTER_USEC), AGENT_BACKOFF_MIN_USEC);
        return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *userdata)
{
        struct response *resp = userdata;
        int r = buf_append(&resp->body, p, size * n);

        if (r < 0) {
                resp->too_big = r == -E2BIG;
                return 0;       /* aborts the transfer */
        }
        return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *userdata)
{
        static const char name[] = "Retry-After:";
        struct response *resp = userdata;
        size_t len = size * n;
        uint64_t usec;

        if (len >= 5 && memcmp(p, "HTTP/", 5) == 0)
                resp->retry_after_usec = 0;     /* a new response (after a 100 Continue) */
        else if (len > strlen(name) && strncasecmp(p, name, strlen(name)) == 0 &&
                 agent_retry_after_parse(p + strlen(name), len - strlen(name), &usec) == 0)
                resp->retry_after_usec = usec;
        return len;
}

int agent_client_new(const char *base_url, struct agent_client **ret)
{
        struct agent_client *c = calloc(1, sizeof(*c));

        if (!c)
                return -ENOMEM;
        if (str_copy(c->base, sizeof(c->base), base_url) < 0) {
                free(c);
                return -EINVAL;
        }
        c->curl = curl_easy_init();
        if (!c->curl) {
                free(c);
                return -ENOMEM;
        }
        if (curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
            curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http") != CURLE_OK ||
            curl_easy_setopt(c->curl, CURLOPT_PROXY, "") != CURLE_OK ||        /* metald is on this network */
            curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)AGENT_CONNECT_TIMEOUT_MS) != CURLE_OK ||
            curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, (long)AGENT_REQUEST_TIMEOUT_MS) != CURLE_OK ||
            curl_easy_setopt(c->curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)AGENT_MAX_BODY_BYTES) != CURLE_OK ||
            curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "metald-agent/" METALD_VERSION) != CURLE_OK ||
            curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->errbuf) != CURLE_OK ||
            curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
            curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK) {
                agent_client_free(c);
                return -EINVAL;
        }
        *ret = c;
        return 0;
}

void agent_client_free(struct agent_client *c)
{
        if (!c)
                return;
        if (c->curl)
                curl_easy_cleanup(c->curl);
        explicit_bzero(c->auth, sizeof(c->auth));
        free(c);
}

int agent_client_set_session(struct agent_client *c, const char *secret)
{
        size_t n = strlen(secret);

        if (n == 0 || n > AGENT_MAX_SESSION || strcspn(secret, "\r\n") != n)
                return -EINVAL;
        memcpy(c->auth, AUTH_PREFIX, strlen(AUTH_PREFIX));
        memcpy(c->auth + strlen(AUTH_PREFIX), secret, n + 1);
        return 0;
}

static void wipe_buf(struct buf *b)
{
        if (b->data)
                explicit_bzero(b->data, b->alloc);
        buf_free(b);
}

static void free_headers(struct curl_slist *headers)
{
        for (struct curl_slist *h = headers; h; h = h->next)
                explicit_bzero(h->data, strlen(h->data));
        curl_slist_free_all(headers);
}

static struct curl_slist *request_headers(const struct agent_client *c, enum agent_call call, bool has_body)
{
        struct curl_slist *headers = NULL, *next;
        const char *lines[] = {
                "Accept: application/json",
                "Expect:",      /* no 100-continue round trip */
                has_body ? "Content-Type: application/json" : NULL,
                call != AGENT_CALL_REGISTER && c->auth[0] ? c->auth : NULL,
        };

        for (size_t i = 0; i < ARRAY_SIZE(lines); i++) {
                if (!lines[i])
                        continue;
                next = curl_slist_append(headers, lines[i]);
                if (!next) {
                        free_headers(headers);
                        return NULL;
                }
                headers = next;
        }
        return headers;
}

static void describe_failure(struct agent_result *res, enum agent_call call, const struct response *resp)
{
        char sentence[400];

        if (resp->body.len && agent_error_parse(resp->body.data, resp->body.len, sentence, sizeof(sentence)) == 0)
                snprintf(res->why, sizeof(res->why), "%s: HTTP %ld: %s", agent_call_name(call), res->status,
                         sentence);
        else
                snprintf(res->why, sizeof(res->why), "%s: HTTP %ld", agent_call_name(call), res->status);
}

/* One exchange: fills *res with the verdict; 0 only for a 200. */
static int perform(struct agent_client *c, enum agent_call call, const char *path, const struct buf *request,
                   struct response *resp, struct agent_result *res)
{
        struct curl_slist *headers = request_headers(c, call, request != NULL);
        char url[AGENT_MAX_URL + 64], esc[CURL_ERROR_SIZE];
        CURLcode cc;

        if (!headers)
                return -ENOMEM;
        snprintf(url, sizeof(url), "%s%s", c->base, path);
        c->errbuf[0] = '\0';
        curl_easy_setopt(c->curl, CURLOPT_URL, url);
        curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, resp);
        curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, resp);
        if (request) {
                curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)request->len);
                curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, request->data ? request->data : "");
        } else {
                curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
        }
        cc = curl_easy_perform(c->curl);
        curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, NULL);
        free_headers(headers);
        if (cc != CURLE_OK) {
                res->verdict = resp->too_big || cc == CURLE_FILESIZE_EXCEEDED ? AGENT_RETRY_SLOW : AGENT_RETRY;
                if (resp->too_big || cc == CURLE_FILESIZE_EXCEEDED)
                        str_copy(c->errbuf, sizeof(c->errbuf), "response body over 64 KiB");
                else if (!c->errbuf[0])
                        str_copy(c->errbuf, sizeof(c->errbuf), curl_easy_strerror(cc));
                snprintf(res->why, sizeof(res->why), "%s: %s", agent_call_name(call),
                         log_escape(esc, sizeof(esc), c->errbuf, strnlen(c->errbuf, sizeof(c->errbuf))));
                return -EIO;
        }
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &res->status);
        res->verdict = agent_classify(call, res->status);
        if (res->verdict == AGENT_OK)
                return 0;
        if (res->status == 503)
                res->retry_after_usec = resp->retry_after_usec;
        describe_failure(res, call, resp);
        return -EIO;
}

static int call(struct agent_client *c, enum agent_call call, const char *path, const struct buf *request,
                struct agent_response *ret, struct agent_result *res)
{
        static const char *const methods[_AGENT_CALL_MAX] = {
                [AGENT_CALL_REGISTER] = "POST", [AGENT_CALL_HEARTBEAT] = "POST",
                [AGENT_CALL_INSTRUCTION] = "GET", [AGENT_CALL_EVENT] = "POST",
        };
        struct response resp = { .body = BUF_INIT(AGENT_MAX_BODY_BYTES) };
        char why[256];
        int r;

        r = perform(c, call, path, request, &resp, res);
        if (r == 0) {
                r = agent_response_parse(call, resp.body.data ? resp.body.data : "", resp.body.len, ret, why,
                                      sizeof(why));
                if (r < 0) {
                        res->verdict = AGENT_RETRY_SLOW;
                        snprintf(res->why, sizeof(res->why), "%s: malformed response to %s %s: %s",
                                 agent_call_name(call), methods[call], path, why);
                }
        } else if (r == -ENOMEM) {
                res->verdict = AGENT_RETRY_SLOW;
                snprintf(res->why, sizeof(res->why), "%s: out of memory", agent_call_name(call));
        }
        wipe_buf(&resp.body);
        return r;
}

static int local_failure(struct agent_result *res, enum agent_call call, int r)
{
        res->verdict = AGENT_RETRY_SLOW;
        snprintf(res->why, sizeof(res->why), "%s: cannot build the request: %s", agent_call_name(call),
                 strerror(-r));
        return r;
}

int agent_register(struct agent_client *c, const char *nonce, const char *boot_mac,
                   const struct agent_inventory *inv, struct agent_response *ret, struct agent_result *ret_result)
{
        struct buf req = BUF_INIT(AGENT_MAX_BODY_BYTES);
        size_t trimmed = 0;
        int r;

        *ret_result = (struct agent_result){ 0 };
        r = agent_register_request(nonce, boot_mac, inv, &req, &trimmed);
        if (r < 0) {
                wipe_buf(&req);
                return local_failure(ret_result, AGENT_CALL_REGISTER, r);
        }
        ret_result->trimmed = trimmed;
        r = call(c, AGENT_CALL_REGISTER, "/v1/agent/register", &req, ret, ret_result);
        wipe_buf(&req);
        return r;
}

int agent_heartbeat(struct agent_client *c, int progress, const char *status, struct agent_response *ret,
                    struct agent_result *ret_result)
{
        struct buf req = BUF_INIT(AGENT_MAX_BODY_BYTES);
        int r;

        *ret_result = (struct agent_result){ 0 };
        r = agent_heartbeat_request(progress, status, &req);
        if (r == 0)
                r = call(c, AGENT_CALL_HEARTBEAT, "/v1/agent/heartbeat", &req, ret, ret_result);
        else
                local_failure(ret_result, AGENT_CALL_HEARTBEAT, r);
        buf_free(&req);
        return r;
}

int agent_fetch_instruction(struct agent_client *c, struct agent_response *ret, struct agent_result *ret_result)
{
        *ret_result = (struct agent_result){ 0 };
        return call(c, AGENT_CALL_INSTRUCTION, "/v1/agent/instruction", NULL, ret, ret_result);
}

int agent_send_event(struct agent_client *c, enum agent_event ev, const char *detail, int progress,
                     struct agent_response *ret, struct agent_result *ret_result)
{
        struct buf req = BUF_INIT(AGENT_MAX_BODY_BYTES);
        int r;

        *ret_result = (struct agent_result){ 0 };
        r = agent_event_request(ev, detail, progress, &req);
        if (r == 0)
                r = call(c, AGENT_CALL_EVENT, "/v1/agent/events", &req, ret, ret_result);
        else
                local_failure(ret_result, AGENT_CALL_EVENT, r);
        buf_free(&req);
        return r;
}

/* A file metald hands this machine's session (GET with the bearer), at most cap bytes. */
static int fetch_file(struct agent_client *c, const char *path, size_t cap, struct buf *ret, struct agent_result *res)
{
        struct response resp = { .body = BUF_INIT(cap) };
        const char *rest;
        char why[sizeof(res->why)];
        int r;

        curl_easy_setopt(c->curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)cap);
        r = perform(c, AGENT_CALL_INSTRUCTION, path, NULL, &resp, res);
        curl_easy_setopt(c->curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)AGENT_MAX_BODY_BYTES);
        if (r == 0) {
                *ret = resp.body;
                return 0;
        }
        if (resp.too_big)
                snprintf(res->why, sizeof(res->why), "GET %s: more than %zu bytes", path, cap);
        else if ((rest = strchr(res->why, ':'))) {
                snprintf(why, sizeof(why), "GET %s%s", path, rest);
                memcpy(res->why, why, sizeof(why));
        }
        buf_free(&resp.body);
        return r;
}

int agent_fetch_image_manifest(struct agent_client *c, struct buf *ret_manifest, struct buf *ret_sig,
                               struct agent_result *ret_result)
{
        struct buf manifest = BUF_INIT(0), sig = BUF_INIT(0);
        int r;

        *ret_result = (struct agent_result){ 0 };
        r = fetch_file(c, "/v1/agent/image/manifest", IMAGE_MAX_MANIFEST_BYTES, &manifest, ret_result);
        if (r == 0)
                r = fetch_file(c, "/v1/agent/image/manifest.sig", AGENT_INSTALL_MAX_SIG_BYTES, &sig, ret_result);
        if (r < 0) {
                buf_free(&manifest);
                return r;
        }
        *ret_manifest = manifest;
        *ret_sig = sig;
        return 0;
}
