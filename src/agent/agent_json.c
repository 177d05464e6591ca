/* SPDX-License-Identifier: Apache-2.0 */
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>

#include "metald/agent.h"
#include "metald/log.h"
#include "metald/util.h"

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

static const char *const action_names[_AGENT_ACTION_MAX] = {
        [AGENT_ACTION_WAIT] = "wait",
        [AGENT_ACTION_INSTALL] = "install",
        [AGENT_ACTION_REBOOT] = "reboot",
        [AGENT_ACTION_POWEROFF] = "poweroff",
};

static const char *const event_names[_AGENT_EVENT_MAX] = {
        [AGENT_EVENT_INSTALL_STARTED] = "install-started",
        [AGENT_EVENT_INSTALL_PROGRESS] = "install-progress",
        [AGENT_EVENT_INSTALL_SUCCEEDED] = "install-succeeded",
        [AGENT_EVENT_INSTALL_FAILED] = "install-failed",
        [AGENT_EVENT_LOG] = "log",
};

static const char *const call_names[_AGENT_CALL_MAX] = {
        [AGENT_CALL_REGISTER] = "register",
        [AGENT_CALL_HEARTBEAT] = "heartbeat",
        [AGENT_CALL_INSTRUCTION] = "instruction",
        [AGENT_CALL_EVENT] = "event",
};

const char *agent_action_name(enum agent_action a)
{
        return (unsigned)a < _AGENT_ACTION_MAX ? action_names[a] : "?";
}

const char *agent_event_name(enum agent_event e)
{
        return (unsigned)e < _AGENT_EVENT_MAX ? event_names[e] : "?";
}

const char *agent_call_name(enum agent_call c)
{
        return (unsigned)c < _AGENT_CALL_MAX ? call_names[c] : "?";
}

bool agent_instruction_equal(const struct agent_instruction *a, const struct agent_instruction *b)
{
        if (a->action != b->action || strcmp(a->reason, b->reason) != 0)
                return false;
        if (a->action != AGENT_ACTION_INSTALL)
                return true;
        return strcmp(a->image.name, b->image.name) == 0 && a->image.version == b->image.version &&
               strcmp(a->image.url, b->image.url) == 0 && strcmp(a->image.sha256, b->image.sha256) == 0 &&
               a->image.size == b->image.size && strcmp(a->image.disk, b->image.disk) == 0 &&
               a->image.allow_removable == b->image.allow_removable &&
               strcmp(a->image.hostname, b->image.hostname) == 0;
}

/* Building: every helper takes ownership of val and records the first failure in *r. */

static void put(json_object *obj, const char *key, json_object *val, int *r)
{
        if (*r == 0 && val && json_object_object_add(obj, key, val) == 0)
                return;
        json_object_put(val);
        if (*r == 0)
                *r = -ENOMEM;
}

static void push(json_object *arr, json_object *val, int *r)
{
        if (*r == 0 && val && json_object_array_add(arr, val) == 0)
                return;
        json_object_put(val);
        if (*r == 0)
                *r = -ENOMEM;
}

/* o when every part of it was built, else NULL (o released). */
static json_object *finish(json_object *o, int r)
{
        if (r == 0)
                return o;
        json_object_put(o);
        return NULL;
}

static json_object *nic_object(const struct agent_nic *n)
{
        json_object *o = json_object_new_object();
        int r = o ? 0 : -ENOMEM;

        put(o, "name", json_object_new_string(n->name), &r);
        put(o, "mac", json_object_new_string(n->mac), &r);
        put(o, "link", json_object_new_boolean(n->link), &r);
        put(o, "speed_mbps", json_object_new_int64(n->speed_mbps), &r);
        return finish(o, r);
}

