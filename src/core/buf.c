/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>

#include "metald/buf.h"

static int buf_reserve(struct buf *b, size_t extra)
{
        size_t need, alloc;
        char *p;

        if (extra > b->max || b->len > b->max - extra)
                return -E2BIG;
        need = b->len + extra + 1;
        if (need <= b->alloc)
                return 0;
        alloc = b->alloc ? b->alloc : 64;
        while (alloc < need)
                alloc *= 2;
        p = realloc(b->data, alloc);
        if (!p)
                return -ENOMEM;
        b->data = p;
        b->alloc = alloc;
        return 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
        int r = buf_reserve(b, n);

        if (r < 0)
                return r;
        if (n)
                memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0';
        return 0;
}

int buf_puts(struct buf *b, const char *s)
{
        return buf_append(b, s, strlen(s));
}

int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
        va_list aq;
        int n, r;

        va_copy(aq, ap);
        n = vsnprintf(NULL, 0, fmt, aq);
        va_end(aq);
        if (n < 0)
                return -EINVAL;
        r = buf_reserve(b, (size_t)n);
        if (r < 0)
                return r;
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        b->len += (size_t)n;
        return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = buf_vprintf(b, fmt, ap);
        va_end(ap);
        return r;
}

void buf_reset(struct buf *b)
{
        b->len = 0;
        if (b->data)
                b->data[0] = '\0';
}

void buf_free(struct buf *b)
{
        free(b->data);
        b->data = NULL;
        b->len = b->alloc = 0;
}

char *buf_steal(struct buf *b)
{
        char *p = b->data;

        if (!p)
                p = strdup("");
        b->data = NULL;
        b->len = b->alloc = 0;
        return p;
}
