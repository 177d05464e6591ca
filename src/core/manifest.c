/* SPDX-License-Identifier: Apache-2.0 */
/* manifest.json (docs/IMAGES.md): strict JSON through json-c, then every rule of the format. */
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metald/manifest.h"

#define TIME_TEXT_LEN 20        /* YYYY-MM-DDTHH:MM:SSZ */
#define SHOWN_MAX     32        /* bytes of an untrusted value quoted in a reason */

static const char *const artifact_names[_MANIFEST_ARTIFACT_MAX] = { "kernel", "initrd", "disk", "rootfs" };

const char *manifest_artifact_name(enum manifest_artifact_kind k)
{
        return (unsigned)k < _MANIFEST_ARTIFACT_MAX ? artifact_names[k] : NULL;
}

int manifest_artifact_from_name(const char *name)
{
        for (int k = 0; name && k < _MANIFEST_ARTIFACT_MAX; k++)
                if (strcmp(name, artifact_names[k]) == 0)
                        return k;
        return -EINVAL;
}

__attribute__((format(printf, 3, 4)))
static int fail(char *why, size_t cap, const char *fmt, ...)
{
        va_list ap;

        if (why && cap > 0) {
                va_start(ap, fmt);
                vsnprintf(why, cap, fmt, ap);
                va_end(ap);
        }
        return -EINVAL;
}

/* Untrusted text in a reason: printable ASCII only, cut at SHOWN_MAX bytes. */
struct shown {
        char s[SHOWN_MAX + 4];
};

static struct shown show(const char *p, size_t n)
{
        struct shown r;
        size_t k = 0;

        for (size_t i = 0; i < n && k < SHOWN_MAX; i++)
                r.s[k++] = p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' ? p[i] : '?';
        if (n > SHOWN_MAX) {
                memcpy(r.s + k, "...", 3);
                k += 3;
        }
        r.s[k] = '\0';
        return r;
}

/*
 * The pass json-c cannot make: it keeps the last of duplicate keys silently
 * (and takes raw control characters and single quotes even when strict), so
 * the raw text is walked first, its structure checked and every object's
 * field names compared; json-c then reads the values. Names are plain (no
 * escapes, which no field of the format needs) and an object has at most
 * IMAGE_MAX_JSON_FIELDS of them, which bounds the comparisons; nesting is
 * bounded by IMAGE_MAX_JSON_DEPTH.
 */
struct scan {
        const char *p;
        size_t len, pos;
        char *why;
        size_t cap;
};

