/* SPDX-License-Identifier: Apache-2.0 */
#include <json-c/json.h>
#include <stdio.h>

#include "metald/log.h"
#include "metald/power_wire.h"
#include "metald/util.h"

static json_object *parse_object(const char *s, size_t len)
{
        struct json_tokener *tok = json_tokener_new_ex(POWER_QMP_MAX_DEPTH);
        json_object *o;
        size_t used;

        if (!tok)
                return NULL;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        o = json_tokener_parse_ex(tok, s, (int)len);
        used = (size_t)json_tokener_get_parse_end(tok);
        if (o && json_tokener_get_error(tok) != json_tokener_success) {
                json_object_put(o);
                o = NULL;
        }
        json_tokener_free(tok);
        while (o && used < len && (s[used] == ' ' || s[used] == '\t' || s[used] == '\r' || s[used] == '\n'))
                used++;
        if (o && (used != len || !json_object_is_type(o, json_type_object))) {
                json_object_put(o);
                o = NULL;
        }
        return o;
}

/* A string member into dst, escaped; "" when absent or not a string. */
static void member_text(json_object *o, const char *key, char *dst, size_t cap)
{
        json_object *v;

        dst[0] = '\0';
        if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
                log_escape(dst, cap, json_object_get_string(v), (size_t)json_object_get_string_len(v));
}

static int parse_return(json_object *ret, struct power_qmp_msg *m)
{
        json_object *st;

        m->kind = POWER_QMP_RETURN;
        if (!json_object_is_type(ret, json_type_object) || !json_object_object_get_ex(ret, "status", &st))
                return 0;       /* most commands return {} */
        if (!json_object_is_type(st, json_type_string) ||
            (size_t)json_object_get_string_len(st) > POWER_QMP_MAX_STATUS ||
            memchr(json_object_get_string(st), '\0', (size_t)json_object_get_string_len(st)))
                return -EBADMSG;
        memcpy(m->status, json_object_get_string(st), (size_t)json_object_get_string_len(st) + 1);
        return 0;
}

static int parse_error(json_object *err, struct power_qmp_msg *m)
{
        char cls[64], desc[160];

        if (!json_object_is_type(err, json_type_object))
                return -EBADMSG;
        m->kind = POWER_QMP_ERROR;
        member_text(err, "class", cls, sizeof(cls));
        member_text(err, "desc", desc, sizeof(desc));
        snprintf(m->error, sizeof(m->error), "%s: %s", *cls ? cls : "(no class)", *desc ? desc : "(no description)");
        return 0;
}

static int parse_kinds(json_object *o, struct power_qmp_msg *m)
{
        json_object *greeting = NULL, *ret = NULL, *err = NULL, *ev = NULL, *id = NULL;
        int n = json_object_object_get_ex(o, "QMP", &greeting) + json_object_object_get_ex(o, "return", &ret) +
                json_object_object_get_ex(o, "error", &err) + json_object_object_get_ex(o, "event", &ev);

        if (n != 1)
                return -EBADMSG;
        if (json_object_object_get_ex(o, "id", &id)) {
                if (!json_object_is_type(id, json_type_int))
                        return -EBADMSG;
                m->has_id = true;
                m->id = json_object_get_int64(id);
        }
        if (greeting) {
                m->kind = POWER_QMP_GREETING;
                return json_object_is_type(greeting, json_type_object) ? 0 : -EBADMSG;
        }
        if (ev) {
                if (!json_object_is_type(ev, json_type_string) || json_object_get_string_len(ev) == 0 ||
                    (size_t)json_object_get_string_len(ev) >= sizeof(m->event))
                        return -EBADMSG;
                m->kind = POWER_QMP_EVENT;
                member_text(o, "event", m->event, sizeof(m->event));
                return 0;
        }
        return ret ? parse_return(ret, m) : parse_error(err, m);
}

int power_qmp_parse(const char *line, size_t len, struct power_qmp_msg *ret)
{
        struct power_qmp_msg m = { 0 };
        json_object *o;
        int r;

        if (len > POWER_QMP_MAX_MESSAGE)
                return -EMSGSIZE;
        if (len == 0 || memchr(line, '\0', len))
                return -EBADMSG;
        o = parse_object(line, len);
        if (!o)
                return -EBADMSG;
        r = parse_kinds(o, &m);
        json_object_put(o);
        if (r < 0)
                return r;
        *ret = m;
        return 0;
}

