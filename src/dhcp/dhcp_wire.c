/* SPDX-License-Identifier: Apache-2.0 */
#include "metald/cursor.h"
#include "metald/dhcp.h"
#include "metald/util.h"

/* One walk over an options area: either measuring (pass 1) or copying (pass 2). */
struct opt_walk {
        struct dhcp_packet *p;
        uint16_t total[256];            /* pass 1: bytes per code */
        uint16_t fill[256];             /* pass 2: bytes copied so far per code */
        uint16_t base[256];             /* pass 2: offset of each code in storage */
        bool seen[256];
        unsigned instances;
        bool copy;
};

/*
 * The next option of an area into code, data and olen: 1, or 0 at END or at
 * the end of the area, or -EBADMSG when an option runs past that end. PAD is
 * skipped.
 */
static int next_option(struct cursor *c, uint8_t *code, const uint8_t **data, uint8_t *olen)
{
        while (c->left > 0) {
                if (cur_u8(c, code) < 0)
                        return -EBADMSG;
                if (*code == DHCP_OPT_PAD)
                        continue;
                if (*code == DHCP_OPT_END)
                        return 0;
                if (cur_u8(c, olen) < 0 || cur_bytes(c, *olen, data) < 0)
                        return -EBADMSG;        /* option runs past the end of its area */
                return 1;
        }
        /* no END option: tolerated when the last option was complete */
        return 0;
}

static int walk_area(struct opt_walk *w, const uint8_t *area, size_t len, bool main_area)
{
        struct cursor c = cur_init(area, len);
        const uint8_t *data;
        uint8_t code, olen;
        int r;

        while ((r = next_option(&c, &code, &data, &olen)) > 0) {
                if (++w->instances > DHCP_MAX_OPTIONS)
                        return -EBADMSG;
                /* option 52 only counts in the main area: no overload loops */
                if (code == DHCP_OPT_OVERLOAD && !main_area)
                        continue;
                if (!w->copy) {
                        w->seen[code] = true;
                        w->total[code] += olen;
                        continue;
                }
                memcpy(w->p->storage + w->base[code] + w->fill[code], data, olen);
                w->fill[code] += olen;
        }
        return r;
}

static int walk_all(struct opt_walk *w, const uint8_t *options, size_t len)
{
        int r = walk_area(w, options, len, true);

        if (r < 0)
                return r;
        if (w->p->overload & 1)
                r = walk_area(w, w->p->file, sizeof(w->p->file), false);
        if (r == 0 && (w->p->overload & 2))
                r = walk_area(w, w->p->sname, sizeof(w->p->sname), false);
        return r;
}

/* The overload option decides which extra areas carry options, so it is read first. */
static int find_overload(const uint8_t *options, size_t len, uint8_t *ret)
{
        struct cursor c = cur_init(options, len);
        const uint8_t *data;
        uint8_t code, olen;
        int r;

        *ret = 0;
        while ((r = next_option(&c, &code, &data, &olen)) > 0)
                if (code == DHCP_OPT_OVERLOAD) {
                        if (olen != 1 || data[0] < 1 || data[0] > 3)
                                return -EBADMSG;
                        *ret = data[0];
                }
        return r;
}

static int parse_header(struct cursor *c, struct dhcp_packet *p)
{
        const uint8_t *b;
        uint32_t cookie;

        if (cur_u8(c, &p->op) < 0 || cur_u8(c, &p->htype) < 0 || cur_u8(c, &p->hlen) < 0 ||
            cur_u8(c, &p->hops) < 0 || cur_be32(c, &p->xid) < 0 || cur_be16(c, &p->secs) < 0 ||
            cur_be16(c, &p->flags) < 0 || cur_be32(c, &p->ciaddr) < 0 || cur_be32(c, &p->yiaddr) < 0 ||
            cur_be32(c, &p->siaddr) < 0 || cur_be32(c, &p->giaddr) < 0)
                return -EBADMSG;
        if (cur_bytes(c, 16, &b) < 0)
                return -EBADMSG;
        memcpy(p->chaddr, b, 16);
        if (cur_bytes(c, 64, &b) < 0)
                return -EBADMSG;
        memcpy(p->sname, b, 64);
        if (cur_bytes(c, 128, &b) < 0)
                return -EBADMSG;
        memcpy(p->file, b, 128);
        if (p->hlen > 16)
                return -EBADMSG;
        if (cur_be32(c, &cookie) < 0 || cookie != DHCP_MAGIC_COOKIE)
                return -EBADMSG;
        return 0;
}