static bool is_ws(char c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void skip_ws(struct scan *s)
{
        while (s->pos < s->len && is_ws(s->p[s->pos]))
                s->pos++;
}

static bool at(struct scan *s, char c)
{
        return s->pos < s->len && s->p[s->pos] == c;
}

/* The string at pos (its opening quote): its bytes between the quotes, and whether a backslash is among them. */
static int scan_string(struct scan *s, const char **ret, size_t *ret_n, bool *ret_escaped)
{
        size_t i = s->pos + 1;
        bool escaped = false;

        while (i < s->len && s->p[i] != '"') {
                if ((unsigned char)s->p[i] < 0x20)
                        return fail(s->why, s->cap, "malformed JSON at byte %zu: a control character in a string", i);
                if (s->p[i] == '\\') {
                        escaped = true;
                        i++;
                }
                i++;
        }
        if (i >= s->len)
                return fail(s->why, s->cap, "malformed JSON at byte %zu: a string does not end", s->pos);
        *ret = s->p + s->pos + 1;
        *ret_n = i - s->pos - 1;
        *ret_escaped = escaped;
        s->pos = i + 1;
        return 0;
}

static int scan_value(struct scan *s, unsigned depth, const char *label, size_t label_n);

static int scan_array(struct scan *s, unsigned depth, const char *label, size_t label_n)
{
        int r;

        if (depth > IMAGE_MAX_JSON_DEPTH)
                return fail(s->why, s->cap, "%s: nested deeper than %d", show(label, label_n).s, IMAGE_MAX_JSON_DEPTH);
        s->pos++;
        skip_ws(s);
        if (at(s, ']')) {
                s->pos++;
                return 0;
        }
        for (;;) {
                r = scan_value(s, depth, label, label_n);
                if (r < 0)
                        return r;
                skip_ws(s);
                if (!at(s, ',') && !at(s, ']'))
                        return fail(s->why, s->cap, "malformed JSON at byte %zu: ',' or ']' expected", s->pos);
                if (s->p[s->pos++] == ']')
                        return 0;
        }
}

/* One field name of an object: refused when escaped, repeated, or one too many. */
static int scan_field_name(struct scan *s, const char **names, size_t *lens, size_t *n_names,
                           const char *label, size_t label_n)
{
        const char *k;
        size_t n;
        bool escaped;
        int r;

        skip_ws(s);
        if (!at(s, '"'))
                return fail(s->why, s->cap, "malformed JSON at byte %zu: a field name is expected", s->pos);
        r = scan_string(s, &k, &n, &escaped);
        if (r < 0)
                return r;
        if (escaped)
                return fail(s->why, s->cap, "%s: field name \"%s\" is written with escapes", show(label, label_n).s,
                            show(k, n).s);
        for (size_t i = 0; i < *n_names; i++)
                if (lens[i] == n && memcmp(names[i], k, n) == 0)
                        return fail(s->why, s->cap, "%s: duplicate field \"%s\"", show(label, label_n).s,
                                    show(k, n).s);
        if (*n_names == IMAGE_MAX_JSON_FIELDS)
                return fail(s->why, s->cap, "%s: more than %d fields", show(label, label_n).s, IMAGE_MAX_JSON_FIELDS);
        names[*n_names] = k;
        lens[(*n_names)++] = n;
        return 0;
}

static int scan_object(struct scan *s, unsigned depth, const char *label, size_t label_n)
{
        const char *names[IMAGE_MAX_JSON_FIELDS];
        size_t lens[IMAGE_MAX_JSON_FIELDS], n_names = 0;
        int r;

        if (depth > IMAGE_MAX_JSON_DEPTH)
                return fail(s->why, s->cap, "%s: nested deeper than %d", show(label, label_n).s, IMAGE_MAX_JSON_DEPTH);
        s->pos++;
        skip_ws(s);
        if (at(s, '}')) {
                s->pos++;
                return 0;
        }
        for (;;) {
                r = scan_field_name(s, names, lens, &n_names, label, label_n);
                if (r < 0)
                        return r;
                skip_ws(s);
                if (!at(s, ':'))
                        return fail(s->why, s->cap, "malformed JSON at byte %zu: ':' expected", s->pos);
                s->pos++;
                r = scan_value(s, depth, names[n_names - 1], lens[n_names - 1]);
                if (r < 0)
                        return r;
                skip_ws(s);
                if (!at(s, ',') && !at(s, '}'))
                        return fail(s->why, s->cap, "malformed JSON at byte %zu: ',' or '}' expected", s->pos);
                if (s->p[s->pos++] == '}')
                        return 0;
        }
}

static size_t scan_digits(struct scan *s)
{
        size_t start = s->pos;

        while (s->pos < s->len && s->p[s->pos] >= '0' && s->p[s->pos] <= '9')
                s->pos++;
        return s->pos - start;
}

/* RFC 8259 numbers only: json-c also takes NaN, Infinity and leading zeros. */
static int scan_number(struct scan *s)
{
        size_t start = s->pos, n;

        if (at(s, '-'))
                s->pos++;
        n = scan_digits(s);
        if (n == 0 || (n > 1 && s->p[s->pos - n] == '0'))
                return fail(s->why, s->cap, "malformed JSON at byte %zu: a value is expected", start);
        if (at(s, '.')) {
                s->pos++;
                if (scan_digits(s) == 0)
                        return fail(s->why, s->cap, "malformed JSON at byte %zu: a number is cut short", start);
        }
        if (at(s, 'e') || at(s, 'E')) {
                s->pos++;
                if (at(s, '+') || at(s, '-'))
                        s->pos++;
                if (scan_digits(s) == 0)
                        return fail(s->why, s->cap, "malformed JSON at byte %zu: a number is cut short", start);
        }
        return 0;
}

static bool scan_literal(struct scan *s, const char *lit)
{
        size_t n = strlen(lit);

        if (s->len - s->pos < n || memcmp(s->p + s->pos, lit, n) != 0)
                return false;
        s->pos += n;
        return true;
}

/* depth is that of the enclosing container. */
static int scan_value(struct scan *s, unsigned depth, const char *label, size_t label_n)
{
        const char *str;
        size_t n;
        bool escaped;

        skip_ws(s);
        if (at(s, '{'))
                return scan_object(s, depth + 1, label, label_n);
        if (at(s, '['))
                return scan_array(s, depth + 1, label, label_n);
        if (at(s, '"'))
                return scan_string(s, &str, &n, &escaped);
        if (scan_literal(s, "true") || scan_literal(s, "false") || scan_literal(s, "null"))
                return 0;
        return scan_number(s);
}

static int scan_document(struct scan *s)
{
        int r;

        skip_ws(s);
        if (!at(s, '{'))
                return fail(s->why, s->cap, "the manifest is not a JSON object");
        r = scan_value(s, 0, "manifest", strlen("manifest"));
        if (r < 0)
                return r;
        skip_ws(s);
        if (s->pos != s->len)
                return fail(s->why, s->cap, "byte %zu: data after the manifest object", s->pos);
        return 0;
}

static bool str_is(const char *s, size_t n, const char *lit)
{
        return n == strlen(lit) && memcmp(s, lit, n) == 0;
}

static bool lower_hex(const char *s, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return true;
}

static size_t ws_end(const char *p, size_t len, size_t i)
{
        while (i < len && is_ws(p[i]))
                i++;
        return i;
}

/* The index of the quote that closes the string whose bytes start at i, or len. */
static size_t string_end(const char *p, size_t len, size_t i)
{
        while (i < len && p[i] != '"')
                i += p[i] == '\\' ? 2 : 1;
        return i < len ? i : len;
}

/*
 * The key id only picks the key, so it is read by a walk that knows strings
 * and nesting and nothing else: a damaged byte elsewhere still yields the id,
 * and the signature check, not this, reports the damage. What follows the
 * top-level object is ignored; a second top-level "key_id" is refused.
 */
int manifest_peek_key_id(const void *data, size_t len, char ret[MANIFEST_KEY_ID_HEX + 1])
{
        const char *p = data, *id = NULL;
        size_t i, depth = 0, id_len = 0;
        unsigned n_keys = 0;

        if (len > IMAGE_MAX_MANIFEST_BYTES)
                return -EFBIG;
        i = p ? ws_end(p, len, 0) : len;
        if (i == len || p[i] != '{')
                return -EINVAL;
        while (i < len) {
                size_t start, end, v;

                if (p[i] == '{' || p[i] == '[' || p[i] == '}' || p[i] == ']') {
                        depth = p[i] == '{' || p[i] == '[' ? depth + 1 : depth - 1;
                        if (depth == 0)
                                break;
                        i++;
                        continue;
                }
                if (p[i] != '"') {
                        i++;
                        continue;
                }
                start = i + 1;
                end = string_end(p, len, start);
                if (end == len)
                        break;
                i = end + 1;
                v = ws_end(p, len, i);
                if (depth != 1 || v == len || p[v] != ':' || !str_is(p + start, end - start, "key_id"))
                        continue;
                n_keys++;
                v = ws_end(p, len, v + 1);
                if (v < len && p[v] == '"' && string_end(p, len, v + 1) < len) {
                        id = p + v + 1;
                        id_len = string_end(p, len, v + 1) - (v + 1);
                        i = v + 2 + id_len;
                }
        }
        if (n_keys != 1 || !id || id_len != MANIFEST_KEY_ID_HEX || !lower_hex(id, id_len))
                return -EINVAL;
        memcpy(ret, id, MANIFEST_KEY_ID_HEX);
        ret[MANIFEST_KEY_ID_HEX] = '\0';
        return 0;
}

static int parse_json(const char *p, size_t len, json_object **ret, char *why, size_t cap)
{
        struct json_tokener *tok;
        enum json_tokener_error e;
        json_object *o;
        size_t end;

        tok = json_tokener_new_ex(IMAGE_MAX_JSON_DEPTH + 1);
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        o = json_tokener_parse_ex(tok, p, (int)len);
        e = json_tokener_get_error(tok);
        end = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        if (!o || e != json_tokener_success) {
                json_object_put(o);
                return fail(why, cap, "malformed JSON at byte %zu: %s", end,
                            e == json_tokener_continue ? "unexpected end" : json_tokener_error_desc(e));
        }
        while (end < len && is_ws(p[end]))
                end++;
        if (end != len || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return fail(why, cap, end != len ? "byte %zu: data after the manifest object"
                                                 : "byte %zu: the manifest is not a JSON object", end);
        }
        *ret = o;
        return 0;
}

/* where is the dotted path of the object ("" at the top); reasons name where.key. */
#define FIELD(where, key) (where), (*(where) ? "." : ""), (key)

static const char *type_text(json_type t)
{
        switch (t) {
        case json_type_object: return "an object";
        case json_type_array:  return "an array";
        case json_type_string: return "a string";
        case json_type_int:    return "an integer";
        default:               return "another type";
        }
}

/* 1 when an optional field is absent. */
static int get(json_object *o, const char *where, const char *key, json_type type, bool required, json_object **ret,
               char *why, size_t cap)
{
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v)) {
                if (required)
                        return fail(why, cap, "%s%s%s: missing", FIELD(where, key));
                return 1;
        }
        if (!json_object_is_type(v, type))
                return fail(why, cap, "%s%s%s: must be %s", FIELD(where, key), type_text(type));
        *ret = v;
        return 0;
}

