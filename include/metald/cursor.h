/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * A read cursor over untrusted bytes. Every accessor fails with -EBADMSG
 * when fewer bytes remain than it needs, and then leaves the cursor as it was.
 */
struct cursor {
        const uint8_t *p;
        size_t left;
};

static inline struct cursor cur_init(const void *p, size_t n)
{
        return (struct cursor){ .p = p, .left = n };
}

static inline int cur_bytes(struct cursor *c, size_t n, const uint8_t **ret)
{
        if (c->left < n)
                return -EBADMSG;
        if (ret)
                *ret = c->p;
        c->p += n;
        c->left -= n;
        return 0;
}

static inline int cur_skip(struct cursor *c, size_t n)
{
        return cur_bytes(c, n, NULL);
}

static inline int cur_u8(struct cursor *c, uint8_t *ret)
{
        const uint8_t *p;

        if (cur_bytes(c, 1, &p) < 0)
                return -EBADMSG;
        *ret = p[0];
        return 0;
}

static inline int cur_be16(struct cursor *c, uint16_t *ret)
{
        const uint8_t *p;

        if (cur_bytes(c, 2, &p) < 0)
                return -EBADMSG;
        *ret = (uint16_t)(p[0] << 8 | p[1]);
        return 0;
}

static inline int cur_be32(struct cursor *c, uint32_t *ret)
{
        const uint8_t *p;

        if (cur_bytes(c, 4, &p) < 0)
                return -EBADMSG;
        *ret = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        return 0;
}

/* A NUL-terminated string that must end inside the remaining bytes. */
static inline int cur_cstr(struct cursor *c, const char **ret, size_t *ret_len)
{
        const uint8_t *nul = memchr(c->p, 0, c->left);
        size_t len;

        if (!nul)
                return -EBADMSG;
        len = (size_t)(nul - c->p);
        *ret = (const char *)c->p;
        if (ret_len)
                *ret_len = len;
        c->p += len + 1;
        c->left -= len + 1;
        return 0;
}
