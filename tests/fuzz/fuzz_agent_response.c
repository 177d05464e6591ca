/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What metald (or anything answering in its place) sends the agent: the
 * body of a response to each call, an error body, and the boot parameters
 * the agent reads. Parsers must refuse or produce values that hold their
 * invariants; reasons for refusals must be safe to log.
 *
 * Input: one byte of mode, then the bytes under test.
 *   mode % 8 = 0..3  response to register, heartbeat, instruction, event
 *              4     error body
 *              5     kernel command line, then its values checked
 *              6     text cleaning (the next byte is the buffer size)
 *              7     Retry-After value
 */
#include <stdlib.h>
#include <string.h>

#include "metald/agent.h"
#include "metald/util.h"

static void require(bool ok)
{
        if (!ok)
                abort();
}

static bool loggable(const char *s, size_t cap)
{
        size_t n = strnlen(s, cap);

        if (n == cap)
                return false;
        for (size_t i = 0; i < n; i++)
                if ((uint8_t)s[i] < 0x20 || (uint8_t)s[i] >= 0x7f)
                        return false;
        return true;
}

static bool in_charset(const char *s, const char *set)
{
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                      strchr(set, *s)))
                        return false;
        return true;
}

static void check_instruction(const struct agent_instruction *in)
{
        require((unsigned)in->action < _AGENT_ACTION_MAX);
        require(strnlen(in->reason, sizeof(in->reason)) < sizeof(in->reason));
        require(agent_text_printable(in->reason, strlen(in->reason)));
        if (in->action != AGENT_ACTION_INSTALL)
                return;
        require(str_has_prefix(in->image.url, "http://") || str_has_prefix(in->image.url, "https://"));
        require(strlen(in->image.sha256) == AGENT_SHA256_CHARS &&
                strspn(in->image.sha256, "0123456789abcdef") == AGENT_SHA256_CHARS);
        require(in->image.size >= 1 && in->image.size <= AGENT_MAX_IMAGE_BYTES);
        {
                struct agent_disk_rule rule;

                require(agent_disk_rule_parse(in->image.disk, strlen(in->image.disk), &rule) == 0);
                require(rule.kind == AGENT_DISK_SERIAL || !strstr(in->image.disk, ".."));
        }
        require(in->image.version >= 1 && in->image.version <= AGENT_MAX_IMAGE_VERSION);
        require(in->image.name[0] && in_charset(in->image.name, "._-"));
        require(in->image.hostname[0] && in_charset(in->image.hostname, ".-"));
}

static void check_response(enum agent_call call, const char *body, size_t len)
{
        struct agent_response r;
        char why[256];
        struct agent_instruction copy;

        memset(why, 'x', sizeof(why));
        if (agent_response_parse(call, body, len, &r, why, sizeof(why)) < 0) {
                require(loggable(why, sizeof(why)));
                return;
        }
        require(r.state[0] && strnlen(r.state, sizeof(r.state)) < sizeof(r.state) && in_charset(r.state, "_-"));
        if (call == AGENT_CALL_REGISTER) {
                require(r.machine[0] && in_charset(r.machine, "._-"));
                require(strlen(r.session) >= AGENT_MIN_SESSION && in_charset(r.session, "-_="));
        } else {
                require(!r.session[0] && (!r.machine[0] || in_charset(r.machine, "._-")));
        }
        if (call == AGENT_CALL_REGISTER || call == AGENT_CALL_HEARTBEAT || r.heartbeat_seconds)
                require(r.heartbeat_seconds >= AGENT_MIN_HEARTBEAT_S && r.heartbeat_seconds <= AGENT_MAX_HEARTBEAT_S);
        check_instruction(&r.instruction);
        copy = r.instruction;
        require(agent_instruction_equal(&copy, &r.instruction));
        agent_response_wipe(&r);
        require(!r.session[0]);
}

static void check_cmdline(const char *text, size_t len)
{
        struct agent_cmdline c;
        char url[AGENT_MAX_URL + 1];
        uint8_t mac[6];

        if (agent_cmdline_parse(text, len, &c) < 0)
                return;
        if (c.url && agent_url_check(c.url, url, sizeof(url)) == 0) {
                require(str_has_prefix(url, "http://") && strlen(url) > 7 && url[strlen(url) - 1] != '/');
                require(strlen(url) <= strlen(c.url));
        }
        if (c.mac)
                (void)parse_mac(c.mac, mac);
        if (c.nonce && agent_nonce_check(c.nonce) == 0)
                require(strlen(c.nonce) == AGENT_NONCE_CHARS && in_charset(c.nonce, "-_"));
        agent_cmdline_free(&c);
}

static void check_clean(const uint8_t *data, size_t size)
{
        char out[256];
        size_t cap, n;

        if (size < 1)
                return;
        cap = data[0];
        n = agent_text_clean(out, cap, data + 1, size - 1);
        if (cap == 0) {
                require(n == 0);
                return;
        }
        require(n < cap && strlen(out) == n && agent_text_printable(out, n));
        require(n == 0 || (out[0] != ' ' && out[n - 1] != ' '));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *text, err[128];
        uint64_t usec;
        unsigned mode;

        if (size < 1 || size > 2 * AGENT_MAX_BODY_BYTES)
                return 0;
        mode = data[0] % 8;
        /* a private copy, so reads past the end are caught */
        text = malloc(size - 1 ? size - 1 : 1);
        if (!text)
                return 0;
        memcpy(text, data + 1, size - 1);
        if (mode < 4)
                check_response((enum agent_call)mode, text, size - 1);
        else if (mode == 4 && agent_error_parse(text, size - 1, err, sizeof(err)) == 0)
                require(loggable(err, sizeof(err)));
        else if (mode == 5)
                check_cmdline(text, size - 1);
        else if (mode == 6)
                check_clean((const uint8_t *)text, size - 1);
        else if (mode == 7 && agent_retry_after_parse(text, size - 1, &usec) == 0)
                require(usec >= AGENT_BACKOFF_MIN_USEC && usec <= AGENT_MAX_RETRY_AFTER_USEC);
        free(text);
        return 0;
}
