/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "metald/config.h"
#include "metald/store.h"

/*
 * The address pools of every subnet, in memory. Pure: no I/O, the caller
 * passes the time. Operations that must be persisted fill a store_lease the
 * caller commits before it answers the client.
 */
enum lease_state {
        LEASE_FREE,             /* never used, or forgotten */
        LEASE_OFFERED,          /* held for a client until expires; not persisted */
        LEASE_BOUND,
        LEASE_RELEASED,         /* free, still remembered for its last client */
        LEASE_DECLINED,         /* quarantined until expires */
};

struct client_key {
        uint8_t len;
        uint8_t id[DHCP_MAX_CLIENT_ID];
};

struct lease {
        uint32_t addr;
        enum lease_state state;
        bool reserved;          /* belongs to reserved_mac only */
        uint8_t reserved_mac[6];
        struct client_key client;
        uint8_t mac[6];
        int64_t expires;        /* unix seconds */
        char hostname[DHCP_MAX_HOSTNAME + 1];
        uint32_t subnet;        /* index into the config's subnets */
        int32_t client_next;    /* chain of the client hash */
};

struct lease_pool;

int lease_pool_new(const struct dhcp_config *cfg, struct lease_pool **ret);
void lease_pool_free(struct lease_pool *p);

/* Loads a persisted lease; leases that no longer fit the configuration are skipped (-ENOENT). */
int lease_pool_restore(struct lease_pool *p, const struct store_lease *l);

/* Index of the subnet containing addr, or -1. */
int lease_pool_subnet_of(const struct lease_pool *p, uint32_t addr);

const struct lease *lease_find_addr(const struct lease_pool *p, uint32_t addr);
/* The client's lease in a subnet (any state but FREE), or NULL. */
const struct lease *lease_find_client(const struct lease_pool *p, uint32_t subnet, const struct client_key *k);

/*
 * Chooses an address for a DISCOVER: the reservation for mac, the client's
 * current or last address, the requested one if free, else a free or expired
 * one. Holds it for hold_s. 0, or -ENOSPC when the pool is exhausted.
 */
int lease_offer(struct lease_pool *p, uint32_t subnet, const struct client_key *k, const uint8_t mac[6],
                uint32_t requested, int64_t now, uint32_t hold_s, uint32_t *ret_addr);

/*
 * Binds addr to the client for lease_s. -EADDRINUSE when another client holds
 * it, -ENOENT when it is not one of ours, -EPERM when reserved for another MAC.
 */
int lease_bind(struct lease_pool *p, uint32_t subnet, const struct client_key *k, const uint8_t mac[6],
               uint32_t addr, int64_t now, uint32_t lease_s, const char *hostname, struct store_lease *ret);

/* The client gives addr back. -ENOENT when it does not hold it. */
int lease_release(struct lease_pool *p, const struct client_key *k, uint32_t addr, int64_t now,
                  struct store_lease *ret);
/* The client found addr in use: quarantine it for hold_s. */
int lease_decline(struct lease_pool *p, const struct client_key *k, uint32_t addr, int64_t now,
                  uint32_t hold_s, struct store_lease *ret);
/* The client chose another server: drop our pending offer to it. */
void lease_forget_offer(struct lease_pool *p, uint32_t subnet, const struct client_key *k);

/* The reservation for mac in subnet, or NULL. */
const struct dhcp_reservation *lease_reservation(const struct lease_pool *p, uint32_t subnet, const uint8_t mac[6]);

struct lease_stats {
        uint64_t total, bound, offered, declined;
};
void lease_pool_stats(const struct lease_pool *p, int64_t now, struct lease_stats *ret);