int dhcp_parse(const void *buf, size_t len, struct dhcp_packet *p)
{
        struct opt_walk w = { .p = p };
        struct cursor c = cur_init(buf, len);
        size_t off = 0;
        int r;

        if (len > DHCP_MAX_PACKET)
                return -EBADMSG;
        memset(p, 0, offsetof(struct dhcp_packet, storage));
        if ((r = parse_header(&c, p)) < 0)
                return r;
        if ((r = find_overload(c.p, c.left, &p->overload)) < 0)
                return r;
        if ((r = walk_all(&w, c.p, c.left)) < 0)
                return r;
        for (unsigned code = 1; code < 255; code++) {
                w.base[code] = (uint16_t)off;
                off += w.total[code];
        }
        /* concatenated data never exceeds the datagram, so storage always suffices */
        if (off > sizeof(p->storage))
                return -EBADMSG;
        w.copy = true;
        w.instances = 0;
        if ((r = walk_all(&w, c.p, c.left)) < 0)
                return r;
        for (unsigned code = 1; code < 255; code++) {
                if (!w.seen[code])
                        continue;
                p->opt[code] = (struct dhcp_option){
                        .data = p->storage + w.base[code], .len = w.fill[code], .present = true,
                };
        }
        return 0;
}

int dhcp_msg_type(const struct dhcp_packet *p)
{
        const struct dhcp_option *o = &p->opt[DHCP_OPT_MSG_TYPE];

        if (!o->present || o->len != 1 || o->data[0] == 0 || o->data[0] >= _DHCP_MSG_MAX)
                return 0;
        return o->data[0];
}

const char *dhcp_msg_type_name(int type)
{
        static const char *const names[] = {
                [DHCP_DISCOVER] = "DISCOVER", [DHCP_OFFER] = "OFFER", [DHCP_REQUEST] = "REQUEST",
                [DHCP_DECLINE] = "DECLINE", [DHCP_ACK] = "ACK", [DHCP_NAK] = "NAK",
                [DHCP_RELEASE] = "RELEASE", [DHCP_INFORM] = "INFORM",
        };

        if (type <= 0 || type >= _DHCP_MSG_MAX)
                return "UNKNOWN";
        return names[type];
}

int dhcp_opt_add(struct dhcp_optlist *l, uint8_t code, const void *data, size_t len)
{
        if (l->n >= ARRAY_SIZE(l->o) || len > sizeof(l->data) - l->used)
                return -E2BIG;
        l->o[l->n].code = code;
        l->o[l->n].len = (uint16_t)len;
        l->o[l->n].off = (uint16_t)l->used;
        if (len)
                memcpy(l->data + l->used, data, len);
        l->used += len;
        l->n++;
        return 0;
}

int dhcp_opt_add_u8(struct dhcp_optlist *l, uint8_t code, uint8_t v)
{
        return dhcp_opt_add(l, code, &v, 1);
}

int dhcp_opt_add_u16(struct dhcp_optlist *l, uint8_t code, uint16_t v)
{
        uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

        return dhcp_opt_add(l, code, b, 2);
}

int dhcp_opt_add_u32(struct dhcp_optlist *l, uint8_t code, uint32_t v)
{
        uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };

        return dhcp_opt_add(l, code, b, 4);
}

int dhcp_opt_add_str(struct dhcp_optlist *l, uint8_t code, const char *s)
{
        return dhcp_opt_add(l, code, s, strlen(s));
}

bool dhcp_opt_has(const struct dhcp_optlist *l, uint8_t code)
{
        for (size_t i = 0; i < l->n; i++)
                if (l->o[i].code == code)
                        return true;
        return false;
}

