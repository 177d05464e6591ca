/* SPDX-License-Identifier: Apache-2.0 */
#include "metald/tftp.h"
#include "metald/util.h"

static const struct tftp_refusal refuse_illegal_op = { TFTP_EBADOP, "illegal TFTP operation", TFTP_ERR_ILLEGAL };
static const struct tftp_refusal refuse_malformed = { TFTP_EBADOP, "malformed request", TFTP_ERR_ILLEGAL };
static const struct tftp_refusal refuse_long_name = { TFTP_EBADOP, "file name too long", TFTP_ERR_ILLEGAL };
static const struct tftp_refusal refuse_write = { TFTP_EACCESS, "read-only server", TFTP_ERR_ACCESS };
static const struct tftp_refusal refuse_mode = { TFTP_EBADOP, "unknown transfer mode", TFTP_ERR_ILLEGAL };
static const struct tftp_refusal refuse_netascii = { TFTP_EUNDEF, "netascii not supported", TFTP_ERR_OTHER };
static const struct tftp_refusal refuse_duplicate = { TFTP_EOPTNEG, "duplicate option", TFTP_ERR_OPTION };
static const struct tftp_refusal refuse_not_found = { TFTP_ENOTFOUND, "file not found", TFTP_ERR_NOT_FOUND };
static const struct tftp_refusal refuse_access = { TFTP_EACCESS, "access violation", TFTP_ERR_ACCESS };
static const struct tftp_refusal refuse_server = { TFTP_EUNDEF, "server error", TFTP_ERR_OTHER };
static const struct tftp_refusal refuse_busy = { TFTP_EUNDEF, "server busy", TFTP_ERR_BUSY };

enum tftp_request_verdict tftp_request_check(int parse_result, const struct tftp_request *req,
                                             struct tftp_refusal *ret)
{
        const struct tftp_refusal *why = NULL;

        /*
         * Never answer an ERROR (two peers could bounce errors forever) nor an
         * ACK: tftp-hpa's client acknowledges the ERROR that refused its request.
         */
        if (parse_result == -EPROTO && (req->opcode == TFTP_ERROR || req->opcode == TFTP_ACK))
                return TFTP_REQ_IGNORE;
        if (parse_result == -EPROTO)
                why = &refuse_illegal_op;
        else if (parse_result == -ENAMETOOLONG)
                why = &refuse_long_name;
        else if (parse_result < 0)
                why = &refuse_malformed;
        else if (req->opcode == TFTP_WRQ)
                why = &refuse_write;
        else if (req->mode == TFTP_MODE_OTHER)
                why = &refuse_mode;
        else if (req->mode == TFTP_MODE_NETASCII)
                why = &refuse_netascii;
        else if (req->duplicate_option)
                why = &refuse_duplicate;
        if (!why)
                return TFTP_REQ_ACCEPT;
        *ret = *why;
        return TFTP_REQ_REFUSE;
}

enum tftp_request_verdict tftp_admit(size_t active, size_t max_active, size_t from_client,
                                     size_t max_per_client, struct tftp_refusal *ret)
{
        if (active < max_active && from_client < max_per_client)
                return TFTP_REQ_ACCEPT;
        *ret = refuse_busy;
        return TFTP_REQ_REFUSE;
}

void tftp_open_refusal(int error, struct tftp_refusal *ret)
{
        switch (error) {
        case -ENOENT:
        case -ENOTDIR:
                *ret = refuse_not_found;
                break;
        case -EACCES:
        case -EPERM:
        case -ELOOP:            /* a symlink */
        case -EXDEV:            /* an escape from the root */
        case -EISDIR:
                *ret = refuse_access;
                break;
        default:
                *ret = refuse_server;
                break;
        }
}

static bool component_is_dotdot(const char *start, const char *end)
{
        return end - start == 2 && start[0] == '.' && start[1] == '.';
}

int tftp_map_filename(const char *name, size_t len, char *out, size_t cap)
{
        size_t i = 0, o = 0, comp = 0;

        while (i < len && (name[i] == '/' || name[i] == '\\'))
                i++;
        if (i == len)
                return -ENOENT;
        if (len - i >= cap)
                return -ENAMETOOLONG;
        for (; i < len; i++) {
                char ch = name[i] == '\\' ? '/' : name[i];

                if (ch == '/') {
                        if (component_is_dotdot(out + comp, out + o))
                                return -EACCES;
                        comp = o + 1;
                }
                out[o++] = ch;
        }
        if (component_is_dotdot(out + comp, out + o))
                return -EACCES;
        out[o] = '\0';
        return 0;
}

