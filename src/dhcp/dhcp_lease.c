/* SPDX-License-Identifier: Apache-2.0 */
#include "metald/dhcp_lease.h"
#include "metald/util.h"

/* Slots of one range are contiguous; reservations outside every range get extra slots. */
struct pool_range {
        uint32_t start, end;
        uint32_t first_slot;
};

struct pool_subnet {
        const struct dhcp_subnet *cfg;
        struct pool_range ranges[CONFIG_MAX_RANGES];
        size_t n_ranges;
        uint32_t n_slots;       /* in ranges */
        uint32_t cursor;        /* rotating start of the free-address search */
        uint32_t n_fresh;       /* unreserved slots in state FREE */
        int64_t full_until;     /* after a failed search: nothing frees up before this */
};

struct lease_pool {
        const struct dhcp_config *cfg;
        struct pool_subnet *subnets;
        size_t n_subnets;
        struct lease *slots;
        uint32_t n_slots;
        int32_t *client_buckets;        /* heads of client chains */
        uint32_t client_mask;
        int32_t *addr_table;            /* open addressing: addr -> slot */
        uint32_t addr_mask;
};

static uint32_t hash_bytes(const uint8_t *p, size_t n)
{
        uint32_t h = 2166136261u;

        for (size_t i = 0; i < n; i++)
                h = (h ^ p[i]) * 16777619u;
        return h;
}

static uint32_t hash_addr(uint32_t a)
{
        a ^= a >> 16;
        a *= 0x7feb352du;
        a ^= a >> 15;
        a *= 0x846ca68bu;
        return a ^ (a >> 16);
}

static uint32_t pow2_at_least(uint64_t n)
{
        uint32_t v = 16;

        while (v < n)
                v <<= 1;
        return v;
}

static int32_t addr_slot(const struct lease_pool *p, uint32_t addr)
{
        for (uint32_t i = hash_addr(addr) & p->addr_mask;; i = (i + 1) & p->addr_mask) {
                int32_t s = p->addr_table[i];

                if (s < 0 || p->slots[s].addr == addr)
                        return s;
        }
}

static void addr_insert(struct lease_pool *p, uint32_t slot)
{
        uint32_t i = hash_addr(p->slots[slot].addr) & p->addr_mask;

        while (p->addr_table[i] >= 0)
                i = (i + 1) & p->addr_mask;
        p->addr_table[i] = (int32_t)slot;
}

static bool same_client(const struct client_key *a, const struct client_key *b)
{
        return a->len == b->len && memcmp(a->id, b->id, a->len) == 0;
}

/* Every state change goes through here so the count of fresh slots stays right. */
static void set_state(struct lease_pool *p, uint32_t slot, enum lease_state st)
{
        struct lease *l = &p->slots[slot];
        struct pool_subnet *ps = &p->subnets[l->subnet];

        if (!l->reserved && l->state == LEASE_FREE)
                ps->n_fresh--;
        l->state = st;
        if (!l->reserved && st == LEASE_FREE)
                ps->n_fresh++;
        if (st == LEASE_FREE || st == LEASE_RELEASED)
                ps->full_until = 0;
}

static void client_link(struct lease_pool *p, uint32_t slot)
{
        struct lease *l = &p->slots[slot];
        uint32_t b = hash_bytes(l->client.id, l->client.len) & p->client_mask;

        l->client_next = p->client_buckets[b];
        p->client_buckets[b] = (int32_t)slot;
}

static void client_unlink(struct lease_pool *p, uint32_t slot)
{
        struct lease *l = &p->slots[slot];
        int32_t *link = &p->client_buckets[hash_bytes(l->client.id, l->client.len) & p->client_mask];

        while (*link >= 0 && *link != (int32_t)slot)
                link = &p->slots[*link].client_next;
        if (*link == (int32_t)slot)
                *link = l->client_next;
        l->client_next = -1;
}

/* Gives the slot to a new owner (or none), keeping the client hash consistent. */
static void set_owner(struct lease_pool *p, uint32_t slot, const struct client_key *k, const uint8_t mac[6])
{
        struct lease *l = &p->slots[slot];

        if (l->client.len > 0)
                client_unlink(p, slot);
        l->client = k ? *k : (struct client_key){ 0 };
        if (mac)
                memcpy(l->mac, mac, 6);
        else
                memset(l->mac, 0, 6);
        l->hostname[0] = '\0';
        if (l->client.len > 0)
                client_link(p, slot);
}

static int find_client_slot(const struct lease_pool *p, uint32_t subnet, const struct client_key *k)
{
        int32_t s = p->client_buckets[hash_bytes(k->id, k->len) & p->client_mask];

        for (; s >= 0; s = p->slots[s].client_next)
                if (p->slots[s].subnet == subnet && same_client(&p->slots[s].client, k))
                        return s;
        return -1;
}