static json_object *disk_object(const struct agent_disk *d)
{
        json_object *o = json_object_new_object();
        int r = o ? 0 : -ENOMEM;

        put(o, "name", json_object_new_string(d->name), &r);
        put(o, "size_bytes", json_object_new_uint64(d->size_bytes), &r);
        put(o, "model", json_object_new_string(d->model), &r);
        put(o, "serial", json_object_new_string(d->serial), &r);
        put(o, "rotational", json_object_new_boolean(d->rotational), &r);
        put(o, "removable", json_object_new_boolean(d->removable), &r);
        return finish(o, r);
}

static json_object *system_object(const struct agent_inventory *inv)
{
        json_object *o = json_object_new_object();
        int r = o ? 0 : -ENOMEM;

        put(o, "uuid", json_object_new_string(inv->uuid), &r);
        put(o, "serial", json_object_new_string(inv->serial), &r);
        put(o, "vendor", json_object_new_string(inv->vendor), &r);
        put(o, "product", json_object_new_string(inv->product), &r);
        return finish(o, r);
}

static json_object *cpu_object(const struct agent_inventory *inv)
{
        json_object *o = json_object_new_object();
        int r = o ? 0 : -ENOMEM;

        put(o, "count", json_object_new_int64(inv->cpu_count), &r);
        put(o, "model", json_object_new_string(inv->cpu_model), &r);
        return finish(o, r);
}

/* The inventory object with the first n_nics NICs and n_disks disks. */
static json_object *inventory_object(const struct agent_inventory *inv, size_t n_nics, size_t n_disks)
{
        json_object *o = json_object_new_object(), *nics = json_object_new_array(),
                    *disks = json_object_new_array();
        int r = o ? 0 : -ENOMEM;

        for (size_t i = 0; nics && i < n_nics; i++)
                push(nics, nic_object(&inv->nics[i]), &r);
        for (size_t i = 0; disks && i < n_disks; i++)
                push(disks, disk_object(&inv->disks[i]), &r);
        put(o, "system", system_object(inv), &r);
        put(o, "cpu", cpu_object(inv), &r);
        put(o, "memory_bytes", json_object_new_uint64(inv->memory_bytes), &r);
        put(o, "nics", nics, &r);
        put(o, "disks", disks, &r);
        return finish(o, r);
}

/* Serializes and releases o. */
static int emit(json_object *o, struct buf *out)
{
        const char *s;
        int r;

        if (!o)
                return -ENOMEM;
        s = json_object_to_json_string_ext(o, JSON_FLAGS);
        r = s ? buf_puts(out, s) : -ENOMEM;
        json_object_put(o);
        return r;
}

int agent_inventory_to_json(const struct agent_inventory *inv, struct buf *out)
{
        return emit(inventory_object(inv, MIN(inv->n_nics, (size_t)AGENT_MAX_NICS),
                                     MIN(inv->n_disks, (size_t)AGENT_MAX_DISKS)),
                    out);
}

static json_object *clean_string(const char *s)
{
        char clean[AGENT_MAX_STRING + 1];

        agent_text_clean(clean, sizeof(clean), s, strlen(s));
        return json_object_new_string(clean);
}

static int register_body(const char *nonce, const char *boot_mac, const struct agent_inventory *inv, size_t n_nics,
                         size_t n_disks, struct buf *out)
{
        json_object *o = json_object_new_object();
        int r = o ? 0 : -ENOMEM;

        put(o, "nonce", json_object_new_string(nonce), &r);
        put(o, "boot_mac", json_object_new_string(boot_mac), &r);
        put(o, "inventory", inventory_object(inv, n_nics, n_disks), &r);
        o = finish(o, r);
        return o ? emit(o, out) : r;
}

int agent_register_request(const char *nonce, const char *boot_mac, const struct agent_inventory *inv,
                           struct buf *out, size_t *ret_trimmed)
{
        size_t n_nics = MIN(inv->n_nics, (size_t)AGENT_MAX_NICS), n_disks = MIN(inv->n_disks, (size_t)AGENT_MAX_DISKS);
        size_t trimmed = 0;
        int r;