static bool option_at_least(const struct tftp_option_value *v, uint64_t min)
{
        return v->present && v->numeric && v->value >= min;
}

/* The largest block that fits one unfragmented datagram on the arrival link, within the configuration. */
static uint32_t blksize_cap(const struct tftp_limits *lim)
{
        uint32_t mtu = lim->mtu ? lim->mtu : TFTP_FALLBACK_MTU;
        uint32_t overhead = TFTP_IP_UDP_OVERHEAD + TFTP_HEADER_BYTES;
        uint32_t cap = mtu > overhead ? mtu - overhead : 0;

        cap = MIN(cap, MIN(lim->max_blksize, (uint32_t)TFTP_MAX_BLKSIZE));
        return MAX(cap, (uint32_t)TFTP_MIN_BLKSIZE);
}

void tftp_negotiate(const struct tftp_request *req, const struct tftp_limits *lim, uint64_t file_size,
                    struct tftp_negotiation *ret)
{
        const struct tftp_option_value *o = req->opt;
        struct tftp_negotiation n = {
                .blksize = TFTP_DEFAULT_BLKSIZE, .windowsize = 1, .rto_usec = lim->default_rto_usec,
        };

        if (option_at_least(&o[TFTP_OPT_BLKSIZE], TFTP_MIN_BLKSIZE)) {
                n.blksize = (uint32_t)MIN(o[TFTP_OPT_BLKSIZE].value, (uint64_t)blksize_cap(lim));
                n.accepted[TFTP_OPT_BLKSIZE] = true;
        }
        if (option_at_least(&o[TFTP_OPT_TIMEOUT], TFTP_MIN_TIMEOUT_S) &&
            o[TFTP_OPT_TIMEOUT].value <= TFTP_MAX_TIMEOUT_S) {
                n.timeout_s = (uint32_t)o[TFTP_OPT_TIMEOUT].value;
                n.rto_usec = n.timeout_s * USEC_PER_SEC;
                n.accepted[TFTP_OPT_TIMEOUT] = true;
        }
        if (o[TFTP_OPT_TSIZE].present && o[TFTP_OPT_TSIZE].numeric && o[TFTP_OPT_TSIZE].value == 0 &&
            req->mode == TFTP_MODE_OCTET) {
                n.tsize = file_size;
                n.accepted[TFTP_OPT_TSIZE] = true;
        }
        if (option_at_least(&o[TFTP_OPT_WINDOWSIZE], 1)) {
                uint32_t cap = MAX(1u, MIN(lim->max_windowsize, (uint32_t)TFTP_MAX_WINDOWSIZE));

                n.windowsize = (uint32_t)MIN(o[TFTP_OPT_WINDOWSIZE].value, (uint64_t)cap);
                n.accepted[TFTP_OPT_WINDOWSIZE] = true;
        }
        for (int i = 0; i < _TFTP_OPT_MAX; i++)
                n.oack |= n.accepted[i];
        *ret = n;
}

uint64_t tftp_block_from_wire(uint64_t base, uint16_t wire)
{
        return base + (uint16_t)(wire - (uint16_t)base);
}

void tftp_xfer_init(struct tftp_xfer *x, const struct tftp_negotiation *n, uint64_t size, unsigned max_retries)
{
        *x = (struct tftp_xfer){
                .state = n->oack ? TFTP_XFER_OACK_SENT : TFTP_XFER_SENDING,
                .size = size,
                .blksize = n->blksize,
                .windowsize = n->windowsize,
                .last_block = size / n->blksize + 1,
                .rto_base = n->rto_usec,
                .rto = n->rto_usec,
                .max_tries = max_retries,
        };
}

static enum tftp_step send_oack(struct tftp_xfer *x, uint64_t now, struct tftp_send *out)
{
        *out = (struct tftp_send){ .oack = true };
        x->deadline = now + x->rto;
        return TFTP_STEP_SEND;
}

