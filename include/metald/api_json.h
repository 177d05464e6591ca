/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Strict JSON validation for the APIs: every failure fills why with one sentence. */
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int jv_fail(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* One JSON object and nothing after it, nested at most API_MAX_JSON_DEPTH deep. */
int jv_parse_object(const char *body, size_t len, json_object **ret, char *why, size_t cap);
/* allowed is NULL-terminated. */
int jv_only_keys(json_object *o, const char *where, const char *const *allowed, char *why, size_t cap);
int jv_string(json_object *o, const char *key, bool required, size_t max, char *dst, size_t dst_cap,
              char *why, size_t cap);
/* Returns 1 when an optional field is absent (dst untouched). */
int jv_int(json_object *o, const char *key, bool required, int64_t min, int64_t max, int64_t *dst,
           char *why, size_t cap);
int jv_bool(json_object *o, const char *key, bool *dst, char *why, size_t cap);
int jv_child(json_object *o, const char *key, json_type type, json_object **ret, char *why, size_t cap);