/* Bytes an option takes on the wire, split into 255-byte instances (RFC 3396). */
static size_t opt_wire_len(size_t len)
{
        size_t pieces = len == 0 ? 1 : (len + 254) / 255;

        return len + 2 * pieces;
}

static void put_be32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static size_t write_opt(uint8_t *dst, uint8_t code, const uint8_t *data, size_t len)
{
        size_t o = 0;

        do {
                size_t piece = MIN(len, 255);

                dst[o++] = code;
                dst[o++] = (uint8_t)piece;
                if (piece)
                        memcpy(dst + o, data, piece);
                o += piece;
                data += piece;
                len -= piece;
        } while (len > 0);
        return o;
}

struct area {
        uint8_t *p;
        size_t cap;     /* excluding the END byte */
        size_t used;
};

static void write_header(const struct dhcp_reply_header *h, uint8_t *out, bool file_free, bool sname_free)
{
        memset(out, 0, DHCP_HEADER_LEN);
        out[0] = h->op;
        out[1] = h->htype;
        out[2] = h->hlen;
        put_be32(out + 4, h->xid);
        out[10] = (uint8_t)(h->flags >> 8);
        out[11] = (uint8_t)h->flags;
        put_be32(out + 12, h->ciaddr);
        put_be32(out + 16, h->yiaddr);
        put_be32(out + 20, h->siaddr);
        put_be32(out + 24, h->giaddr);
        memcpy(out + 28, h->chaddr, 16);
        if (!sname_free && h->sname)
                memcpy(out + 44, h->sname, strlen(h->sname));
        if (!file_free && h->file)
                memcpy(out + 108, h->file, strlen(h->file));
        put_be32(out + 236, DHCP_MAGIC_COOKIE);
}

int dhcp_build(const struct dhcp_reply_header *h, const struct dhcp_optlist *l, size_t max_size,
               uint8_t *out, size_t cap, size_t *ret_len)
{
        bool file_free = !h->file || !*h->file, sname_free = !h->sname || !*h->sname;
        struct area areas[3];
        size_t total = 0, n_areas = 1, a = 0, len;

        if (h->file && strlen(h->file) > 127)
                file_free = true;       /* too long for the field: carried by option 67 only */
        if (h->sname && strlen(h->sname) > 63)
                sname_free = true;
        max_size = MIN(max_size, cap);
        if (max_size < DHCP_HEADER_LEN + 1)
                return -EMSGSIZE;
        for (size_t i = 0; i < l->n; i++)
                total += opt_wire_len(l->o[i].len);
        write_header(h, out, file_free, sname_free);
        areas[0] = (struct area){ out + DHCP_HEADER_LEN, max_size - DHCP_HEADER_LEN - 1, 0 };
        if (total > areas[0].cap) {
                uint8_t ov = (uint8_t)((file_free ? 1 : 0) | (sname_free ? 2 : 0));

                if (!ov || areas[0].cap < 3)
                        return -EMSGSIZE;
                areas[0].used = write_opt(areas[0].p, DHCP_OPT_OVERLOAD, &ov, 1);
                if (file_free)
                        areas[n_areas++] = (struct area){ out + 108, 127, 0 };
                if (sname_free)
                        areas[n_areas++] = (struct area){ out + 44, 63, 0 };
        }
        for (size_t i = 0; i < l->n; i++) {
                size_t need = opt_wire_len(l->o[i].len);

                while (a < n_areas && areas[a].used + need > areas[a].cap)
                        a++;            /* options are never split across areas */
                if (a == n_areas)
                        return -EMSGSIZE;
                areas[a].used += write_opt(areas[a].p + areas[a].used, l->o[i].code,
                                           l->data + l->o[i].off, l->o[i].len);
        }
        for (size_t i = 0; i < n_areas; i++)
                areas[i].p[areas[i].used] = DHCP_OPT_END;
        len = DHCP_HEADER_LEN + areas[0].used + 1;
        if (len < DHCP_MIN_REPLY && max_size >= DHCP_MIN_REPLY) {
                memset(out + len, 0, DHCP_MIN_REPLY - len);
                len = DHCP_MIN_REPLY;
        }
        *ret_len = len;
        return 0;
}