        for (;;) {
                r = register_body(nonce, boot_mac, inv, n_nics, n_disks, out);
                if (r != -E2BIG || (n_nics == 0 && n_disks == 0))
                        break;
                /* drop from the longer list until the body fits (a failed append leaves out as it was) */
                if (n_disks >= n_nics)
                        n_disks--;
                else
                        n_nics--;
                trimmed++;
        }
        if (r == 0 && ret_trimmed)
                *ret_trimmed = trimmed;
        return r;
}

int agent_heartbeat_request(int progress, const char *status, struct buf *out)
{
        json_object *o = json_object_new_object();
        int r = o ? 0 : -ENOMEM;

        if (progress >= 0)
                put(o, "progress", json_object_new_int(MIN(progress, 100)), &r);
        if (status)
                put(o, "status", clean_string(status), &r);
        o = finish(o, r);
        return o ? emit(o, out) : r;
}

int agent_event_request(enum agent_event ev, const char *detail, int progress, struct buf *out)
{
        json_object *o;
        int r;

        if ((unsigned)ev >= _AGENT_EVENT_MAX)
                return -EINVAL;
        o = json_object_new_object();
        r = o ? 0 : -ENOMEM;
        put(o, "event", json_object_new_string(event_names[ev]), &r);
        if (detail)
                put(o, "detail", clean_string(detail), &r);
        if (progress >= 0)
                put(o, "progress", json_object_new_int(MIN(progress, 100)), &r);
        o = finish(o, r);
        return o ? emit(o, out) : r;
}

/* Parsing */

struct field {
        const char *name;
        enum json_type type;
        bool required;
};

static const char *type_name(enum json_type t)
{
        switch (t) {
        case json_type_string:
                return "a string";
        case json_type_int:
                return "an integer";
        case json_type_object:
                return "an object";
        case json_type_boolean:
                return "a boolean";
        default:
                return "of another type";
        }
}

_printf_(3, 4) static int refuse(char *why, size_t cap, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(why, cap, fmt, ap);
        va_end(ap);
        return -EBADMSG;
}

static int parse_object(const char *body, size_t len, json_object **ret, char *why, size_t cap)
{
        json_tokener *tok;
        json_object *o;
        enum json_tokener_error err;
        size_t end;

        if (len > AGENT_MAX_BODY_BYTES)
                return refuse(why, cap, "response body over %d bytes", AGENT_MAX_BODY_BYTES);
        tok = json_tokener_new_ex(AGENT_MAX_JSON_DEPTH);
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        o = json_tokener_parse_ex(tok, body, (int)len);
        err = json_tokener_get_error(tok);
        end = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        if (!o || err != json_tokener_success) {
                json_object_put(o);
                if (err == json_tokener_continue)
                        return refuse(why, cap, "response is not a complete JSON object");
                return refuse(why, cap, "response is not valid JSON: %s", json_tokener_error_desc(err));
        }
        while (end < len && (body[end] == ' ' || body[end] == '\t' || body[end] == '\r' || body[end] == '\n'))
                end++;
        if (end != len || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return refuse(why, cap, "response is not one JSON object");
        }
        *ret = o;
        return 0;
}

static int check_fields(json_object *obj, const char *where, const struct field *fields, size_t n, char *why,
                        size_t cap)
{
        json_object_object_foreach(obj, key, val) {
                const struct field *f = NULL;
                char esc[64];

                for (size_t i = 0; i < n && !f; i++)
                        if (strcmp(fields[i].name, key) == 0)
                                f = &fields[i];
                if (!f)
                        return refuse(why, cap, "unknown field \"%s%s\"", where,
                                      log_escape(esc, sizeof(esc), key, strlen(key)));
                if (json_object_get_type(val) != f->type)
                        return refuse(why, cap, "field \"%s%s\" is not %s", where, f->name, type_name(f->type));
        }
        for (size_t i = 0; i < n; i++)
                if (fields[i].required && !json_object_object_get_ex(obj, fields[i].name, NULL))
                        return refuse(why, cap, "missing field \"%s%s\"", where, fields[i].name);
        return 0;
}