/* json-c saturates past int64 and keeps uint64 apart; both land outside every range here. */
static int uint_value(json_object *v, const char *where, const char *key, uint64_t min, uint64_t max, uint64_t *ret,
                      char *why, size_t cap)
{
        int64_t x;

        if (!json_object_is_type(v, json_type_int))
                return fail(why, cap, "%s%s%s: must be an integer", FIELD(where, key));
        x = json_object_get_int64(v);
        if (x < 0 || (uint64_t)x < min || (uint64_t)x > max)
                return fail(why, cap, "%s%s%s: must be from %llu to %llu", FIELD(where, key), (unsigned long long)min,
                            (unsigned long long)max);
        *ret = (uint64_t)x;
        return 0;
}

static int get_uint(json_object *o, const char *where, const char *key, uint64_t min, uint64_t max, uint64_t *ret,
                    char *why, size_t cap)
{
        json_object *v = NULL;
        int r;

        r = get(o, where, key, json_type_int, true, &v, why, cap);
        if (r < 0)
                return r;
        return uint_value(v, where, key, min, max, ret, why, cap);
}

/* A string without NUL of at most max bytes; 1 when optional and absent. */
static int get_str(json_object *o, const char *where, const char *key, bool required, size_t max, const char **ret,
                   size_t *ret_n, char *why, size_t cap)
{
        json_object *v;
        const char *s;
        size_t n;
        int r;

        r = get(o, where, key, json_type_string, required, &v, why, cap);
        if (r != 0)
                return r;
        s = json_object_get_string(v);
        n = (size_t)json_object_get_string_len(v);
        if (memchr(s, '\0', n))
                return fail(why, cap, "%s%s%s: holds a NUL", FIELD(where, key));
        if (n > max)
                return fail(why, cap, "%s%s%s: longer than %zu bytes", FIELD(where, key), max);
        *ret = s;
        *ret_n = n;
        return 0;
}

