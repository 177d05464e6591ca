/* SPDX-License-Identifier: Apache-2.0 */
#include <json-c/json.h>
#include <sqlite3.h>
#include <stdio.h>

#include "metald/buf.h"
#include "metald/registry.h"
#include "metald/util.h"
#include "test.h"

static const int64_t T0 = 1800000000;

struct fx {
        struct config cfg;
        struct profile profile;
        struct registry *reg;
        char db[4200];
};

static struct fx F;

static int setup(const char *db_name)
{
        memset(&F, 0, sizeof(F));
        F.cfg.lifecycle = (struct lifecycle_config){
                .timeouts = { .enroll_s = 1800, .agent_s = 300, .imaging_s = 7200, .imaged_s = 1800, .join_s = 1800 },
                .nonce_ttl_s = 1800, .heartbeat_s = 10,
        };
        snprintf(F.cfg.state_dir, sizeof(F.cfg.state_dir), "%s/state", test_tmpdir());
        (void)mkdir_p(F.cfg.state_dir, 0755);
        snprintf(F.db, sizeof(F.db), "%s/images", F.cfg.state_dir);
        (void)mkdir_p(F.db, 0755);      /* an empty catalog */
        str_copy(F.profile.name, sizeof(F.profile.name), "lab");
        str_copy(F.profile.image, sizeof(F.profile.image), "flatcar");
        F.profile.image_version = 3;
        F.profile.approval = PROFILE_APPROVE_AUTO;
        F.cfg.profiles = &F.profile;
        F.cfg.n_profiles = 1;
        snprintf(F.db, sizeof(F.db), "%s/%s", test_tmpdir(), db_name);
        return registry_open(F.db, &F.cfg, &F.reg);
}

static void teardown(void)
{
        registry_close(F.reg);
        F.reg = NULL;
}

/* A machine that enrolled under the auto profile and whose install failed. */
static int failed_machine(uint8_t last, struct store_machine *ret)
{
        struct boot_contact c = { .mac = { 0x52, 0x54, 0, 0, 0x0e, last }, .ip = 0x0a000064 };
        struct agent_identity id = { .serial = "S1", .vendor = "QEMU", .product = "Standard PC" };
        struct agent_reply rep, ev;
        struct registry_boot b;

        if (registry_boot(F.reg, &c, T0, &b) < 0)
                return -1;
        registry_register(F.reg, b.nonce, c.mac, &id, "{}", c.ip, T0, &rep);
        if (rep.status != 200)
                return -1;
        registry_agent_event(F.reg, rep.m.id, "install-started", "/dev/sda", 0, T0, &ev);
        registry_agent_event(F.reg, rep.m.id, "install-failed", "disk chunk 3: digest mismatch", -1, T0, &ev);
        *ret = ev.m;
        return ev.m.state == MS_FAILED ? 0 : -1;
}

/* The field of one machine's show JSON. */
static int show_field(const char *who, const char *key, char *out, size_t cap)
{
        struct buf b = BUF_INIT(1 << 20);
        json_object *o, *v;
        int e = registry_show_json(F.reg, who, &b);

        if (e == 0 && (o = json_tokener_parse(b.data))) {
                e = json_object_object_get_ex(o, key, &v) ? 0 : -ENOENT;
                if (e == 0)
                        snprintf(out, cap, "%s", json_object_get_string(v));
                json_object_put(o);
        }
        buf_free(&b);
        return e;
}

TEST(machine_image_prefers_the_machine_override)
{
        struct store_machine m = { 0 };
        uint64_t v = 99;

        CHECK_STREQ(machine_image(&m, NULL, &v), "");
        CHECK_EQ(v, 0);
        struct profile p = { .image = "flatcar", .image_version = 4 };
        CHECK_STREQ(machine_image(&m, &p, &v), "flatcar");
        CHECK_EQ(v, 4);
        str_copy(m.image, sizeof(m.image), "test-bios");
        CHECK_STREQ(machine_image(&m, &p, &v), "test-bios");
        CHECK_EQ(v, 0);         /* the override's own version: the newest, not the profile's pin */
        m.image_version = 2;
        CHECK_STREQ(machine_image(&m, NULL, &v), "test-bios");
        CHECK_EQ(v, 2);
}