enum text_kind {
        TEXT_PRINTABLE,         /* printable UTF-8, may be empty */
        TEXT_MACHINE,           /* a machine name */
        TEXT_STATE,             /* a state name */
        TEXT_SESSION,           /* base64url */
        TEXT_URL,
        TEXT_SHA256,
        TEXT_DISK,              /* a disk rule */
        TEXT_IMAGE_NAME,
        TEXT_HOSTNAME,          /* the character set; agent_config_json checks the rest */
};

static bool session_valid(const char *s, size_t len)
{
        size_t pad = 0;

        while (pad < 2 && pad < len && s[len - 1 - pad] == '=')
                pad++;
        return len - pad >= AGENT_MIN_SESSION && str_only(s, len - pad, "-_");
}

static bool url_valid(const char *s, size_t len)
{
        size_t scheme = str_has_prefix(s, "http://") ? 7 : str_has_prefix(s, "https://") ? 8 : 0;

        if (scheme == 0 || len <= scheme)
                return false;
        for (size_t i = 0; i < len; i++)
                if ((uint8_t)s[i] <= 0x20 || (uint8_t)s[i] >= 0x7f)
                        return false;
        return true;
}

static bool text_valid(enum text_kind kind, const char *s, size_t len)
{
        switch (kind) {
        case TEXT_PRINTABLE:
                return agent_text_printable(s, len);
        case TEXT_MACHINE:
                return len > 0 && s[0] != '.' && s[0] != '-' && str_only(s, len, "._-");
        case TEXT_STATE:
                return len > 0 && str_only(s, len, "_-");
        case TEXT_SESSION:
                return session_valid(s, len);
        case TEXT_URL:
                return url_valid(s, len);
        case TEXT_SHA256:
                return len == AGENT_SHA256_CHARS && str_only(s, len, "") &&
                       strspn(s, "0123456789abcdefABCDEF") == len;
        case TEXT_DISK: {
                struct agent_disk_rule rule;

                return agent_disk_rule_parse(s, len, &rule) == 0;
        }
        case TEXT_IMAGE_NAME:
                return len > 0 && !(s[0] == '.' || s[0] == '_' || s[0] == '-') && str_only(s, len, "._-") &&
                       strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789._-") == len;
        case TEXT_HOSTNAME:
                return len > 0 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789.-") == len;
        }
        return false;
}

/* A string field (already type-checked) into dst of cap bytes. */
static int get_text(json_object *obj, const char *where, const char *name, enum text_kind kind, char *dst,
                    size_t cap, char *why, size_t why_cap)
{
        json_object *v;
        const char *s;
        size_t len;

        if (!json_object_object_get_ex(obj, name, &v))
                return 0;
        s = json_object_get_string(v);
        len = (size_t)json_object_get_string_len(v);
        if (len >= cap)
                return refuse(why, why_cap, "field \"%s%s\" is longer than %zu bytes", where, name, cap - 1);
        if (strlen(s) != len || !text_valid(kind, s, len))
                return refuse(why, why_cap, "field \"%s%s\" has an invalid value", where, name);
        memcpy(dst, s, len + 1);
        return 0;
}

static int get_int(json_object *obj, const char *where, const char *name, int64_t min, int64_t max, int64_t *ret,
                   char *why, size_t why_cap)
{
        json_object *v;
        int64_t n;

        if (!json_object_object_get_ex(obj, name, &v))
                return 0;
        n = json_object_get_int64(v);
        if (n < min || n > max)
                return refuse(why, why_cap, "field \"%s%s\" is out of range [%" PRId64 ", %" PRId64 "]", where,
                              name, min, max);
        *ret = n;
        return 0;
}

