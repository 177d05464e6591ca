/* SPDX-License-Identifier: Apache-2.0 */
#include <stdlib.h>
#include <string.h>

#include "metald/http.h"
#include "metald/util.h"

int http_request_line_target(const void *buf, size_t n, const char **ret_target, size_t *ret_len)
{
        const char *p = buf, *end = p + n, *t, *sp;
        size_t m;

        /* RFC 9112 §2.2: a server should ignore empty lines ahead of the request line */
        while (p < end && (*p == '\r' || *p == '\n'))
                p++;
        m = (size_t)(end - p);
        if (m >= 4 && memcmp(p, "GET ", 4) == 0)
                t = p + 4;
        else if (m >= 5 && memcmp(p, "HEAD ", 5) == 0)
                t = p + 5;
        else
                return -EINVAL;
        sp = memchr(t, ' ', (size_t)(end - t));
        if (!sp || sp == t)
                return -EINVAL;
        *ret_target = t;
        *ret_len = (size_t)(sp - t);
        return 0;
}

/* Fibonacci hashing: the top bits of addr x 2^32/phi spread neighbouring addresses. */
static size_t home(const struct http_client_counts *t, uint32_t addr)
{
        return (uint32_t)(addr * 0x9E3779B1u) >> (32 - t->bits);
}

int http_client_counts_init(struct http_client_counts *t, size_t max_addrs)
{
        unsigned bits = 4;

        /* at most half full, so that probe sequences stay short */
        while (bits < 30 && ((size_t)1 << bits) < 2 * max_addrs)
                bits++;
        *t = (struct http_client_counts){ .bits = bits, .mask = ((size_t)1 << bits) - 1, .max_addrs = max_addrs };
        t->slots = calloc(t->mask + 1, sizeof(*t->slots));
        return t->slots ? 0 : -ENOMEM;
}

void http_client_counts_free(struct http_client_counts *t)
{
        free(t->slots);
        t->slots = NULL;
}

/* The slot holding addr, or the empty slot where it would go. */
static size_t find(const struct http_client_counts *t, uint32_t addr)
{
        size_t i = home(t, addr);

        while (t->slots[i].count && t->slots[i].addr != addr)
                i = (i + 1) & t->mask;
        return i;
}

uint32_t http_client_count(const struct http_client_counts *t, uint32_t addr)
{
        return t->slots[find(t, addr)].count;
}

/* Linear-probing deletion: later entries of the same probe run move up into the hole. */
static void remove_at(struct http_client_counts *t, size_t hole)
{
        size_t j = hole;

        t->slots[hole].count = 0;
        for (;;) {
                size_t k;

                j = (j + 1) & t->mask;
                if (!t->slots[j].count)
                        return;
                k = home(t, t->slots[j].addr);
                /* the entry at j may fill the hole unless its home lies cyclically in (hole, j] */
                if (hole <= j ? (k > hole && k <= j) : (k > hole || k <= j))
                        continue;
                t->slots[hole] = t->slots[j];
                t->slots[j].count = 0;
                hole = j;
        }
}

int http_client_counts_add(struct http_client_counts *t, uint32_t addr)
{
        size_t i = find(t, addr);

        if (!t->slots[i].count) {
                if (t->n_addrs >= t->max_addrs)
                        return -ENOSPC;
                t->n_addrs++;
                t->slots[i].addr = addr;
        }
        t->slots[i].count++;
        return 0;
}

void http_client_counts_del(struct http_client_counts *t, uint32_t addr)
{
        size_t i = find(t, addr);

        if (!t->slots[i].count)
                return;         /* never counted: nothing to give back */
        if (--t->slots[i].count == 0) {
                t->n_addrs--;
                remove_at(t, i);
        }
}
