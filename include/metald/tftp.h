/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metald/limits.h"
#include "metald/metrics.h"
#include "metald/runtime.h"

/*
 * TFTP read service (RFC 1350, 2347, 2348, 2349, 7440) in three layers:
 * tftp_wire.c turns datagrams into structs and back, tftp_session.c decides
 * (request checks, option negotiation, the transfer state machine; no sockets,
 * no clock reads), tftp_io.c owns sockets, files, timers and the thread.
 */

enum tftp_opcode {
        TFTP_RRQ = 1,
        TFTP_WRQ = 2,
        TFTP_DATA = 3,
        TFTP_ACK = 4,
        TFTP_ERROR = 5,
        TFTP_OACK = 6,
};

enum tftp_error_code {
        TFTP_EUNDEF = 0,
        TFTP_ENOTFOUND = 1,
        TFTP_EACCESS = 2,
        TFTP_ENOSPACE = 3,
        TFTP_EBADOP = 4,
        TFTP_EBADID = 5,
        TFTP_EEXISTS = 6,
        TFTP_ENOUSER = 7,
        TFTP_EOPTNEG = 8,
};

enum tftp_mode { TFTP_MODE_OCTET, TFTP_MODE_NETASCII, TFTP_MODE_OTHER };

enum tftp_option { TFTP_OPT_BLKSIZE, TFTP_OPT_TIMEOUT, TFTP_OPT_TSIZE, TFTP_OPT_WINDOWSIZE, _TFTP_OPT_MAX };

#define TFTP_HEADER_BYTES    4          /* opcode + block number */
#define TFTP_DEFAULT_BLKSIZE 512
#define TFTP_IP_UDP_OVERHEAD 28         /* IPv4 20 + UDP 8, subtracted from the MTU with the header */
#define TFTP_MAX_UDP_PAYLOAD 65507      /* 65535 - IPv4 20 - UDP 8 */

/* --- wire (tftp_wire.c) --- */

/* A known option as sent; numeric is false for anything but a plain decimal that fits 64 bits. */
struct tftp_option_value {
        bool present;
        bool numeric;
        uint64_t value;
};

struct tftp_request {
        uint16_t opcode;                        /* TFTP_RRQ or TFTP_WRQ */
        char filename[TFTP_MAX_FILENAME + 1];   /* as sent, without mapping */
        size_t filename_len;
        enum tftp_mode mode;
        struct tftp_option_value opt[_TFTP_OPT_MAX];
        bool duplicate_option;                  /* a known option appeared twice */
};

/*
 * Parses an RRQ or WRQ. Returns 0, or -EBADMSG (a string without its NUL, no
 * mode, an option without a value, more than TFTP_MAX_OPTIONS options),
 * -ENAMETOOLONG, or -EPROTO for any other opcode (ret->opcode is then set
 * when the datagram had one). Unknown options are skipped; an empty option
 * name ends the list, since some clients pad requests with NULs.
 */
int tftp_parse_request(const void *buf, size_t len, struct tftp_request *ret);

/* What a client sends on a transfer socket. */
struct tftp_client_packet {
        uint16_t opcode;
        uint16_t block;                 /* TFTP_ACK */
        uint16_t error_code;            /* TFTP_ERROR */
        const char *error_msg;          /* TFTP_ERROR: points into the datagram, not terminated */
        size_t error_msg_len;
};

/* 0, or -EBADMSG when the datagram is too short for its opcode. */
int tftp_parse_client_packet(const void *buf, size_t len, struct tftp_client_packet *ret);

struct tftp_negotiation;
void tftp_data_header(uint8_t hdr[TFTP_HEADER_BYTES], uint64_t block);
int tftp_build_error(void *buf, size_t cap, uint16_t code, const char *msg, size_t *ret_len);
/* The OACK listing exactly the accepted options. */
int tftp_build_oack(void *buf, size_t cap, const struct tftp_negotiation *n, size_t *ret_len);
const char *tftp_option_name(enum tftp_option o);

/* --- decisions (tftp_session.c) --- */

enum tftp_request_verdict {
        TFTP_REQ_ACCEPT,
        TFTP_REQ_REFUSE,                /* answer with the refusal's ERROR */
        TFTP_REQ_IGNORE,                /* say nothing (an ERROR or ACK sent to the server port) */
};

struct tftp_refusal {
        uint16_t code;                  /* enum tftp_error_code */
        const char *message;            /* static text */
        enum tftp_error_metric metric;
};

/* Checks a parsed request (parse_result from tftp_parse_request) before the file system is touched. */
enum tftp_request_verdict tftp_request_check(int parse_result, const struct tftp_request *req,
                                             struct tftp_refusal *ret);

/* Whether one more transfer fits: the total cap and the per-client-address cap. */
enum tftp_request_verdict tftp_admit(size_t active, size_t max_active, size_t from_client,
                                     size_t max_per_client, struct tftp_refusal *ret);

/* The refusal for a failed open of the requested file (negative errno). */
void tftp_open_refusal(int error, struct tftp_refusal *ret);

