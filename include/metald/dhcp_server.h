/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "metald/config.h"
#include "metald/dhcp.h"
#include "metald/dhcp_lease.h"
#include "metald/store.h"
#include "metald/runtime.h"

/* What the decision needs to know about one client, read from its packet. */
struct dhcp_client_info {
        int type;                       /* option 53 */
        struct client_key key;          /* option 61, else htype + chaddr */
        uint8_t mac[6];                 /* chaddr when htype is Ethernet */
        bool pxe;                       /* option 60 starts with PXEClient */
        bool http_boot;                 /* option 60 starts with HTTPClient */
        bool ipxe;                      /* option 77 is iPXE */
        bool has_arch;
        uint16_t arch;                  /* option 93 */
        bool has_uuid;
        uint8_t uuid[17];               /* option 97: 0 then the GUID */
        uint32_t requested;             /* option 50, 0 if absent */
        uint32_t server_id;             /* option 54, 0 if absent */
        size_t max_size;                /* usable reply size (option 57, minus IP/UDP) */
        bool has_prl;
        uint8_t prl[256];               /* option 55 as a set */
        char hostname[DHCP_MAX_HOSTNAME + 1];   /* option 12, sanitized */
};

int dhcp_client_info_from(const struct dhcp_packet *p, struct dhcp_client_info *ret);

/* The boot answer for a client: where its next stage comes from. */
struct dhcp_boot {
        bool present;
        char file[DHCP_MAX_BOOTFILE + 1];       /* TFTP file name or http:// URL */
        const char *vendor_class;               /* "PXEClient", "HTTPClient" or NULL */
        bool vendor_opts;                       /* send option 43 discovery control */
};

/* Pure: the boot file or URL for a client, given our address on its link. */
void dhcp_boot_select(const struct config *cfg, const struct dhcp_client_info *ci, uint32_t server_ip,
                      bool proxy, struct dhcp_boot *ret);

/* Where a datagram arrived. Filled by the I/O layer. */
struct dhcp_link {
        uint32_t server_ip;             /* our address on the link: option 54, siaddr */
        uint16_t local_port;            /* the server or the proxy (4011) port */
        uint32_t src_ip;
        uint16_t src_port;
};

enum dhcp_action {
        DHCP_ACTION_DROP,               /* nothing to send; reason says why */
        DHCP_ACTION_SILENT,             /* handled, nothing to send (RELEASE, DECLINE) */
        DHCP_ACTION_REPLY,
};

struct dhcp_verdict {
        enum dhcp_action action;
        const char *reason;             /* static text for logs and metrics */
        int reply_type;
        uint32_t yiaddr;
        uint32_t dst_ip;                /* host order; INADDR_BROADCAST for broadcast */
        uint16_t dst_port;
        bool dst_needs_arp;             /* unicast to yiaddr at chaddr, which has no ARP entry yet */
        bool has_change;
        struct store_lease_change change;       /* persist before sending */
        size_t len;
        uint8_t reply[DHCP_MAX_PACKET];
};

struct dhcp_server {
        const struct config *cfg;
        struct lease_pool *pool;        /* NULL in proxy mode */
};

/* Pure decision for one datagram. Mutates only the lease pool in srv. */
int dhcp_decide(struct dhcp_server *srv, const struct dhcp_packet *p, const struct dhcp_link *link,
                int64_t now, struct dhcp_verdict *v);

/*
 * The service runs its own thread with its own event loop, started and stopped
 * by the daemon. start() returns only after its sockets are bound, so errors
 * (port in use, missing root) reach the caller; stop() wakes the thread, joins
 * it and frees everything; heartbeat() is the monotonic time of the thread's
 * last loop iteration, for the watchdog.
 */
struct dhcp_service;
int dhcp_service_start(const struct runtime *rt, struct dhcp_service **ret);
void dhcp_service_stop(struct dhcp_service *s);
uint64_t dhcp_service_heartbeat(const struct dhcp_service *s);