static int get_digest(json_object *o, const char *where, uint8_t ret[MANIFEST_SHA256_BYTES], char *why, size_t cap)
{
        const char *s;
        size_t n;
        int r;

        r = get_str(o, where, "sha256", true, 2 * MANIFEST_SHA256_BYTES, &s, &n, why, cap);
        if (r < 0)
                return r;
        if (n != 2 * MANIFEST_SHA256_BYTES || !lower_hex(s, n))
                return fail(why, cap, "%s%s%s: must be 64 lower-case hex digits", FIELD(where, "sha256"));
        for (size_t i = 0; i < MANIFEST_SHA256_BYTES; i++) {
                char a = s[2 * i], b = s[2 * i + 1];

                ret[i] = (uint8_t)(((a <= '9' ? a - '0' : a - 'a' + 10) << 4) | (b <= '9' ? b - '0' : b - 'a' + 10));
        }
        return 0;
}

/* allowed is NULL-terminated. */
static int only_fields(json_object *o, const char *where, const char *const *allowed, char *why, size_t cap)
{
        json_object_object_foreach(o, key, val) {
                bool ok = false;

                (void)val;
                for (size_t i = 0; allowed[i] && !ok; i++)
                        ok = strcmp(allowed[i], key) == 0;
                if (!ok)
                        return fail(why, cap, "%s%sunknown field \"%s\"", where, *where ? ": " : "",
                                    show(key, strlen(key)).s);
        }
        return 0;
}

/* YYYY-MM-DDTHH:MM:SSZ exactly, every part in range, no leap second. */
static int parse_time(const char *s, size_t n, int64_t *ret)
{
        static const uint8_t month_days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        static const uint8_t part_at[6] = { 0, 5, 8, 11, 14, 17 }, part_len[6] = { 4, 2, 2, 2, 2, 2 };
        unsigned v[6];
        struct tm tm;
        time_t t;
        bool leap;

        if (n != TIME_TEXT_LEN || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
            s[19] != 'Z')
                return -EINVAL;
        for (size_t i = 0; i < 6; i++) {
                v[i] = 0;
                for (size_t k = 0; k < part_len[i]; k++) {
                        char c = s[part_at[i] + k];

                        if (c < '0' || c > '9')
                                return -EINVAL;
                        v[i] = v[i] * 10 + (unsigned)(c - '0');
                }
        }
        if (v[0] < 1970 || v[1] < 1 || v[1] > 12 || v[3] > 23 || v[4] > 59 || v[5] > 59)
                return -EINVAL;
        leap = (v[0] % 4 == 0 && v[0] % 100 != 0) || v[0] % 400 == 0;
        if (v[2] < 1 || v[2] > (unsigned)month_days[v[1] - 1] + (v[1] == 2 && leap))
                return -EINVAL;
        tm = (struct tm){ .tm_year = (int)v[0] - 1900, .tm_mon = (int)v[1] - 1, .tm_mday = (int)v[2],
                          .tm_hour = (int)v[3], .tm_min = (int)v[4], .tm_sec = (int)v[5] };
        t = timegm(&tm);
        if (t == (time_t)-1)
                return -EINVAL;
        *ret = (int64_t)t;
        return 0;
}

static int get_time(json_object *o, const char *key, int64_t *ret, char *why, size_t cap)
{
        const char *s;
        size_t n;
        int r;

        r = get_str(o, "", key, true, TIME_TEXT_LEN, &s, &n, why, cap);
        if (r < 0)
                return r;
        if (parse_time(s, n, ret) < 0)
                return fail(why, cap, "%s: \"%s\" is not a UTC time YYYY-MM-DDTHH:MM:SSZ", key, show(s, n).s);
        return 0;
}

static bool name_ok(const char *s, size_t n)
{
        if (n < 1 || n > IMAGE_MAX_NAME)
                return false;
        for (size_t i = 0; i < n; i++) {
                bool alnum = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9');

                if (!alnum && (i == 0 || (s[i] != '.' && s[i] != '_' && s[i] != '-')))
                        return false;
        }
        return true;
}