/*
 * Maps a requested name to a path relative to the root: '\' becomes '/',
 * leading '/' are stripped. -ENOENT for an empty name, -EACCES for a ".."
 * component, -ENAMETOOLONG when out would overflow.
 */
int tftp_map_filename(const char *name, size_t len, char *out, size_t cap);

struct tftp_limits {
        uint32_t max_blksize;           /* configured */
        uint32_t mtu;                   /* of the interface the request arrived on; 0 when unknown */
        uint32_t max_windowsize;        /* configured */
        uint64_t default_rto_usec;      /* configured first retransmission timeout */
};

struct tftp_negotiation {
        bool oack;                      /* at least one option accepted: send an OACK */
        bool accepted[_TFTP_OPT_MAX];
        uint32_t blksize;
        uint32_t windowsize;
        uint32_t timeout_s;             /* when accepted */
        uint64_t tsize;                 /* when accepted */
        uint64_t rto_usec;              /* first retransmission timeout */
};

/*
 * Pure option negotiation. An option whose value is not a number, or below
 * its minimum, is left out of the OACK (the client then uses the default);
 * blksize and windowsize above what we allow are answered with our maximum;
 * timeout must be 1–255 and is echoed unchanged (RFC 2349); tsize must be 0
 * in a read request and is answered with the file size.
 */
void tftp_negotiate(const struct tftp_request *req, const struct tftp_limits *lim, uint64_t file_size,
                    struct tftp_negotiation *ret);

enum tftp_xfer_state {
        TFTP_XFER_OACK_SENT,            /* waiting for ACK 0 */
        TFTP_XFER_SENDING,
        TFTP_XFER_DONE,
        TFTP_XFER_FAILED,
};

/* One transfer. Blocks are numbered from 1 on 64 bits; the wire carries the low 16 bits. */
struct tftp_xfer {
        enum tftp_xfer_state state;
        uint64_t size;
        uint32_t blksize, windowsize;
        uint64_t last_block;            /* the short (possibly empty) final block */
        uint64_t acked;                 /* highest block acknowledged; 0 = nothing or the OACK */
        uint64_t sent;                  /* highest block sent */
        bool window_resent;             /* the window after acked was already sent again */
        uint64_t rto_base, rto, deadline;
        unsigned tries, max_tries;      /* retransmissions without progress */
        uint64_t progress_at;           /* the start, or the last ACK that moved the transfer on */
};

/* What to send: the OACK, or DATA blocks first .. first + count - 1. */
struct tftp_send {
        bool oack;
        uint64_t first, count;
        uint64_t resent;                /* how many of these went out before */
};

enum tftp_step {
        TFTP_STEP_NONE,                 /* nothing to do */
        TFTP_STEP_SEND,
        TFTP_STEP_DONE,                 /* the final block is acknowledged */
        TFTP_STEP_GIVE_UP,              /* too many retransmissions without progress */
};

void tftp_xfer_init(struct tftp_xfer *x, const struct tftp_negotiation *n, uint64_t size, unsigned max_retries);
enum tftp_step tftp_xfer_start(struct tftp_xfer *x, uint64_t now, struct tftp_send *out);
enum tftp_step tftp_xfer_on_ack(struct tftp_xfer *x, uint16_t block, uint64_t now, struct tftp_send *out);
enum tftp_step tftp_xfer_on_timeout(struct tftp_xfer *x, uint64_t now, struct tftp_send *out);

/*
 * Stalled: TFTP_STALL_TIMEOUTS retransmission timeouts in a row expired with
 * no progress. Counted in timeouts that fired rather than in time, so a
 * client that negotiated a long timeout gets its full timeouts, and a service
 * thread that was held up does not find every transfer stalled at once.
 */
bool tftp_xfer_stalled(const struct tftp_xfer *x);

/*
 * The transfer a new request may take the place of when a limit is reached:
 * of the stalled ones, the one with the oldest progress, the first in the
 * table on a tie. 0 and its index, or -ENOENT when none is stalled.
 */
int tftp_reclaim_pick(const struct tftp_xfer *const *xfers, size_t n, size_t *ret_index);

/* The 64-bit block in [base, base + 65535] whose low 16 bits are wire. */
uint64_t tftp_block_from_wire(uint64_t base, uint16_t wire);

static inline uint64_t tftp_block_offset(const struct tftp_xfer *x, uint64_t block)
{
        return (block - 1) * x->blksize;
}

static inline size_t tftp_block_len(const struct tftp_xfer *x, uint64_t block)
{
        uint64_t off = tftp_block_offset(x, block);

        return off >= x->size ? 0 : (size_t)(x->size - off < x->blksize ? x->size - off : x->blksize);
}

/* The TFTP service; see metald/dhcp_server.h for how services start and stop. */
struct tftp_service;
int tftp_service_start(const struct runtime *rt, struct tftp_service **ret);
void tftp_service_stop(struct tftp_service *s);
uint64_t tftp_service_heartbeat(const struct tftp_service *s);
