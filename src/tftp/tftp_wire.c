/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <strings.h>

#include "metald/cursor.h"
#include "metald/tftp.h"
#include "metald/util.h"

static const char *const option_names[_TFTP_OPT_MAX] = {
        [TFTP_OPT_BLKSIZE] = "blksize",
        [TFTP_OPT_TIMEOUT] = "timeout",
        [TFTP_OPT_TSIZE] = "tsize",
        [TFTP_OPT_WINDOWSIZE] = "windowsize",
};

/* Longest decimal we try to read: UINT64_MAX has 20 digits. */
#define TFTP_MAX_NUMBER_DIGITS 20

const char *tftp_option_name(enum tftp_option o)
{
        return (unsigned)o < _TFTP_OPT_MAX ? option_names[o] : "?";
}

static bool token_is(const char *s, size_t len, const char *word)
{
        return len == strlen(word) && strncasecmp(s, word, len) == 0;
}

static int option_lookup(const char *name, size_t len)
{
        for (int i = 0; i < _TFTP_OPT_MAX; i++)
                if (token_is(name, len, option_names[i]))
                        return i;
        return -ENOENT;
}

static enum tftp_mode mode_lookup(const char *s, size_t len)
{
        if (token_is(s, len, "octet"))
                return TFTP_MODE_OCTET;
        if (token_is(s, len, "netascii"))
                return TFTP_MODE_NETASCII;
        return TFTP_MODE_OTHER;
}

static void option_store(struct tftp_request *req, int opt, const char *value, size_t len)
{
        struct tftp_option_value *v = &req->opt[opt];
        char digits[TFTP_MAX_NUMBER_DIGITS + 1];

        if (v->present) {
                req->duplicate_option = true;
                return;
        }
        v->present = true;
        if (len == 0 || len > TFTP_MAX_NUMBER_DIGITS)
                return;
        memcpy(digits, value, len);
        digits[len] = '\0';
        v->numeric = parse_u64(digits, 0, UINT64_MAX, &v->value) == 0;
}

static int parse_options(struct cursor *c, struct tftp_request *req)
{
        for (unsigned n = 0; c->left > 0; n++) {
                const char *name, *value;
                size_t name_len, value_len;
                int opt;

                if (cur_cstr(c, &name, &name_len) < 0)
                        return -EBADMSG;
                if (name_len == 0)
                        return 0;       /* NUL padding after the last option */
                if (n >= TFTP_MAX_OPTIONS || cur_cstr(c, &value, &value_len) < 0)
                        return -EBADMSG;
                opt = option_lookup(name, name_len);
                if (opt >= 0)
                        option_store(req, opt, value, value_len);
        }
        return 0;
}

int tftp_parse_request(const void *buf, size_t len, struct tftp_request *ret)
{
        struct cursor c = cur_init(buf, len);
        const char *name, *mode;
        size_t name_len, mode_len;
        struct tftp_request req = {};
        int r;

        if (cur_be16(&c, &req.opcode) < 0)
                return -EBADMSG;
        if (req.opcode != TFTP_RRQ && req.opcode != TFTP_WRQ) {
                ret->opcode = req.opcode;
                return -EPROTO;
        }
        if (cur_cstr(&c, &name, &name_len) < 0 || cur_cstr(&c, &mode, &mode_len) < 0)
                return -EBADMSG;
        if (name_len > TFTP_MAX_FILENAME)
                return -ENAMETOOLONG;
        memcpy(req.filename, name, name_len);
        req.filename_len = name_len;
        req.mode = mode_lookup(mode, mode_len);
        r = parse_options(&c, &req);
        if (r < 0)
                return r;
        *ret = req;
        return 0;
}

int tftp_parse_client_packet(const void *buf, size_t len, struct tftp_client_packet *ret)
{
        struct cursor c = cur_init(buf, len);
        struct tftp_client_packet p = {};

        if (cur_be16(&c, &p.opcode) < 0)
                return -EBADMSG;
        if (p.opcode == TFTP_ACK && cur_be16(&c, &p.block) < 0)
                return -EBADMSG;
        if (p.opcode == TFTP_ERROR) {
                if (cur_be16(&c, &p.error_code) < 0)
                        return -EBADMSG;
                /* the message is informational: take what is there, terminated or not */
                if (cur_cstr(&c, &p.error_msg, &p.error_msg_len) < 0) {
                        p.error_msg = (const char *)c.p;
                        p.error_msg_len = c.left;
                }
        }
        *ret = p;
        return 0;
}

void tftp_data_header(uint8_t hdr[TFTP_HEADER_BYTES], uint64_t block)
{
        hdr[0] = 0;
        hdr[1] = TFTP_DATA;
        hdr[2] = (uint8_t)(block >> 8);
        hdr[3] = (uint8_t)block;
}

/* An append cursor for building packets; fails with -ENOBUFS instead of overflowing. */
struct tftp_out {
        uint8_t *p;
        size_t cap, len;
};

static int out_bytes(struct tftp_out *o, const void *p, size_t n)
{
        if (o->cap - o->len < n)
                return -ENOBUFS;
        memcpy(o->p + o->len, p, n);
        o->len += n;
        return 0;
}

static int out_be16(struct tftp_out *o, uint16_t v)
{
        uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

        return out_bytes(o, b, sizeof(b));
}

static int out_cstr(struct tftp_out *o, const char *s)
{
        return out_bytes(o, s, strlen(s) + 1);
}

int tftp_build_error(void *buf, size_t cap, uint16_t code, const char *msg, size_t *ret_len)
{
        struct tftp_out o = { .p = buf, .cap = cap };

        if (out_be16(&o, TFTP_ERROR) < 0 || out_be16(&o, code) < 0 || out_cstr(&o, msg) < 0)
                return -ENOBUFS;
        *ret_len = o.len;
        return 0;
}

static uint64_t accepted_value(const struct tftp_negotiation *n, enum tftp_option opt)
{
        switch (opt) {
        case TFTP_OPT_BLKSIZE:
                return n->blksize;
        case TFTP_OPT_TIMEOUT:
                return n->timeout_s;
        case TFTP_OPT_TSIZE:
                return n->tsize;
        case TFTP_OPT_WINDOWSIZE:
                return n->windowsize;
        default:
                return 0;
        }
}

int tftp_build_oack(void *buf, size_t cap, const struct tftp_negotiation *n, size_t *ret_len)
{
        struct tftp_out o = { .p = buf, .cap = cap };

        if (out_be16(&o, TFTP_OACK) < 0)
                return -ENOBUFS;
        for (int i = 0; i < _TFTP_OPT_MAX; i++) {
                char value[TFTP_MAX_NUMBER_DIGITS + 1];

                if (!n->accepted[i])
                        continue;
                snprintf(value, sizeof(value), "%llu", (unsigned long long)accepted_value(n, i));
                if (out_cstr(&o, option_names[i]) < 0 || out_cstr(&o, value) < 0)
                        return -ENOBUFS;
        }
        *ret_len = o.len;
        return 0;
}