static int parse_image(json_object *obj, struct agent_image *ret, char *why, size_t cap)
{
        static const struct field fields[] = {
                { "name", json_type_string, true },
                { "version", json_type_int, true },
                { "url", json_type_string, true },
                { "sha256", json_type_string, true },
                { "size", json_type_int, true },
                { "disk", json_type_string, true },
                { "allow_removable", json_type_boolean, true },
                { "hostname", json_type_string, true },
        };
        static const char where[] = "instruction.image.";
        int64_t size = 0, version = 0;
        json_object *removable;
        int r;

        if ((r = check_fields(obj, where, fields, ARRAY_SIZE(fields), why, cap)) < 0 ||
            (r = get_text(obj, where, "name", TEXT_IMAGE_NAME, ret->name, sizeof(ret->name), why, cap)) < 0 ||
            (r = get_int(obj, where, "version", 1, (int64_t)AGENT_MAX_IMAGE_VERSION, &version, why, cap)) < 0 ||
            (r = get_text(obj, where, "url", TEXT_URL, ret->url, sizeof(ret->url), why, cap)) < 0 ||
            (r = get_text(obj, where, "sha256", TEXT_SHA256, ret->sha256, sizeof(ret->sha256), why, cap)) < 0 ||
            (r = get_int(obj, where, "size", 1, (int64_t)AGENT_MAX_IMAGE_BYTES, &size, why, cap)) < 0 ||
            (r = get_text(obj, where, "disk", TEXT_DISK, ret->disk, sizeof(ret->disk), why, cap)) < 0 ||
            (r = get_text(obj, where, "hostname", TEXT_HOSTNAME, ret->hostname, sizeof(ret->hostname), why,
                          cap)) < 0)
                return r;
        for (char *p = ret->sha256; *p; p++)
                if (*p >= 'A' && *p <= 'F')
                        *p = (char)(*p - 'A' + 'a');
        json_object_object_get_ex(obj, "allow_removable", &removable);
        ret->allow_removable = json_object_get_boolean(removable);
        ret->version = (uint64_t)version;
        ret->size = (uint64_t)size;
        return 0;
}

static int parse_instruction(json_object *obj, struct agent_instruction *ret, char *why, size_t cap)
{
        static const struct field fields[] = {
                { "action", json_type_string, true },
                { "reason", json_type_string, false },
                { "image", json_type_object, false },
        };
        static const char where[] = "instruction.";
        json_object *action, *image;
        const char *name;
        size_t a;
        int r;

        if ((r = check_fields(obj, where, fields, ARRAY_SIZE(fields), why, cap)) < 0 ||
            (r = get_text(obj, where, "reason", TEXT_PRINTABLE, ret->reason, sizeof(ret->reason), why, cap)) < 0)
                return r;
        json_object_object_get_ex(obj, "action", &action);
        name = json_object_get_string(action);
        for (a = 0; a < _AGENT_ACTION_MAX; a++)
                if (strcmp(name, action_names[a]) == 0 && strlen(name) == (size_t)json_object_get_string_len(action))
                        break;
        if (a == _AGENT_ACTION_MAX) {
                char esc[64];

                return refuse(why, cap, "unknown instruction action \"%s\"",
                              log_escape(esc, sizeof(esc), name, (size_t)json_object_get_string_len(action)));
        }
        ret->action = (enum agent_action)a;
        if (!json_object_object_get_ex(obj, "image", &image))
                return ret->action == AGENT_ACTION_INSTALL ? refuse(why, cap, "install instruction without an image")
                                                           : 0;
        if (ret->action != AGENT_ACTION_INSTALL)
                return refuse(why, cap, "%s instruction with an image", action_names[a]);
        return parse_image(image, &ret->image, why, cap);
}

static const struct field register_fields[] = {
        { "machine", json_type_string, true },
        { "session", json_type_string, true },
        { "state", json_type_string, true },
        { "heartbeat_seconds", json_type_int, true },
        { "instruction", json_type_object, true },
};

