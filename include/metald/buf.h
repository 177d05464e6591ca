/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "metald/util.h"

/* A growable byte buffer with a hard cap; appends past the cap fail with -E2BIG. */
struct buf {
        char *data;     /* always NUL-terminated when non-NULL */
        size_t len;
        size_t alloc;
        size_t max;
};

#define BUF_INIT(cap) ((struct buf){ .max = (cap) })

int buf_append(struct buf *b, const void *p, size_t n);
int buf_puts(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) _printf_(2, 3);
int buf_vprintf(struct buf *b, const char *fmt, va_list ap) _printf_(2, 0);
void buf_reset(struct buf *b);
void buf_free(struct buf *b);
/* Hands the data to the caller (who frees it) and empties the buffer. */
char *buf_steal(struct buf *b);