static int parse_identity(json_object *o, struct manifest *m, char *why, size_t cap)
{
        const char *s;
        size_t n;
        int r;

        r = get_str(o, "", "format", true, SHOWN_MAX, &s, &n, why, cap);
        if (r < 0)
                return r;
        if (!str_is(s, n, MANIFEST_FORMAT))
                return fail(why, cap, "format: \"%s\" is not \"%s\"", show(s, n).s, MANIFEST_FORMAT);
        r = get_str(o, "", "name", true, IMAGE_MAX_NAME, &s, &n, why, cap);
        if (r < 0)
                return r;
        if (!name_ok(s, n))
                return fail(why, cap, "name: \"%s\" is not 1 to %d of a-z 0-9 . _ - starting with a letter or digit",
                            show(s, n).s, IMAGE_MAX_NAME);
        memcpy(m->name, s, n);
        m->name[n] = '\0';
        r = get_uint(o, "", "version", 1, IMAGE_MAX_VERSION, &m->version, why, cap);
        if (r < 0)
                return r;
        r = get_str(o, "", "arch", true, sizeof(m->arch) - 1, &s, &n, why, cap);
        if (r < 0)
                return r;
        if (!str_is(s, n, "x86_64") && !str_is(s, n, "arm64"))
                return fail(why, cap, "arch: \"%s\" is not x86_64 or arm64", show(s, n).s);
        memcpy(m->arch, s, n);
        m->arch[n] = '\0';
        r = get_str(o, "", "key_id", true, MANIFEST_KEY_ID_HEX, &s, &n, why, cap);
        if (r < 0)
                return r;
        if (n != MANIFEST_KEY_ID_HEX || !lower_hex(s, n))
                return fail(why, cap, "key_id: \"%s\" is not %d lower-case hex digits", show(s, n).s,
                            MANIFEST_KEY_ID_HEX);
        memcpy(m->key_id, s, n + 1);
        return 0;
}

static int parse_settings(json_object *o, struct manifest *m, char *why, size_t cap)
{
        const char *s;
        size_t n;
        int r;

        r = get_time(o, "created", &m->created, why, cap);
        if (r < 0)
                return r;
        r = get_time(o, "expires", &m->expires, why, cap);
        if (r < 0)
                return r;
        if (m->expires <= m->created)
                return fail(why, cap, "expires: not after created");
        r = get_uint(o, "", "chunk_size", IMAGE_MIN_CHUNK_BYTES, IMAGE_MAX_CHUNK_BYTES, &m->chunk_size, why, cap);
        if (r < 0)
                return r;
        if (m->chunk_size & (m->chunk_size - 1))
                return fail(why, cap, "chunk_size: %llu is not a power of two", (unsigned long long)m->chunk_size);
        r = get_str(o, "", "cmdline", false, IMAGE_MAX_CMDLINE, &s, &n, why, cap);
        if (r < 0)
                return r;
        if (r == 0) {
                for (size_t i = 0; i < n; i++)
                        if (s[i] < 0x20 || s[i] > 0x7e)
                                return fail(why, cap, "cmdline: byte %zu is not printable ASCII", i);
                memcpy(m->cmdline, s, n);
                m->cmdline[n] = '\0';
        }
        return 0;
}

static const char *const chunk_fields[] = { "size", "sha256", NULL };
static const char *const disk_chunk_fields[] = { "offset", "length", "size", "sha256", NULL };

static int parse_chunk(json_object *v, const char *where, bool disk, struct manifest_chunk *c, char *why, size_t cap)
{
        int r;

        if (!json_object_is_type(v, json_type_object))
                return fail(why, cap, "%s: must be an object", where);
        r = only_fields(v, where, disk ? disk_chunk_fields : chunk_fields, why, cap);
        if (r < 0)
                return r;
        r = get_uint(v, where, "size", 1, IMAGE_MAX_ARTIFACT_BYTES, &c->size, why, cap);
        if (r < 0)
                return r;
        r = get_digest(v, where, c->sha256, why, cap);
        if (r < 0 || !disk)
                return r;
        r = get_uint(v, where, "offset", 0, IMAGE_MAX_ARTIFACT_BYTES, &c->offset, why, cap);
        if (r < 0)
                return r;
        return get_uint(v, where, "length", 1, IMAGE_MAX_ARTIFACT_BYTES, &c->length, why, cap);
}