TEST(reimage_image_override_is_checked_and_kept)
{
        struct store_machine m, again;
        struct store *s;
        char err[256], val[64];

        CHECK_EQ(setup("reimage.db"), 0);
        CHECK_EQ(failed_machine(1, &m), 0);
        /* refusals change nothing: a malformed reference, an image not in the catalog, a bad version */
        CHECK_EQ(registry_admin(F.reg, ADMIN_REIMAGE, m.name, "Not An Image", T0, &again, err, sizeof(err)), -EINVAL);
        CHECK(strstr(err, "is not an image NAME") != NULL);
        CHECK_EQ(registry_admin(F.reg, ADMIN_REIMAGE, m.name, "test-bios:0", T0, &again, err, sizeof(err)), -EINVAL);
        CHECK_EQ(registry_admin(F.reg, ADMIN_REIMAGE, m.name, "test-bios:2", T0, &again, err, sizeof(err)), -EINVAL);
        CHECK(strstr(err, "not in the catalog") != NULL);
        CHECK_EQ(registry_find(F.reg, m.name, &again), 0);
        CHECK_EQ(again.state, MS_FAILED);
        CHECK_STREQ(again.reason, "disk chunk 3: digest mismatch");
        CHECK_STREQ(again.image, "");

        /* an override stored with the machine (another handle on the same database) is what it installs */
        CHECK_EQ(store_open(F.db, &s), 0);
        CHECK_EQ(store_machine_get(s, STORE_BY_ID, &m.id, &again), 0);
        str_copy(again.image, sizeof(again.image), "test-bios");
        again.image_version = 7;
        CHECK_EQ(store_machine_commit(s, &(struct store_machine_txn){ .m = &again }), 0);
        CHECK_EQ(show_field(m.name, "image", val, sizeof(val)), 0);
        CHECK_STREQ(val, "test-bios");
        CHECK_EQ(show_field(m.name, "image_version", val, sizeof(val)), 0);
        CHECK_STREQ(val, "7");
        CHECK_EQ(show_field(m.name, "image_source", val, sizeof(val)), 0);
        CHECK_STREQ(val, "machine");
        /* NULL keeps it */
        CHECK_EQ(registry_admin(F.reg, ADMIN_REIMAGE, m.name, NULL, T0 + 1, &again, err, sizeof(err)), 0);
        CHECK_EQ(again.state, MS_APPROVED);
        CHECK_STREQ(again.reason, "");
        CHECK_STREQ(again.image, "test-bios");
        CHECK_EQ(again.image_version, 7);
        /* "" follows the profile again */
        CHECK_EQ(store_machine_get(s, STORE_BY_ID, &m.id, &again), 0);
        again.state = MS_FAILED;
        CHECK_EQ(store_machine_commit(s, &(struct store_machine_txn){ .m = &again }), 0);
        CHECK_EQ(registry_admin(F.reg, ADMIN_REIMAGE, m.name, "", T0 + 2, &again, err, sizeof(err)), 0);
        CHECK_STREQ(again.image, "");
        CHECK_EQ(again.image_version, 0);
        CHECK_EQ(show_field(m.name, "image", val, sizeof(val)), 0);
        CHECK_STREQ(val, "flatcar");
        CHECK_EQ(show_field(m.name, "image_source", val, sizeof(val)), 0);
        CHECK_STREQ(val, "profile");
        store_close(s);
        teardown();
}

