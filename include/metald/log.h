/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <syslog.h>

#include "metald/util.h"

/*
 * One logging API. Under systemd (JOURNAL_STREAM matches stderr) records go to
 * the journal with structured fields; otherwise one plain line each on stderr.
 * Field values are escaped here; untrusted strings placed in the message text
 * must be escaped by the caller with log_escape(). Secrets are never logged.
 */
struct log_field {
        const char *key;    /* upper case, e.g. "MAC" */
        const char *value;
};

void log_setup(const char *ident);
void log_set_level(int prio);
int log_get_level(void);
bool log_to_journal(void);
static inline bool log_enabled(int prio) { return prio <= log_get_level(); }

void log_fields(int prio, const struct log_field *fields, size_t n_fields,
                const char *fmt, ...) _printf_(4, 5);

#define log_full(prio, ...)                                                   \
        do {                                                                  \
                if (log_enabled(prio))                                        \
                        log_fields(prio, NULL, 0, __VA_ARGS__);               \
        } while (0)
#define log_error(...)   log_full(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_notice(...)  log_full(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)    log_full(LOG_INFO, __VA_ARGS__)
#define log_debug(...)   log_full(LOG_DEBUG, __VA_ARGS__)

/* Logs and returns the negative errno, for "return log_error_errno(r, ...)". */
#define log_error_errno(r, ...) ({ int _r = (r); log_error(__VA_ARGS__); _r < 0 ? _r : -_r; })

/* Token bucket per key (a peer address): false once a peer exceeds its burst. */
bool log_ratelimit_ok(const void *key, size_t len);

/* C-style escaping of arbitrary bytes; always NUL-terminates; returns dst. */
char *log_escape(char *dst, size_t cap, const void *src, size_t len);

int log_level_from_string(const char *s);
const char *log_level_to_string(int prio);
