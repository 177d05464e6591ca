/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>

#include "metald/dhcp_lease.h"
#include "metald/store.h"
#include "test.h"

static int count_cb(const struct store_lease *l, void *u)
{
        struct store_lease *out = u;

        out[0].addr++;                  /* count */
        out[1 + (l->addr & 3)] = *l;
        return 0;
}

TEST(store_roundtrip_survives_reopen)
{
        char path[512];
        struct store *s;
        struct store_lease got[5] = { 0 };
        struct store_lease_change ch[2] = {
                { STORE_PUT, { .addr = 0x0a000065, .state = STORE_LEASE_BOUND, .client_id = { 1, 2, 3 },
                               .client_id_len = 3, .mac = { 0x52, 0x54, 0, 0, 0, 1 }, .expires = 123,
                               .hostname = "node-1" } },
                { STORE_PUT, { .addr = 0x0a000066, .state = STORE_LEASE_DECLINED, .expires = 456 } },
        };

        snprintf(path, sizeof(path), "%s/state.db", test_tmpdir());
        CHECK_EQ(store_open(path, &s), 0);
        CHECK_EQ(store_lease_apply(s, ch, 2), 0);
        store_close(s);
        CHECK_EQ(store_open(path, &s), 0);
        CHECK_EQ(store_lease_foreach(s, count_cb, got), 0);
        CHECK_EQ(got[0].addr, 2);
        CHECK_EQ(got[2].state, STORE_LEASE_BOUND);
        CHECK_EQ(got[2].client_id_len, 3);
        CHECK_EQ(got[2].expires, 123);
        CHECK_STREQ(got[2].hostname, "node-1");
        CHECK_EQ(got[3].state, STORE_LEASE_DECLINED);
        /* delete and replace in one transaction */
        ch[0].op = STORE_DELETE;
        ch[1].lease.state = STORE_LEASE_BOUND;
        CHECK_EQ(store_lease_apply(s, ch, 2), 0);
        memset(got, 0, sizeof(got));
        CHECK_EQ(store_lease_foreach(s, count_cb, got), 0);
        CHECK_EQ(got[0].addr, 1);
        CHECK_EQ(got[3].state, STORE_LEASE_BOUND);
        store_close(s);
}

TEST(store_refuses_unwritable_path)
{
        struct store *s = NULL;

        CHECK(store_open("/proc/metald-no-such-dir/x.db", &s) < 0);
        CHECK(s == NULL);
}

TEST(lease_pool_restore_keeps_binding_and_quarantine)
{
        struct dhcp_config cfg = { .lease_time_s = 3600 };
        struct dhcp_subnet sub = { .network = 0x0a000000, .mask = 0xffffff00, .prefix = 24,
                                   .ranges = { { 0x0a000064, 0x0a000065 } }, .n_ranges = 1 };
        struct lease_pool *p;
        struct store_lease bound = { .addr = 0x0a000064, .state = STORE_LEASE_BOUND, .client_id = { 1, 0x52 },
                                     .client_id_len = 2, .expires = 2000 };
        struct store_lease declined = { .addr = 0x0a000065, .state = STORE_LEASE_DECLINED, .expires = 2000 };
        struct store_lease outside = { .addr = 0x0b000001, .state = STORE_LEASE_BOUND, .expires = 2000 };
        struct client_key k = { .len = 2, .id = { 1, 0x52 } }, other = { .len = 2, .id = { 1, 0x53 } };
        uint8_t mac[6] = { 0x52 }, mac2[6] = { 0x53 };
        uint32_t a;

        cfg.subnets = &sub;
        cfg.n_subnets = 1;
        CHECK_EQ(lease_pool_new(&cfg, &p), 0);
        CHECK_EQ(lease_pool_restore(p, &bound), 0);
        CHECK_EQ(lease_pool_restore(p, &declined), 0);
        CHECK(lease_pool_restore(p, &outside) < 0);
        /* the restored client gets its address back; another client finds the pool full */
        CHECK_EQ(lease_offer(p, 0, &k, mac, 0, 1000, 30, &a), 0);
        CHECK_EQ(a, 0x0a000064);
        CHECK_EQ(lease_offer(p, 0, &other, mac2, 0, 1000, 30, &a), -ENOSPC);
        /* after both expiry times the addresses are reclaimed */
        CHECK_EQ(lease_offer(p, 0, &other, mac2, 0, 2001, 30, &a), 0);
        lease_pool_free(p);
}
