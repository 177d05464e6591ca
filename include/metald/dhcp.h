/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metald/limits.h"

#define DHCP_OP_REQUEST      1
#define DHCP_OP_REPLY        2
#define DHCP_MAGIC_COOKIE    0x63825363u
#define DHCP_FIXED_LEN       236       /* op .. file */
#define DHCP_HEADER_LEN      240       /* with the cookie */
#define DHCP_FLAG_BROADCAST  0x8000u

enum dhcp_msg_type {
        DHCP_DISCOVER = 1,
        DHCP_OFFER = 2,
        DHCP_REQUEST = 3,
        DHCP_DECLINE = 4,
        DHCP_ACK = 5,
        DHCP_NAK = 6,
        DHCP_RELEASE = 7,
        DHCP_INFORM = 8,
        _DHCP_MSG_MAX,
};

enum dhcp_option_code {
        DHCP_OPT_PAD = 0,
        DHCP_OPT_SUBNET_MASK = 1,
        DHCP_OPT_ROUTER = 3,
        DHCP_OPT_DNS = 6,
        DHCP_OPT_HOSTNAME = 12,
        DHCP_OPT_DOMAIN = 15,
        DHCP_OPT_BROADCAST = 28,
        DHCP_OPT_VENDOR = 43,
        DHCP_OPT_REQUESTED_IP = 50,
        DHCP_OPT_LEASE_TIME = 51,
        DHCP_OPT_OVERLOAD = 52,
        DHCP_OPT_MSG_TYPE = 53,
        DHCP_OPT_SERVER_ID = 54,
        DHCP_OPT_PARAM_LIST = 55,
        DHCP_OPT_MESSAGE = 56,
        DHCP_OPT_MAX_SIZE = 57,
        DHCP_OPT_T1 = 58,
        DHCP_OPT_T2 = 59,
        DHCP_OPT_VENDOR_CLASS = 60,
        DHCP_OPT_CLIENT_ID = 61,
        DHCP_OPT_TFTP_SERVER = 66,
        DHCP_OPT_BOOTFILE = 67,
        DHCP_OPT_USER_CLASS = 77,
        DHCP_OPT_RELAY_AGENT = 82,
        DHCP_OPT_CLIENT_ARCH = 93,
        DHCP_OPT_CLIENT_NDI = 94,
        DHCP_OPT_CLIENT_UUID = 97,
        DHCP_OPT_IPXE = 175,
        DHCP_OPT_END = 255,
};

/* An option's value; repeated instances are concatenated (RFC 3396). */
struct dhcp_option {
        const uint8_t *data;
        uint16_t len;
        bool present;
};

/* A parsed datagram. Option data points into the struct's own storage. */
struct dhcp_packet {
        uint8_t op, htype, hlen, hops;
        uint32_t xid;
        uint16_t secs, flags;
        uint32_t ciaddr, yiaddr, siaddr, giaddr;        /* host order */
        uint8_t chaddr[16];
        uint8_t sname[64];
        uint8_t file[128];
        uint8_t overload;                               /* option 52: 1 file, 2 sname, 3 both */
        struct dhcp_option opt[256];
        uint8_t storage[DHCP_MAX_PACKET];
};

/* Parses a BOOTP/DHCP datagram: 0, or -EBADMSG for anything malformed. */
int dhcp_parse(const void *buf, size_t len, struct dhcp_packet *ret);
/* Option 53, or 0 when absent or malformed. */
int dhcp_msg_type(const struct dhcp_packet *p);
const char *dhcp_msg_type_name(int type);

/* Options for a reply, kept in the order they will be written. */
struct dhcp_optlist {
        struct {
                uint8_t code;
                uint16_t len;
                uint16_t off;
        } o[48];
        size_t n;
        uint8_t data[1024];
        size_t used;
};

int dhcp_opt_add(struct dhcp_optlist *l, uint8_t code, const void *data, size_t len);
int dhcp_opt_add_u8(struct dhcp_optlist *l, uint8_t code, uint8_t v);
int dhcp_opt_add_u16(struct dhcp_optlist *l, uint8_t code, uint16_t v);
int dhcp_opt_add_u32(struct dhcp_optlist *l, uint8_t code, uint32_t v);
int dhcp_opt_add_str(struct dhcp_optlist *l, uint8_t code, const char *s);
bool dhcp_opt_has(const struct dhcp_optlist *l, uint8_t code);

/* The fixed part of a reply; strings for sname/file are copied when they fit. */
struct dhcp_reply_header {
        uint8_t op, htype, hlen;
        uint32_t xid;
        uint16_t flags;
        uint32_t ciaddr, yiaddr, siaddr, giaddr;        /* host order */
        uint8_t chaddr[16];
        const char *sname;
        const char *file;
};

/*
 * Writes a reply of at most max_size bytes into out (cap >= max_size).
 * Options that do not fit spill into unused file/sname fields (option 52).
 * Replies are padded to DHCP_MIN_REPLY. 0 or -EMSGSIZE.
 */
int dhcp_build(const struct dhcp_reply_header *h, const struct dhcp_optlist *l, size_t max_size,
               uint8_t *out, size_t cap, size_t *ret_len);