static uint32_t count_slots(const struct dhcp_config *cfg)
{
        uint64_t n = 0;

        for (size_t i = 0; i < cfg->n_subnets; i++) {
                for (size_t j = 0; j < cfg->subnets[i].n_ranges; j++)
                        n += cfg->subnets[i].ranges[j].end - cfg->subnets[i].ranges[j].start + 1;
                n += cfg->subnets[i].n_reservations;
        }
        return (uint32_t)n;
}

static void init_slot(struct lease_pool *p, uint32_t slot, uint32_t addr, uint32_t subnet)
{
        p->slots[slot] = (struct lease){ .addr = addr, .subnet = subnet, .client_next = -1 };
        p->subnets[subnet].n_fresh++;
        addr_insert(p, slot);
}

/* Lays out the slots: every range address, then reservations outside the ranges. */
static void layout(struct lease_pool *p)
{
        uint32_t slot = 0;

        for (size_t i = 0; i < p->n_subnets; i++) {
                struct pool_subnet *ps = &p->subnets[i];

                for (size_t j = 0; j < ps->cfg->n_ranges; j++) {
                        const struct dhcp_range *r = &ps->cfg->ranges[j];

                        ps->ranges[j] = (struct pool_range){ r->start, r->end, slot };
                        for (uint64_t a = r->start; a <= r->end; a++)
                                init_slot(p, slot++, (uint32_t)a, (uint32_t)i);
                        ps->n_slots += r->end - r->start + 1;
                }
                ps->n_ranges = ps->cfg->n_ranges;
        }
        for (size_t i = 0; i < p->n_subnets; i++) {
                const struct dhcp_subnet *s = p->subnets[i].cfg;

                for (size_t j = 0; j < s->n_reservations; j++) {
                        int32_t at = addr_slot(p, s->reservations[j].addr);

                        if (at < 0) {
                                at = (int32_t)slot;
                                init_slot(p, slot++, s->reservations[j].addr, (uint32_t)i);
                        }
                        if (!p->slots[at].reserved)
                                p->subnets[i].n_fresh--;
                        p->slots[at].reserved = true;
                        memcpy(p->slots[at].reserved_mac, s->reservations[j].mac, 6);
                }
        }
        p->n_slots = slot;
}

int lease_pool_new(const struct dhcp_config *cfg, struct lease_pool **ret)
{
        struct lease_pool *p = calloc(1, sizeof(*p));
        uint32_t n = count_slots(cfg);

        if (!p)
                return -ENOMEM;
        p->cfg = cfg;
        p->n_subnets = cfg->n_subnets;
        p->subnets = calloc(cfg->n_subnets ? cfg->n_subnets : 1, sizeof(*p->subnets));
        p->slots = calloc(n ? n : 1, sizeof(*p->slots));
        p->client_mask = pow2_at_least((uint64_t)n * 2) - 1;
        p->addr_mask = pow2_at_least((uint64_t)n * 2) - 1;
        p->client_buckets = malloc(((size_t)p->client_mask + 1) * sizeof(int32_t));
        p->addr_table = malloc(((size_t)p->addr_mask + 1) * sizeof(int32_t));
        if (!p->subnets || !p->slots || !p->client_buckets || !p->addr_table) {
                lease_pool_free(p);
                return -ENOMEM;
        }
        memset(p->client_buckets, 0xff, ((size_t)p->client_mask + 1) * sizeof(int32_t));
        memset(p->addr_table, 0xff, ((size_t)p->addr_mask + 1) * sizeof(int32_t));
        for (size_t i = 0; i < cfg->n_subnets; i++)
                p->subnets[i].cfg = &cfg->subnets[i];
        layout(p);
        *ret = p;
        return 0;
}

void lease_pool_free(struct lease_pool *p)
{
        if (!p)
                return;
        free(p->subnets);
        free(p->slots);
        free(p->client_buckets);
        free(p->addr_table);
        free(p);
}

int lease_pool_subnet_of(const struct lease_pool *p, uint32_t addr)
{
        for (size_t i = 0; i < p->n_subnets; i++)
                if ((addr & p->subnets[i].cfg->mask) == p->subnets[i].cfg->network)
                        return (int)i;
        return -1;
}

const struct lease *lease_find_addr(const struct lease_pool *p, uint32_t addr)
{
        int32_t s = addr_slot(p, addr);

        return s < 0 ? NULL : &p->slots[s];
}

const struct lease *lease_find_client(const struct lease_pool *p, uint32_t subnet, const struct client_key *k)
{
        int s = find_client_slot(p, subnet, k);

        return s < 0 || p->slots[s].state == LEASE_FREE ? NULL : &p->slots[s];
}