/* The window after the last acknowledged block; blocks sent before count as resent. */
static enum tftp_step send_window(struct tftp_xfer *x, uint64_t now, struct tftp_send *out)
{
        uint64_t first = x->acked + 1;
        uint64_t last = MIN(x->acked + x->windowsize, x->last_block);

        *out = (struct tftp_send){
                .first = first,
                .count = last - first + 1,
                .resent = x->sent >= first ? MIN(x->sent, last) - first + 1 : 0,
        };
        x->sent = MAX(x->sent, last);
        x->deadline = now + x->rto;
        return TFTP_STEP_SEND;
}

enum tftp_step tftp_xfer_start(struct tftp_xfer *x, uint64_t now, struct tftp_send *out)
{
        x->progress_at = now;
        if (x->state == TFTP_XFER_OACK_SENT)
                return send_oack(x, now, out);
        if (x->state == TFTP_XFER_SENDING)
                return send_window(x, now, out);
        return TFTP_STEP_NONE;
}

static void progress(struct tftp_xfer *x, uint64_t now)
{
        x->tries = 0;
        x->rto = x->rto_base;
        x->progress_at = now;
}

/*
 * A repeat of the last acknowledged block. With windowsize 1 it is never
 * answered: resending on duplicates doubles every later block (the
 * Sorcerer's Apprentice). With a larger window it means the first block of
 * the window was lost, so the window goes out again, but only once per
 * acknowledged block, whether a gap ACK or a duplicate asked first.
 */
static enum tftp_step on_duplicate(struct tftp_xfer *x, uint64_t now, struct tftp_send *out)
{
        if (x->windowsize == 1 || x->window_resent || x->sent <= x->acked)
                return TFTP_STEP_NONE;
        x->window_resent = true;
        return send_window(x, now, out);
}

enum tftp_step tftp_xfer_on_ack(struct tftp_xfer *x, uint16_t block, uint64_t now, struct tftp_send *out)
{
        uint64_t b;

        if (x->state == TFTP_XFER_OACK_SENT) {
                if (block != 0)
                        return TFTP_STEP_NONE;
                x->state = TFTP_XFER_SENDING;
                progress(x, now);
                return send_window(x, now, out);
        }
        if (x->state != TFTP_XFER_SENDING)
                return TFTP_STEP_NONE;
        b = tftp_block_from_wire(x->acked, block);
        if (b > x->sent)
                return TFTP_STEP_NONE;  /* an old ACK from before the last wrap, or a block never sent */
        if (b == x->acked)
                return on_duplicate(x, now, out);
        x->acked = b;
        progress(x, now);
        if (b == x->last_block) {
                x->state = TFTP_XFER_DONE;
                return TFTP_STEP_DONE;
        }
        /* an ACK inside the window is a gap: the client kept blocks up to b, resume after it */
        x->window_resent = b < x->sent;
        return send_window(x, now, out);
}

enum tftp_step tftp_xfer_on_timeout(struct tftp_xfer *x, uint64_t now, struct tftp_send *out)
{
        if (x->state != TFTP_XFER_OACK_SENT && x->state != TFTP_XFER_SENDING)
                return TFTP_STEP_NONE;
        if (now < x->deadline)
                return TFTP_STEP_NONE;
        if (x->tries >= x->max_tries) {
                x->state = TFTP_XFER_FAILED;
                return TFTP_STEP_GIVE_UP;
        }
        x->tries++;
        x->rto = MIN(x->rto * 2, MAX(x->rto_base, TFTP_MAX_RTO_USEC));
        if (x->state == TFTP_XFER_OACK_SENT)
                return send_oack(x, now, out);
        return send_window(x, now, out);
}

bool tftp_xfer_stalled(const struct tftp_xfer *x)
{
        return (x->state == TFTP_XFER_OACK_SENT || x->state == TFTP_XFER_SENDING) && x->tries >= TFTP_STALL_TIMEOUTS;
}

int tftp_reclaim_pick(const struct tftp_xfer *const *xfers, size_t n, size_t *ret_index)
{
        const struct tftp_xfer *best = NULL;
        size_t at = 0;

        for (size_t i = 0; i < n; i++) {
                if (!tftp_xfer_stalled(xfers[i]))
                        continue;
                if (!best || xfers[i]->progress_at < best->progress_at) {
                        best = xfers[i];
                        at = i;
                }
        }
        if (!best)
                return -ENOENT;
        *ret_index = at;
        return 0;
}
