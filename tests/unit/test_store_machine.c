/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>

#include "metald/store.h"
#include "metald/util.h"
#include "test.h"

static struct store_machine sample(const char *name, uint8_t last)
{
        struct store_machine m = { .state = 0, .progress = -1, .created = 100, .state_since = 100, .last_seen = 100 };

        snprintf(m.name, sizeof(m.name), "%s", name);
        m.mac[0] = 0x52, m.mac[1] = 0x54, m.mac[5] = last;
        snprintf(m.uuid, sizeof(m.uuid), "8c1b5a2e-4c1e-4d5a-9f00-0000000000%02x", last);
        return m;
}

static int open_db(struct store **s)
{
        char path[512];

        snprintf(path, sizeof(path), "%s/m.db", test_tmpdir());
        return store_open(path, s);
}

static int count_cb(const struct store_event *e, void *u)
{
        (void)e;
        (*(int *)u)++;
        return 0;
}

TEST(store_machine_create_get_update)
{
        struct store *s;
        struct store_machine m = sample("m-1", 1), got;
        struct store_event ev = { .ts = 100, .event = "discovered", .from = -1, .to = 0, .detail = "first boot" };
        struct store_machine_txn t = { .m = &m, .event = &ev };
        int64_t id;
        int n = 0;

        CHECK_EQ(open_db(&s), 0);
        CHECK_EQ(store_machine_commit(s, &t), 0);
        CHECK(m.id > 0);
        CHECK_EQ(m.generation, 1);
        id = m.id;
        CHECK_EQ(store_machine_get(s, STORE_BY_MAC, m.mac, &got), 0);
        CHECK_EQ(got.id, id);
        CHECK_STREQ(got.uuid, m.uuid);
        CHECK_EQ(store_machine_get(s, STORE_BY_NAME, "m-1", &got), 0);
        CHECK_EQ(store_machine_get(s, STORE_BY_ID, &id, &got), 0);
        CHECK_EQ(store_machine_get(s, STORE_BY_NAME, "nope", &got), -ENOENT);
        got.state = 1;
        str_copy(got.reason, sizeof(got.reason), "registered");
        t = (struct store_machine_txn){ .m = &got, .event = &ev };
        CHECK_EQ(store_machine_commit(s, &t), 0);
        CHECK_EQ(got.generation, 2);
        CHECK_EQ(store_event_foreach(s, id, count_cb, &n), 0);
        CHECK_EQ(n, 2);
        store_close(s);
}

/* Two writers load the same generation; exactly one commit wins. */
TEST(store_machine_compare_and_swap)
{
        struct store *a, *b;
        struct store_machine m = sample("m-2", 2), ma, mb;
        struct store_machine_txn t = { .m = &m };

        CHECK_EQ(open_db(&a), 0);
        CHECK_EQ(open_db(&b), 0);
        CHECK_EQ(store_machine_commit(a, &t), 0);
        CHECK_EQ(store_machine_get(a, STORE_BY_ID, &m.id, &ma), 0);
        CHECK_EQ(store_machine_get(b, STORE_BY_ID, &m.id, &mb), 0);
        ma.state = 2;
        mb.state = 8;
        t = (struct store_machine_txn){ .m = &ma };
        CHECK_EQ(store_machine_commit(a, &t), 0);
        t = (struct store_machine_txn){ .m = &mb };
        CHECK_EQ(store_machine_commit(b, &t), -ESTALE);
        CHECK_EQ(store_machine_get(b, STORE_BY_ID, &m.id, &mb), 0);
        CHECK_EQ(mb.state, 2);
        /* delete is compare-and-swap too */
        CHECK_EQ(store_machine_delete(b, m.id, mb.generation - 1), -ESTALE);
        CHECK_EQ(store_machine_delete(b, m.id, mb.generation), 0);
        CHECK_EQ(store_machine_delete(a, m.id, mb.generation), -ENOENT);
        store_close(a);
        store_close(b);
}

TEST(store_machine_unique_mac_and_name)
{
        struct store *s;
        struct store_machine a = sample("m-a", 3), b = sample("m-b", 3), c = sample("m-a", 4);
        struct store_machine_txn t = { .m = &a };

        CHECK_EQ(open_db(&s), 0);
        CHECK_EQ(store_machine_commit(s, &t), 0);
        t.m = &b;
        CHECK_EQ(store_machine_commit(s, &t), -EEXIST);
        CHECK_EQ(b.id, 0);
        t.m = &c;
        CHECK_EQ(store_machine_commit(s, &t), -EEXIST);
        store_close(s);
}

TEST(store_machine_session_and_inventory)
{
        struct store *s;
        struct store_machine m = sample("m-5", 5);
        struct store_session ss = { .nonce_expires = 500 }, got;
        struct store_machine_txn t = { .m = &m, .session_op = STORE_SESSION_SET, .session = &ss,
                                       .inventory_json = "{\"cpu\":{}}" };
        int64_t id;
        char *json = NULL;

        memset(ss.nonce_hash, 0xaa, 32);
        CHECK_EQ(open_db(&s), 0);
        CHECK_EQ(store_machine_commit(s, &t), 0);
        CHECK_EQ(store_session_get(s, m.id, &got), 0);
        CHECK_EQ(got.nonce_expires, 500);
        CHECK_EQ(got.nonce_hash[31], 0xaa);
        CHECK_EQ(got.session_created, 0);
        CHECK_EQ(store_inventory_get(s, m.id, &json), 0);
        CHECK_STREQ(json, "{\"cpu\":{}}");
        free(json);
        /* exchange the nonce for a session */
        ss = (struct store_session){ .session_created = 600 };
        memset(ss.session_hash, 0xbb, 32);
        t = (struct store_machine_txn){ .m = &m, .session_op = STORE_SESSION_SET, .session = &ss };
        CHECK_EQ(store_machine_commit(s, &t), 0);
        CHECK_EQ(store_session_find(s, ss.session_hash, &id), 0);
        CHECK_EQ(id, m.id);
        t = (struct store_machine_txn){ .m = &m, .session_op = STORE_SESSION_CLEAR };
        CHECK_EQ(store_machine_commit(s, &t), 0);
        CHECK_EQ(store_session_find(s, ss.session_hash, &id), -ENOENT);
        CHECK_EQ(store_session_get(s, m.id, &got), -ENOENT);
        /* deleting the machine takes its inventory along */
        CHECK_EQ(store_machine_delete(s, m.id, m.generation), 0);
        CHECK_EQ(store_inventory_get(s, m.id, &json), -ENOENT);
        store_close(s);
}

TEST(store_machine_timeline_is_bounded)
{
        struct store *s;
        struct store_machine m = sample("m-6", 6);
        struct store_event ev = { .ts = 1, .event = "heartbeat", .from = -1, .to = -1 };
        struct store_machine_txn t = { .m = &m, .event = &ev };
        int n = 0;

        CHECK_EQ(open_db(&s), 0);
        for (int i = 0; i < STORE_MAX_EVENTS_PER_MACHINE + 25; i++)
                CHECK_EQ(store_machine_commit(s, &t), 0);
        CHECK_EQ(store_event_foreach(s, m.id, count_cb, &n), 0);
        CHECK_EQ(n, STORE_MAX_EVENTS_PER_MACHINE);
        store_close(s);
}