int power_qmp_state(const char *status, enum power_state *ret)
{
        /* RunState of qapi/run-state.json; a panicked or stuck guest still has power */
        static const struct { const char *name; enum power_state state; } map[] = {
                { "running", POWER_STATE_ON },        { "suspended", POWER_STATE_ON },
                { "guest-panicked", POWER_STATE_ON }, { "io-error", POWER_STATE_ON },
                { "watchdog", POWER_STATE_ON },       { "internal-error", POWER_STATE_ON },
                { "debug", POWER_STATE_ON },          { "paused", POWER_STATE_OFF },
                { "prelaunch", POWER_STATE_OFF },     { "shutdown", POWER_STATE_OFF },
        };

        for (size_t i = 0; i < ARRAY_SIZE(map); i++)
                if (strcmp(status, map[i].name) == 0) {
                        *ret = map[i].state;
                        return 0;
                }
        return -EINVAL;
}

/* Calls fn for each line of out without its line ending; stops at the first nonzero result. */
static int each_line(const char *out, size_t len, int (*fn)(const char *l, size_t n, void *u), void *u)
{
        for (size_t i = 0; i < len;) {
                const char *nl = memchr(out + i, '\n', len - i);
                size_t n = nl ? (size_t)(nl - (out + i)) : len - i;
                size_t k = n;
                int r;

                while (k > 0 && (out[i + k - 1] == '\r' || out[i + k - 1] == ' '))
                        k--;
                if ((r = fn(out + i, k, u)) != 0)
                        return r;
                i += n + 1;
        }
        return 0;
}

static bool line_is(const char *l, size_t n, const char *want)
{
        return n == strlen(want) && memcmp(l, want, n) == 0;
}

struct status_scan {
        int on, off;
};

static int scan_status(const char *l, size_t n, void *u)
{
        struct status_scan *s = u;

        s->on += line_is(l, n, "Chassis Power is on");
        s->off += line_is(l, n, "Chassis Power is off");
        return 0;
}

static bool clean_output(const char *out, size_t len)
{
        return len <= POWER_IPMI_MAX_OUTPUT && !memchr(out, '\0', len);
}

int power_ipmi_parse_status(const char *out, size_t len, enum power_state *ret)
{
        struct status_scan s = { 0 };

        if (!clean_output(out, len))
                return len > POWER_IPMI_MAX_OUTPUT ? -EMSGSIZE : -EBADMSG;
        each_line(out, len, scan_status, &s);
        if (s.on + s.off != 1)
                return -EBADMSG;        /* nothing, or contradicting lines */
        *ret = s.on ? POWER_STATE_ON : POWER_STATE_OFF;
        return 0;
}

static int scan_control(const char *l, size_t n, void *u)
{
        return line_is(l, n, u) ? 1 : 0;
}

int power_ipmi_parse_control(const char *out, size_t len, enum power_op op)
{
        static const char *const done[] = {
                [POWER_OP_ON] = "Chassis Power Control: Up/On",
                [POWER_OP_OFF] = "Chassis Power Control: Down/Off",
                [POWER_OP_CYCLE] = "Chassis Power Control: Cycle",
                [POWER_OP_RESET] = "Chassis Power Control: Reset",
                [POWER_OP_SOFT_OFF] = "Chassis Power Control: Soft",
        };

        if ((unsigned)op >= ARRAY_SIZE(done) || !done[op])
                return -EINVAL;
        if (!clean_output(out, len))
                return len > POWER_IPMI_MAX_OUTPUT ? -EMSGSIZE : -EBADMSG;
        return each_line(out, len, scan_control, (void *)done[op]) == 1 ? 0 : -EBADMSG;
}

const char *power_ipmi_word(enum power_op op)
{
        static const char *const words[] = {
                [POWER_OP_STATUS] = "status", [POWER_OP_ON] = "on",       [POWER_OP_OFF] = "off",
                [POWER_OP_CYCLE] = "cycle",   [POWER_OP_RESET] = "reset", [POWER_OP_SOFT_OFF] = "soft",
        };

        return (unsigned)op < ARRAY_SIZE(words) ? words[op] : NULL;
}

struct summary {
        char *buf;
        size_t cap, o;
};

static int add_line(const char *l, size_t n, void *u)
{
        struct summary *s = u;
        char esc[256];

        while (n > 0 && (*l == ' ' || *l == '\t'))
                l++, n--;
        if (n == 0 || s->o + 1 >= s->cap)
                return 0;
        log_escape(esc, sizeof(esc), l, n);
        s->o += (size_t)snprintf(s->buf + s->o, s->cap - s->o, "%s%s", s->o ? "; " : "", esc);
        if (s->o >= s->cap)
                s->o = s->cap - 1;
        return 0;
}

void power_summarize(const char *err, size_t len, char *buf, size_t cap)
{
        struct summary s = { buf, cap, 0 };

        if (cap == 0)
                return;
        buf[0] = '\0';
        each_line(err, len, add_line, &s);
}