const struct dhcp_reservation *lease_reservation(const struct lease_pool *p, uint32_t subnet, const uint8_t mac[6])
{
        const struct dhcp_subnet *s;

        if (subnet >= p->n_subnets)
                return NULL;
        s = p->subnets[subnet].cfg;
        for (size_t i = 0; i < s->n_reservations; i++)
                if (memcmp(s->reservations[i].mac, mac, 6) == 0)
                        return &s->reservations[i];
        return NULL;
}

static void to_store(const struct lease *l, enum store_lease_state st, struct store_lease *ret)
{
        *ret = (struct store_lease){ .addr = l->addr, .state = st, .expires = l->expires };
        memcpy(ret->client_id, l->client.id, l->client.len);
        ret->client_id_len = l->client.len;
        memcpy(ret->mac, l->mac, 6);
        memcpy(ret->hostname, l->hostname, sizeof(ret->hostname));
}

int lease_pool_restore(struct lease_pool *p, const struct store_lease *sl)
{
        int32_t s = addr_slot(p, sl->addr);
        struct client_key k = { .len = sl->client_id_len };
        struct lease *l;

        if (s < 0 || sl->client_id_len > DHCP_MAX_CLIENT_ID)
                return -ENOENT;
        l = &p->slots[s];
        if (l->reserved && sl->state == STORE_LEASE_BOUND && memcmp(l->reserved_mac, sl->mac, 6) != 0)
                return -ENOENT;         /* the reservation changed hands since */
        memcpy(k.id, sl->client_id, k.len);
        set_owner(p, (uint32_t)s, k.len ? &k : NULL, sl->mac);
        l->expires = sl->expires;
        str_copy(l->hostname, sizeof(l->hostname), sl->hostname);
        switch (sl->state) {
        case STORE_LEASE_BOUND:    set_state(p, (uint32_t)s, LEASE_BOUND); break;
        case STORE_LEASE_RELEASED: set_state(p, (uint32_t)s, LEASE_RELEASED); break;
        case STORE_LEASE_DECLINED: set_state(p, (uint32_t)s, LEASE_DECLINED); break;
        default:
                set_owner(p, (uint32_t)s, NULL, NULL);
                return -ENOENT;
        }
        return 0;
}

/* May this slot be handed to client k (with mac) now? */
static bool available_for(const struct lease *l, const struct client_key *k, const uint8_t mac[6], int64_t now)
{
        if (l->reserved)
                return memcmp(l->reserved_mac, mac, 6) == 0;
        switch (l->state) {
        case LEASE_FREE:
        case LEASE_RELEASED:
                return true;
        case LEASE_DECLINED:
                return l->expires <= now;
        case LEASE_OFFERED:
        case LEASE_BOUND:
                return same_client(&l->client, k) || l->expires <= now;
        }
        return false;
}

/* Free for anyone: never used, given back, or its hold has run out. */
static bool reclaimable(const struct lease *l, int64_t now)
{
        return !l->reserved && (l->state == LEASE_FREE || l->state == LEASE_RELEASED || l->expires <= now);
}

/* Next slot from the subnet's cursor that passes the filter; -1 when none. */
static int32_t scan(struct lease_pool *p, struct pool_subnet *ps, bool fresh_only, int64_t now)
{
        int64_t soonest = INT64_MAX;

        if (!fresh_only && now < ps->full_until)
                return -1;      /* exhausted, and known to stay so for a while: no O(n) walk */
        for (uint32_t n = 0; n < ps->n_slots; n++) {
                uint32_t idx = (ps->cursor + n) % ps->n_slots, slot = 0;
                struct lease *l;

                for (size_t r = 0; r < ps->n_ranges; r++) {
                        uint32_t size = ps->ranges[r].end - ps->ranges[r].start + 1;

                        if (idx < size) {
                                slot = ps->ranges[r].first_slot + idx;
                                break;
                        }
                        idx -= size;
                }
                l = &p->slots[slot];
                if (fresh_only ? !l->reserved && l->state == LEASE_FREE : reclaimable(l, now)) {
                        ps->cursor = (ps->cursor + n + 1) % ps->n_slots;
                        return (int32_t)slot;
                }
                if (!l->reserved)
                        soonest = MIN(soonest, l->expires);
        }
        if (!fresh_only)
                ps->full_until = soonest;
        return -1;
}

static int32_t choose_slot(struct lease_pool *p, uint32_t subnet, const struct client_key *k,
                           const uint8_t mac[6], uint32_t requested, int64_t now)
{
        const struct dhcp_reservation *res = lease_reservation(p, subnet, mac);
        int32_t s;

        if (res)
                return addr_slot(p, res->addr);
        s = find_client_slot(p, subnet, k);
        if (s >= 0 && !p->slots[s].reserved && p->slots[s].state != LEASE_DECLINED)
                return s;
        if (requested) {
                s = addr_slot(p, requested);
                if (s >= 0 && p->slots[s].subnet == subnet && available_for(&p->slots[s], k, mac, now))
                        return s;
        }
        s = p->subnets[subnet].n_fresh > 0 ? scan(p, &p->subnets[subnet], true, now) : -1;
        return s >= 0 ? s : scan(p, &p->subnets[subnet], false, now);
}