/* The machine's name may come with every answer, not only the registration's. */
static const struct field heartbeat_fields[] = {
        { "machine", json_type_string, false },
        { "state", json_type_string, true },
        { "heartbeat_seconds", json_type_int, true },
        { "instruction", json_type_object, true },
};

/* GET instruction and events: state and instruction; heartbeat_seconds may come too. */
static const struct field state_fields[] = {
        { "machine", json_type_string, false },
        { "state", json_type_string, true },
        { "heartbeat_seconds", json_type_int, false },
        { "instruction", json_type_object, true },
};

static int parse_reply(enum agent_call call, json_object *o, struct agent_response *r_out, char *why, size_t cap)
{
        static const struct {
                const struct field *fields;
                size_t n;
        } shapes[_AGENT_CALL_MAX] = {
                [AGENT_CALL_REGISTER] = { register_fields, ARRAY_SIZE(register_fields) },
                [AGENT_CALL_HEARTBEAT] = { heartbeat_fields, ARRAY_SIZE(heartbeat_fields) },
                [AGENT_CALL_INSTRUCTION] = { state_fields, ARRAY_SIZE(state_fields) },
                [AGENT_CALL_EVENT] = { state_fields, ARRAY_SIZE(state_fields) },
        };
        json_object *instruction;
        int64_t hb = 0;
        int r;

        if ((r = check_fields(o, "", shapes[call].fields, shapes[call].n, why, cap)) < 0 ||
            (r = get_text(o, "", "machine", TEXT_MACHINE, r_out->machine, sizeof(r_out->machine), why, cap)) < 0 ||
            (r = get_text(o, "", "session", TEXT_SESSION, r_out->session, sizeof(r_out->session), why, cap)) < 0 ||
            (r = get_text(o, "", "state", TEXT_STATE, r_out->state, sizeof(r_out->state), why, cap)) < 0 ||
            (r = get_int(o, "", "heartbeat_seconds", AGENT_MIN_HEARTBEAT_S, AGENT_MAX_HEARTBEAT_S, &hb, why,
                         cap)) < 0)
                return r;
        r_out->heartbeat_seconds = (unsigned)hb;
        json_object_object_get_ex(o, "instruction", &instruction);
        return parse_instruction(instruction, &r_out->instruction, why, cap);
}

int agent_response_parse(enum agent_call call, const char *body, size_t len, struct agent_response *ret, char *why,
                      size_t why_cap)
{
        _cleanup_free_ struct agent_response *reply = NULL;
        json_object *o;
        int r;

        if ((unsigned)call >= _AGENT_CALL_MAX)
                return -EINVAL;
        r = parse_object(body, len, &o, why, why_cap);
        if (r < 0)
                return r;
        reply = calloc(1, sizeof(*reply));
        r = reply ? parse_reply(call, o, reply, why, why_cap) : -ENOMEM;
        json_object_put(o);
        if (r == 0)
                *ret = *reply;
        if (reply)
                agent_response_wipe(reply);
        return r;
}

int agent_error_parse(const char *body, size_t len, char *ret, size_t cap)
{
        static const struct field fields[] = { { "error", json_type_string, true } };
        char why[128], sentence[1024];
        json_object *o;
        int r = parse_object(body, len, &o, why, sizeof(why));

        if (r < 0)
                return r;
        r = check_fields(o, "", fields, ARRAY_SIZE(fields), why, sizeof(why));
        if (r == 0)
                r = get_text(o, "", "error", TEXT_PRINTABLE, sentence, sizeof(sentence), why, sizeof(why));
        json_object_put(o);
        if (r < 0)
                return r;
        log_escape(ret, cap, sentence, strlen(sentence));
        return 0;
}

void agent_response_wipe(struct agent_response *r)
{
        explicit_bzero(r->session, sizeof(r->session));
}