static int parse_chunks(json_object *o, const char *where, bool disk, struct manifest_artifact *a, char *why,
                        size_t cap)
{
        json_object *arr;
        size_t n;
        int r;

        r = get(o, where, "chunks", json_type_array, true, &arr, why, cap);
        if (r < 0)
                return r;
        n = json_object_array_length(arr);
        if (n > IMAGE_MAX_CHUNKS)
                return fail(why, cap, "%s.chunks: more than %d", where, IMAGE_MAX_CHUNKS);
        if (n == 0)
                return 0;
        a->chunks = calloc(n, sizeof(*a->chunks));
        if (!a->chunks)
                return -ENOMEM;
        a->n_chunks = n;
        for (size_t i = 0; i < n; i++) {
                char at_path[64];

                snprintf(at_path, sizeof(at_path), "%s.chunks[%zu]", where, i);
                r = parse_chunk(json_object_array_get_idx(arr, i), at_path, disk, &a->chunks[i], why, cap);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* kernel, initrd, rootfs: the file cut into chunk_size pieces, the last one shorter or equal. */
static int check_file_chunks(struct manifest_artifact *a, const char *where, uint64_t chunk_size, char *why,
                             size_t cap)
{
        uint64_t off = 0;

        if (a->n_chunks == 0)
                return fail(why, cap, "%s.chunks: empty; the file has at least one", where);
        for (size_t i = 0; i < a->n_chunks; i++) {
                struct manifest_chunk *c = &a->chunks[i];

                if (c->size > chunk_size || (i + 1 < a->n_chunks && c->size != chunk_size))
                        return fail(why, cap, "%s.chunks[%zu].size: %llu, but every chunk but the last is chunk_size "
                                    "(%llu) bytes and the last at most that", where, i, (unsigned long long)c->size,
                                    (unsigned long long)chunk_size);
                c->file_offset = c->offset = off;
                c->length = c->size;
                if (__builtin_add_overflow(off, c->size, &off))
                        return fail(why, cap, "%s.chunks[%zu].size: too large", where, i);
        }
        if (off != a->size)
                return fail(why, cap, "%s.size: %llu, but the chunks add up to %llu", where,
                            (unsigned long long)a->size, (unsigned long long)off);
        return 0;
}

static int parse_extents(json_object *o, const char *where, struct manifest_artifact *a, char *why, size_t cap)
{
        json_object *arr;
        uint64_t prev_end = 0;
        size_t n;
        int r;

        r = get(o, where, "extents", json_type_array, true, &arr, why, cap);
        if (r < 0)
                return r;
        n = json_object_array_length(arr);
        if (n > IMAGE_MAX_EXTENTS)
                return fail(why, cap, "%s.extents: more than %d", where, IMAGE_MAX_EXTENTS);
        if (n == 0)
                return 0;
        a->extents = calloc(n, sizeof(*a->extents));
        if (!a->extents)
                return -ENOMEM;
        a->n_extents = n;
        for (size_t i = 0; i < n; i++) {
                json_object *pair = json_object_array_get_idx(arr, i);
                struct manifest_extent *e = &a->extents[i];
                char at_path[64];
                uint64_t end;

                snprintf(at_path, sizeof(at_path), "%s.extents[%zu]", where, i);
                if (!json_object_is_type(pair, json_type_array) || json_object_array_length(pair) != 2)
                        return fail(why, cap, "%s: must be an [offset, length] pair", at_path);
                r = uint_value(json_object_array_get_idx(pair, 0), at_path, "offset", 0, IMAGE_MAX_ARTIFACT_BYTES,
                               &e->offset, why, cap);
                if (r < 0)
                        return r;
                r = uint_value(json_object_array_get_idx(pair, 1), at_path, "length", 1, IMAGE_MAX_ARTIFACT_BYTES,
                               &e->length, why, cap);
                if (r < 0)
                        return r;
                if (e->offset % IMAGE_EXTENT_ALIGN || e->length % IMAGE_EXTENT_ALIGN)
                        return fail(why, cap, "%s: [%llu, %llu] is not aligned to %d bytes", at_path,
                                    (unsigned long long)e->offset, (unsigned long long)e->length, IMAGE_EXTENT_ALIGN);
                if (__builtin_add_overflow(e->offset, e->length, &end) || end > a->raw_size)
                        return fail(why, cap, "%s: ends past raw_size (%llu)", at_path,
                                    (unsigned long long)a->raw_size);
                if (i > 0 && e->offset <= prev_end)
                        return fail(why, cap, "%s: overlaps or touches the extent before it", at_path);
                prev_end = end;
        }
        return 0;
}

/* One disk chunk at the cursor (extent e, raw position pos): in order, inside its extent. */
static int check_disk_chunk(const struct manifest_artifact *a, const struct manifest_chunk *c, size_t i, size_t e,
                            uint64_t pos, uint64_t chunk_size, const char *where, char *why, size_t cap)
{
        uint64_t extent_end = a->extents[e].offset + a->extents[e].length;

        if (c->offset != pos)
                return fail(why, cap, "%s.chunks[%zu].offset: %llu, but the chunks cover the extents in order and "
                            "the next raw byte is %llu", where, i, (unsigned long long)c->offset,
                            (unsigned long long)pos);
        if (c->length > chunk_size || c->length > extent_end - pos)
                return fail(why, cap, "%s.chunks[%zu].length: %llu, more than chunk_size or past its extent", where,
                            i, (unsigned long long)c->length);
        if (a->compression == MANIFEST_COMPRESS_NONE && c->size != c->length)
                return fail(why, cap, "%s.chunks[%zu].size: %llu, but uncompressed it equals length (%llu)", where, i,
                            (unsigned long long)c->size, (unsigned long long)c->length);
        if (a->compression == MANIFEST_COMPRESS_ZSTD && c->size > IMAGE_MAX_ZSTD_CHUNK(c->length))
                return fail(why, cap, "%s.chunks[%zu].size: %llu, more than a zstd frame of %llu bytes can take",
                            where, i, (unsigned long long)c->size, (unsigned long long)c->length);
        return 0;
}

static int check_disk_chunks(struct manifest_artifact *a, const char *where, uint64_t chunk_size, char *why,
                             size_t cap)
{
        uint64_t pos = a->n_extents > 0 ? a->extents[0].offset : 0, file_off = 0;
        size_t e = 0;
        int r;

        for (size_t i = 0; i < a->n_chunks; i++) {
                struct manifest_chunk *c = &a->chunks[i];

                if (e == a->n_extents)
                        return fail(why, cap, "%s.chunks[%zu]: past the end of the extents", where, i);
                r = check_disk_chunk(a, c, i, e, pos, chunk_size, where, why, cap);
                if (r < 0)
                        return r;
                c->file_offset = file_off;
                if (__builtin_add_overflow(file_off, c->size, &file_off))
                        return fail(why, cap, "%s.chunks[%zu].size: too large", where, i);
                pos += c->length;
                if (pos == a->extents[e].offset + a->extents[e].length && ++e < a->n_extents)
                        pos = a->extents[e].offset;
        }
        if (e != a->n_extents)
                return fail(why, cap, "%s.chunks: cover the extents only up to raw byte %llu", where,
                            (unsigned long long)pos);
        if (file_off != a->size)
                return fail(why, cap, "%s.size: %llu, but the chunks add up to %llu", where,
                            (unsigned long long)a->size, (unsigned long long)file_off);
        return 0;
}

static const char *const config_fields[] = { "offset", "length", NULL };

/* disk.config: the configuration partition's range, past the boot area, inside raw_size, and no extent in it. */
static int parse_config(json_object *o, const char *where, struct manifest_artifact *a, char *why, size_t cap)
{
        json_object *c;
        char at_path[48];
        uint64_t end;
        int r;

        r = get(o, where, "config", json_type_object, false, &c, why, cap);
        if (r != 0)
                return r < 0 ? r : 0;
        snprintf(at_path, sizeof(at_path), "%s.config", where);
        if ((r = only_fields(c, at_path, config_fields, why, cap)) < 0 ||
            (r = get_uint(c, at_path, "offset", IMAGE_CONFIG_MIN_OFFSET, IMAGE_MAX_ARTIFACT_BYTES, &a->config_offset,
                          why, cap)) < 0 ||
            (r = get_uint(c, at_path, "length", IMAGE_CONFIG_MIN_BYTES, IMAGE_MAX_ARTIFACT_BYTES, &a->config_length,
                          why, cap)) < 0)
                return r;
        if (a->config_offset % IMAGE_EXTENT_ALIGN || a->config_length % IMAGE_EXTENT_ALIGN)
                return fail(why, cap, "%s: [%llu, %llu] is not aligned to %d bytes", at_path,
                            (unsigned long long)a->config_offset, (unsigned long long)a->config_length,
                            IMAGE_EXTENT_ALIGN);
        end = a->config_offset + a->config_length;      /* both at most 4 TiB: no overflow */
        if (end > a->raw_size)
                return fail(why, cap, "%s: ends past raw_size (%llu)", at_path, (unsigned long long)a->raw_size);
        for (size_t i = 0; i < a->n_extents; i++)
                if (a->extents[i].offset < end && a->config_offset < a->extents[i].offset + a->extents[i].length)
                        return fail(why, cap, "%s: overlaps extents[%zu]; the image ships it as zeros", at_path, i);
        a->has_config = true;
        return 0;
}

static int parse_disk(json_object *o, const char *where, uint64_t chunk_size, struct manifest_artifact *a,
                      char *why, size_t cap)
{
        const char *s;
        size_t n;
        int r;

        r = get_str(o, where, "compression", true, SHOWN_MAX, &s, &n, why, cap);
        if (r < 0)
                return r;
        if (str_is(s, n, "none"))
                a->compression = MANIFEST_COMPRESS_NONE;
        else if (str_is(s, n, "zstd"))
                a->compression = MANIFEST_COMPRESS_ZSTD;
        else
                return fail(why, cap, "%s.compression: \"%s\" is not none or zstd", where, show(s, n).s);
        r = get_uint(o, where, "raw_size", IMAGE_EXTENT_ALIGN, IMAGE_MAX_ARTIFACT_BYTES, &a->raw_size, why, cap);
        if (r < 0)
                return r;
        if (a->raw_size % IMAGE_EXTENT_ALIGN)
                return fail(why, cap, "%s.raw_size: %llu is not a multiple of %d", where,
                            (unsigned long long)a->raw_size, IMAGE_EXTENT_ALIGN);
        r = parse_extents(o, where, a, why, cap);
        if (r < 0)
                return r;
        r = parse_config(o, where, a, why, cap);
        if (r < 0)
                return r;
        r = parse_chunks(o, where, true, a, why, cap);
        if (r < 0)
                return r;
        return check_disk_chunks(a, where, chunk_size, why, cap);
}

static int parse_rootfs_fs(json_object *o, const char *where, struct manifest_artifact *a, char *why, size_t cap)
{
        const char *s;
        size_t n;
        int r;

        r = get_str(o, where, "fs", true, SHOWN_MAX, &s, &n, why, cap);
        if (r < 0)
                return r;
        if (str_is(s, n, "squashfs"))
                a->fs = MANIFEST_FS_SQUASHFS;
        else if (str_is(s, n, "erofs"))
                a->fs = MANIFEST_FS_EROFS;
        else
                return fail(why, cap, "%s.fs: \"%s\" is not squashfs or erofs", where, show(s, n).s);
        return 0;
}

static const char *const file_fields[] = { "size", "sha256", "chunks", NULL };
static const char *const disk_fields[] = { "size", "sha256", "chunks", "compression", "raw_size", "extents", "config",
                                           NULL };
static const char *const rootfs_fields[] = { "size", "sha256", "chunks", "fs", NULL };

static int parse_artifact(json_object *v, enum manifest_artifact_kind k, uint64_t chunk_size,
                          struct manifest_artifact *a, char *why, size_t cap)
{
        char where[32];
        int r;

        snprintf(where, sizeof(where), "artifacts.%s", artifact_names[k]);
        if (!json_object_is_type(v, json_type_object))
                return fail(why, cap, "%s: must be an object", where);
        r = only_fields(v, where, k == MANIFEST_DISK ? disk_fields : k == MANIFEST_ROOTFS ? rootfs_fields : file_fields,
                        why, cap);
        if (r < 0)
                return r;
        a->present = true;
        r = get_uint(v, where, "size", 0, IMAGE_MAX_ARTIFACT_BYTES, &a->size, why, cap);
        if (r < 0)
                return r;
        r = get_digest(v, where, a->sha256, why, cap);
        if (r < 0)
                return r;
        if (k == MANIFEST_DISK)
                return parse_disk(v, where, chunk_size, a, why, cap);
        if (k == MANIFEST_ROOTFS) {
                r = parse_rootfs_fs(v, where, a, why, cap);
                if (r < 0)
                        return r;
        }
        r = parse_chunks(v, where, false, a, why, cap);
        if (r < 0)
                return r;
        return check_file_chunks(a, where, chunk_size, why, cap);
}

static int parse_artifacts(json_object *o, struct manifest *m, char *why, size_t cap)
{
        json_object *arts;
        int r;

        r = get(o, "", "artifacts", json_type_object, true, &arts, why, cap);
        if (r < 0)
                return r;
        json_object_object_foreach(arts, key, val) {
                int k = manifest_artifact_from_name(key);

                if (k < 0)
                        return fail(why, cap, "artifacts: unknown artifact \"%s\"", show(key, strlen(key)).s);
                r = parse_artifact(val, (enum manifest_artifact_kind)k, m->chunk_size, &m->artifacts[k], why, cap);
                if (r < 0)
                        return r;
        }
        if (!m->artifacts[MANIFEST_KERNEL].present)
                return fail(why, cap, "artifacts.kernel: missing");
        if (!m->artifacts[MANIFEST_INITRD].present)
                return fail(why, cap, "artifacts.initrd: missing");
        if (!m->artifacts[MANIFEST_DISK].present && !m->artifacts[MANIFEST_ROOTFS].present)
                return fail(why, cap, "artifacts: neither disk nor rootfs");
        return 0;
}

static const char *const top_fields[] = { "format", "name", "version", "arch", "created", "expires", "key_id",
                                          "chunk_size", "cmdline", "artifacts", NULL };

int manifest_parse(const void *data, size_t len, struct manifest *ret, char *why, size_t why_len)
{
        struct scan s = { .p = data, .len = len, .why = why, .cap = why_len };
        struct manifest m = { 0 };
        const char *nul;
        json_object *o = NULL;
        int r;

        if (len > IMAGE_MAX_MANIFEST_BYTES) {
                fail(why, why_len, "the manifest is larger than %d bytes", IMAGE_MAX_MANIFEST_BYTES);
                return -EFBIG;
        }
        if (!data || len == 0)
                return fail(why, why_len, "the manifest is empty");
        nul = memchr(data, '\0', len);
        if (nul)
                return fail(why, why_len, "byte %zu: a NUL byte", (size_t)(nul - (const char *)data));
        r = scan_document(&s);
        if (r < 0)
                return r;
        r = parse_json(data, len, &o, why, why_len);
        if (r < 0)
                return r;
        r = only_fields(o, "", top_fields, why, why_len);
        if (r >= 0)
                r = parse_identity(o, &m, why, why_len);
        if (r >= 0)
                r = parse_settings(o, &m, why, why_len);
        if (r >= 0)
                r = parse_artifacts(o, &m, why, why_len);
        json_object_put(o);
        if (r < 0) {
                manifest_free(&m);
                if (r == -ENOMEM)
                        fail(why, why_len, "out of memory");
                return r;
        }
        *ret = m;
        return 0;
}

void manifest_free(struct manifest *m)
{
        if (!m)
                return;
        for (size_t k = 0; k < _MANIFEST_ARTIFACT_MAX; k++) {
                free(m->artifacts[k].chunks);
                free(m->artifacts[k].extents);
                m->artifacts[k].chunks = NULL;
                m->artifacts[k].extents = NULL;
                m->artifacts[k].n_chunks = m->artifacts[k].n_extents = 0;
        }
}

bool manifest_expired(const struct manifest *m, int64_t now)
{
        return now >= m->expires;
}

int manifest_disk_hole(const struct manifest_artifact *a, size_t i, struct manifest_extent *ret)
{
        uint64_t start, end;

        if (!a->present || a->raw_size == 0)
                return -EINVAL;
        if (i > a->n_extents)
                return -ENOENT;
        start = i == 0 ? 0 : a->extents[i - 1].offset + a->extents[i - 1].length;
        end = i == a->n_extents ? a->raw_size : a->extents[i].offset;
        *ret = (struct manifest_extent){ .offset = start, .length = end - start };
        return 0;
}
