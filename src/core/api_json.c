/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stdio.h>

#include "metald/api_json.h"
#include "metald/limits.h"
#include "metald/util.h"

int jv_fail(char *why, size_t cap, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(why, cap, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

int jv_parse_object(const char *body, size_t len, json_object **ret, char *why, size_t cap)
{
        struct json_tokener *tok;
        json_object *o;
        size_t used;

        if (len == 0)
                return jv_fail(why, cap, "the body is empty; a JSON object is expected");
        if (len > API_MAX_BODY)
                return jv_fail(why, cap, "the body is larger than %d bytes", API_MAX_BODY);
        tok = json_tokener_new_ex(API_MAX_JSON_DEPTH);
        if (!tok)
                return -ENOMEM;
        o = json_tokener_parse_ex(tok, body, (int)len);
        used = (size_t)json_tokener_get_parse_end(tok);
        if (!o || json_tokener_get_error(tok) != json_tokener_success) {
                enum json_tokener_error e = json_tokener_get_error(tok);

                json_object_put(o);
                json_tokener_free(tok);
                return jv_fail(why, cap, "malformed JSON: %s",
                               e == json_tokener_continue ? "unexpected end of input" : json_tokener_error_desc(e));
        }
        json_tokener_free(tok);
        while (used < len && strchr(" \t\r\n", body[used]))
                used++;
        if (used != len) {
                json_object_put(o);
                return jv_fail(why, cap, "malformed JSON: data after the object");
        }
        if (!json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return jv_fail(why, cap, "a JSON object is expected");
        }
        *ret = o;
        return 0;
}

int jv_only_keys(json_object *o, const char *where, const char *const *allowed, char *why, size_t cap)
{
        json_object_object_foreach(o, key, val) {
                bool ok = false;

                (void)val;
                for (size_t i = 0; allowed[i] && !ok; i++)
                        ok = strcmp(allowed[i], key) == 0;
                if (!ok)
                        return jv_fail(why, cap, "%s: unknown field \"%.32s\"", where, key);
        }
        return 0;
}

/* Control characters and invalid UTF-8 are refused: these strings reach logs and terminals. */
static bool text_ok(const char *s, size_t len)
{
        for (size_t i = 0; i < len;) {
                unsigned char c = (unsigned char)s[i];
                size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;

                if (n == 0 || i + n > len || (n == 1 && (c < 0x20 || c == 0x7f)) || (n == 2 && c < 0xc2))
                        return false;
                for (size_t k = 1; k < n; k++)
                        if (((unsigned char)s[i + k] & 0xc0) != 0x80)
                                return false;
                i += n;
        }
        return true;
}

int jv_string(json_object *o, const char *key, bool required, size_t max, char *dst, size_t dst_cap,
              char *why, size_t cap)
{
        json_object *v;
        const char *s;
        size_t len;

        dst[0] = '\0';
        if (!json_object_object_get_ex(o, key, &v))
                return required ? jv_fail(why, cap, "field \"%s\" is required", key) : 0;
        if (!json_object_is_type(v, json_type_string))
                return jv_fail(why, cap, "field \"%s\" must be a string", key);
        s = json_object_get_string(v);
        len = (size_t)json_object_get_string_len(v);
        if (len > max || len >= dst_cap)
                return jv_fail(why, cap, "field \"%s\" is longer than %zu bytes", key, MIN(max, dst_cap - 1));
        if (memchr(s, '\0', len) || !text_ok(s, len))
                return jv_fail(why, cap, "field \"%s\" has control characters or invalid UTF-8", key);
        memcpy(dst, s, len + 1);
        return 0;
}

int jv_int(json_object *o, const char *key, bool required, int64_t min, int64_t max, int64_t *dst,
           char *why, size_t cap)
{
        json_object *v;
        int64_t x;

        if (!json_object_object_get_ex(o, key, &v))
                return required ? jv_fail(why, cap, "field \"%s\" is required", key) : 1;
        if (!json_object_is_type(v, json_type_int))
                return jv_fail(why, cap, "field \"%s\" must be an integer", key);
        errno = 0;
        x = json_object_get_int64(v);
        if (errno || x < min || x > max)
                return jv_fail(why, cap, "field \"%s\" must be between %lld and %lld", key, (long long)min,
                               (long long)max);
        *dst = x;
        return 0;
}

int jv_bool(json_object *o, const char *key, bool *dst, char *why, size_t cap)
{
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v))
                return jv_fail(why, cap, "field \"%s\" is required", key);
        if (!json_object_is_type(v, json_type_boolean))
                return jv_fail(why, cap, "field \"%s\" must be true or false", key);
        *dst = json_object_get_boolean(v);
        return 0;
}

int jv_child(json_object *o, const char *key, json_type type, json_object **ret, char *why, size_t cap)
{
        if (!json_object_object_get_ex(o, key, ret))
                return jv_fail(why, cap, "field \"%s\" is required", key);
        if (!json_object_is_type(*ret, type))
                return jv_fail(why, cap, "field \"%s\" must be %s", key,
                               type == json_type_object ? "an object" : "a list");
        return 0;
}
