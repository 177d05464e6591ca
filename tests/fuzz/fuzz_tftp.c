/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One datagram as the server would receive it: the request parser, the
 * refusal decision, name mapping and option negotiation run on it, then the
 * negotiated transfer is driven by a client whose ACKs, gaps, repeats and
 * silences are drawn from a hash of the input. Invariants abort.
 */
#include <stdlib.h>
#include <string.h>

#include "metald/tftp.h"
#include "metald/util.h"

#define FUZZ_MAX_EVENTS 4096

static void require(bool ok)
{
        if (!ok)
                abort();
}

static uint64_t hash_input(const uint8_t *data, size_t size)
{
        uint64_t h = 1469598103934665603ULL;

        for (size_t i = 0; i < size; i++)
                h = (h ^ data[i]) * 1099511628211ULL;
        return h;
}

static uint32_t next_rand(uint64_t *state)
{
        *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
        return (uint32_t)(*state >> 33);
}

static void check_send(const struct tftp_xfer *x, const struct tftp_send *s)
{
        if (s->oack)
                return;
        require(s->count >= 1 && s->count <= x->windowsize);
        require(s->first == x->acked + 1);
        require(s->first + s->count - 1 <= x->last_block);
        require(s->resent <= s->count);
        for (uint64_t b = s->first; b < s->first + s->count; b++) {
                size_t len = tftp_block_len(x, b);

                require(len <= x->blksize);
                require(len == 0 || tftp_block_offset(x, b) + len <= x->size);
                require(b == x->last_block ? len < x->blksize : len == x->blksize);
        }
}

/* The wire number a client would send: right, a gap, a repeat, stale, or noise. */
static uint16_t pick_ack(const struct tftp_xfer *x, uint32_t r)
{
        switch (r % 6) {
        case 0:
        case 1:
                return (uint16_t)x->sent;
        case 2:
                return (uint16_t)(x->acked + 1 + (r >> 8) % (x->sent - x->acked + 1));
        case 3:
                return (uint16_t)x->acked;
        case 4:
                return (uint16_t)(x->acked - (r >> 8) % 4);
        default:
                return (uint16_t)(r >> 8);
        }
}

static void drive_transfer(const struct tftp_negotiation *n, uint64_t size, uint64_t seed)
{
        struct tftp_xfer x;
        struct tftp_send s;
        enum tftp_step step;
        uint64_t now = 1;

        tftp_xfer_init(&x, n, size, 1 + seed % TFTP_MAX_RETRIES);
        step = tftp_xfer_start(&x, now, &s);
        require(step == TFTP_STEP_SEND);
        check_send(&x, &s);
        for (unsigned i = 0; i < FUZZ_MAX_EVENTS && step != TFTP_STEP_DONE && step != TFTP_STEP_GIVE_UP; i++) {
                uint32_t r = next_rand(&seed);
                uint64_t acked = x.acked;

                now += r % 3 == 0 ? x.rto : 1000;
                if (r % 7 == 0)
                        step = tftp_xfer_on_timeout(&x, now, &s);
                else if (x.state == TFTP_XFER_OACK_SENT)
                        step = tftp_xfer_on_ack(&x, r % 5 ? 0 : (uint16_t)r, now, &s);
                else
                        step = tftp_xfer_on_ack(&x, pick_ack(&x, r), now, &s);
                require(x.acked >= acked && x.acked <= x.sent && x.sent <= x.last_block);
                if (step == TFTP_STEP_SEND)
                        check_send(&x, &s);
        }
        require(step != TFTP_STEP_DONE || x.acked == x.last_block);
}

static void check_mapped(const char *name, size_t len)
{
        char out[TFTP_MAX_FILENAME + 1];

        if (tftp_map_filename(name, len, out, sizeof(out)) < 0)
                return;
        require(out[0] != '/' && !strchr(out, '\\'));
        require(strcmp(out, "..") != 0 && strncmp(out, "../", 3) != 0 && !strstr(out, "/../"));
        require(strlen(out) < 3 || strcmp(out + strlen(out) - 3, "/..") != 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const uint32_t mtus[] = { 0, 576, 1500, 9000, 65536 };
        uint64_t seed = hash_input(data, size);
        struct tftp_limits lim = {
                .max_blksize = 512 + (uint32_t)(seed % (TFTP_MAX_BLKSIZE - 511)),
                .mtu = mtus[(seed >> 16) % ARRAY_SIZE(mtus)],
                .max_windowsize = 1 + (uint32_t)((seed >> 24) % 64),
                .default_rto_usec = USEC_PER_SEC,
        };
        uint64_t file_size = (seed >> 32) % (256 * 1024);
        struct tftp_client_packet cp;
        struct tftp_request req = {};
        struct tftp_refusal why;
        struct tftp_negotiation n;
        uint8_t oack[TFTP_MAX_OACK];
        size_t oack_len;
        int r = tftp_parse_request(data, size, &req);

        (void)tftp_parse_client_packet(data, size, &cp);
        require(r <= 0);
        if (tftp_request_check(r, &req, &why) != TFTP_REQ_ACCEPT)
                return 0;
        require(r == 0 && req.filename_len <= TFTP_MAX_FILENAME && req.filename[req.filename_len] == '\0');
        check_mapped(req.filename, req.filename_len);
        tftp_negotiate(&req, &lim, file_size, &n);
        require(n.blksize >= TFTP_MIN_BLKSIZE && n.blksize <= TFTP_MAX_BLKSIZE);
        require(n.blksize == TFTP_DEFAULT_BLKSIZE || n.blksize <= lim.max_blksize);
        require(n.windowsize >= 1 && n.windowsize <= MAX(lim.max_windowsize, 1u));
        require(tftp_build_oack(oack, sizeof(oack), &n, &oack_len) == 0 && oack_len <= TFTP_MAX_OACK);
        drive_transfer(&n, file_size, seed);
        return 0;
}