TEST(reimage_with_the_manual_driver_waits_for_an_operator)
{
        struct store_machine m, again;
        struct registry_boot b;
        char err[256], what[256], want[128];

        CHECK_EQ(setup("manual.db"), 0);
        CHECK_EQ(failed_machine(2, &m), 0);
        CHECK_EQ(registry_admin(F.reg, ADMIN_REIMAGE, m.name, NULL, T0 + 5, &again, err, sizeof(err)), 0);
        CHECK_EQ(registry_reimage_power(F.reg, &again, T0 + 5, what, sizeof(what)), -EOPNOTSUPP);
        snprintf(want, sizeof(want), "waiting for an operator to power-cycle %s", m.name);
        CHECK(strstr(what, want) != NULL);
        CHECK_EQ(again.state, MS_APPROVED);
        CHECK_STREQ(again.reason, want);
        CHECK_EQ(registry_find(F.reg, m.name, &again), 0);
        CHECK_STREQ(again.reason, want);
        CHECK_STREQ(again.last_event, "reimage");
        /* its next enrollment boot is what the operator was asked for: the reason goes */
        struct boot_contact c = { .mac = { 0x52, 0x54, 0, 0, 0x0e, 2 } };
        CHECK_EQ(registry_boot(F.reg, &c, T0 + 60, &b), 0);
        CHECK_EQ(b.m.state, MS_APPROVED);
        CHECK_STREQ(b.m.reason, "");
        teardown();
}

TEST(reimage_power_target_errors_leave_a_reason)
{
        struct store_machine m, again;
        char err[256], what[256];

        CHECK_EQ(setup("badpower.db"), 0);
        /* a QMP socket nobody listens on: the qemu driver fails, bounded, and says so */
        F.profile.power.driver = PROFILE_POWER_QEMU;
        snprintf(F.profile.power.socket, sizeof(F.profile.power.socket), "%s/none-{mac}.qmp", test_tmpdir());
        CHECK_EQ(failed_machine(3, &m), 0);
        CHECK_EQ(registry_admin(F.reg, ADMIN_REIMAGE, m.name, NULL, T0, &again, err, sizeof(err)), 0);
        int64_t start = (int64_t)(now_monotonic_usec() / 1000);
        CHECK(registry_reimage_power(F.reg, &again, T0, what, sizeof(what)) < 0);
        CHECK((int64_t)(now_monotonic_usec() / 1000) - start <= REGISTRY_REIMAGE_POWER_MS + 500);
        CHECK(strstr(what, "power status through qemu failed") != NULL);
        CHECK(strstr(what, "525400000e03") != NULL);
        CHECK(str_has_prefix(again.reason, "waiting for an operator to power-cycle m-525400000e03 (power status"));
        teardown();
}

/* A database of the schema before machines had their own image opens, migrates and keeps its rows. */
TEST(store_migrates_machines_without_an_image_column)
{
        struct store_machine m = { .name = "old-1", .mac = { 2, 0, 0, 0, 0, 1 }, .state = MS_READY, .progress = -1 };
        struct store *s;
        sqlite3 *db;
        char path[4200];

        snprintf(path, sizeof(path), "%s/old.db", test_tmpdir());
        CHECK_EQ(store_open(path, &s), 0);
        CHECK_EQ(store_machine_commit(s, &(struct store_machine_txn){ .m = &m }), 0);
        store_close(s);
        CHECK_EQ(sqlite3_open(path, &db), SQLITE_OK);
        CHECK_EQ(sqlite3_exec(db, "ALTER TABLE machines DROP COLUMN image; ALTER TABLE machines DROP COLUMN"
                              " image_version; PRAGMA user_version = 2", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
        CHECK_EQ(store_open(path, &s), 0);
        CHECK_EQ(store_machine_get(s, STORE_BY_NAME, "old-1", &m), 0);
        CHECK_EQ(m.state, MS_READY);
        CHECK_STREQ(m.image, "");
        CHECK_EQ(m.image_version, 0);
        str_copy(m.image, sizeof(m.image), "test-uefi");
        m.image_version = 1ULL << 52;
        CHECK_EQ(store_machine_commit(s, &(struct store_machine_txn){ .m = &m }), 0);
        CHECK_EQ(store_machine_get(s, STORE_BY_NAME, "old-1", &m), 0);
        CHECK_STREQ(m.image, "test-uefi");
        CHECK_EQ(m.image_version, 1ULL << 52);
        store_close(s);
}