int lease_offer(struct lease_pool *p, uint32_t subnet, const struct client_key *k, const uint8_t mac[6],
                uint32_t requested, int64_t now, uint32_t hold_s, uint32_t *ret_addr)
{
        int32_t s;
        struct lease *l;

        if (subnet >= p->n_subnets)
                return -ENOENT;
        s = choose_slot(p, subnet, k, mac, requested, now);
        if (s < 0)
                return -ENOSPC;
        l = &p->slots[s];
        if (l->state == LEASE_BOUND && same_client(&l->client, k) && l->expires > now) {
                *ret_addr = l->addr;    /* already bound: offer it again, keep the binding */
                return 0;
        }
        if (!same_client(&l->client, k))
                set_owner(p, (uint32_t)s, k, mac);
        set_state(p, (uint32_t)s, LEASE_OFFERED);
        l->expires = now + hold_s;
        *ret_addr = l->addr;
        return 0;
}

int lease_bind(struct lease_pool *p, uint32_t subnet, const struct client_key *k, const uint8_t mac[6],
               uint32_t addr, int64_t now, uint32_t lease_s, const char *hostname, struct store_lease *ret)
{
        int32_t s = addr_slot(p, addr), old;
        struct lease *l;

        if (s < 0 || p->slots[s].subnet != subnet)
                return -ENOENT;
        l = &p->slots[s];
        if (l->reserved && memcmp(l->reserved_mac, mac, 6) != 0)
                return -EPERM;
        if (!available_for(l, k, mac, now))
                return -EADDRINUSE;
        /* a client holds one address per subnet: moving frees its old one */
        old = find_client_slot(p, subnet, k);
        if (old >= 0 && old != s) {
                set_owner(p, (uint32_t)old, NULL, NULL);
                set_state(p, (uint32_t)old, LEASE_FREE);
        }
        if (!same_client(&l->client, k))
                set_owner(p, (uint32_t)s, k, mac);
        memcpy(l->mac, mac, 6);
        set_state(p, (uint32_t)s, LEASE_BOUND);
        l->expires = now + lease_s;
        str_copy(l->hostname, sizeof(l->hostname), hostname ? hostname : "");
        to_store(l, STORE_LEASE_BOUND, ret);
        return 0;
}

int lease_release(struct lease_pool *p, const struct client_key *k, uint32_t addr, int64_t now,
                  struct store_lease *ret)
{
        int32_t s = addr_slot(p, addr);
        struct lease *l;

        if (s < 0)
                return -ENOENT;
        l = &p->slots[s];
        if (l->state != LEASE_BOUND || !same_client(&l->client, k))
                return -ENOENT;
        set_state(p, (uint32_t)s, LEASE_RELEASED);
        l->expires = now;
        to_store(l, STORE_LEASE_RELEASED, ret);
        return 0;
}

int lease_decline(struct lease_pool *p, const struct client_key *k, uint32_t addr, int64_t now,
                  uint32_t hold_s, struct store_lease *ret)
{
        int32_t s = addr_slot(p, addr);
        struct lease *l;

        if (s < 0)
                return -ENOENT;
        l = &p->slots[s];
        if ((l->state != LEASE_BOUND && l->state != LEASE_OFFERED) || !same_client(&l->client, k))
                return -ENOENT;
        set_owner(p, (uint32_t)s, NULL, NULL);
        set_state(p, (uint32_t)s, LEASE_DECLINED);
        l->expires = now + hold_s;
        to_store(l, STORE_LEASE_DECLINED, ret);
        return 0;
}

void lease_forget_offer(struct lease_pool *p, uint32_t subnet, const struct client_key *k)
{
        int s = find_client_slot(p, subnet, k);

        if (s >= 0 && p->slots[s].state == LEASE_OFFERED) {
                set_owner(p, (uint32_t)s, NULL, NULL);
                set_state(p, (uint32_t)s, LEASE_FREE);
        }
}

void lease_pool_stats(const struct lease_pool *p, int64_t now, struct lease_stats *ret)
{
        *ret = (struct lease_stats){ .total = p->n_slots };
        for (uint32_t i = 0; i < p->n_slots; i++) {
                const struct lease *l = &p->slots[i];

                if (l->expires <= now)
                        continue;
                ret->bound += l->state == LEASE_BOUND;
                ret->offered += l->state == LEASE_OFFERED;
                ret->declined += l->state == LEASE_DECLINED;
        }
}
