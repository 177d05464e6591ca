/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Builds client datagrams for DHCP tests. */
#include <stdint.h>
#include <string.h>

#include "metald/dhcp.h"

struct client_pkt {
        uint8_t b[1600];
        size_t len;
};

static inline void cp_be32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static inline void cp_opt(struct client_pkt *p, uint8_t code, const void *data, size_t len)
{
        p->b[p->len++] = code;
        p->b[p->len++] = (uint8_t)len;
        memcpy(p->b + p->len, data, len);
        p->len += len;
}

static inline void cp_opt_u32(struct client_pkt *p, uint8_t code, uint32_t v)
{
        uint8_t b[4];

        cp_be32(b, v);
        cp_opt(p, code, b, 4);
}

static inline void cp_opt_str(struct client_pkt *p, uint8_t code, const char *s)
{
        cp_opt(p, code, s, strlen(s));
}

/* Header plus option 53; the caller adds options then cp_end(). */
static inline void cp_init(struct client_pkt *p, int type, const uint8_t mac[6], uint32_t xid)
{
        memset(p, 0, sizeof(*p));
        p->b[0] = DHCP_OP_REQUEST;
        p->b[1] = 1;
        p->b[2] = 6;
        cp_be32(p->b + 4, xid);
        memcpy(p->b + 28, mac, 6);
        cp_be32(p->b + 236, DHCP_MAGIC_COOKIE);
        p->len = DHCP_HEADER_LEN;
        uint8_t t = (uint8_t)type;
        cp_opt(p, DHCP_OPT_MSG_TYPE, &t, 1);
}

static inline void cp_ciaddr(struct client_pkt *p, uint32_t a) { cp_be32(p->b + 12, a); }
static inline void cp_giaddr(struct client_pkt *p, uint32_t a) { cp_be32(p->b + 24, a); }
static inline void cp_flags(struct client_pkt *p, uint16_t f) { p->b[10] = (uint8_t)(f >> 8), p->b[11] = (uint8_t)f; }

static inline void cp_end(struct client_pkt *p)
{
        p->b[p->len++] = DHCP_OPT_END;
}

#define IP4(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))
