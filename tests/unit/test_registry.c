/* SPDX-License-Identifier: Apache-2.0 */
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>

#include "metald/registry.h"
#include "metald/util.h"
#include "test.h"

static const int64_t T0 = 1800000000;

struct fx {
        struct config cfg;
        struct profile profiles[2];
        struct registry *reg;
        char db[512];
};

static struct fx F;

static int setup(enum profile_approval approval)
{
        memset(&F, 0, sizeof(F));
        F.cfg.lifecycle = (struct lifecycle_config){
                .timeouts = { .enroll_s = 1800, .agent_s = 300, .imaging_s = 7200, .imaged_s = 1800, .join_s = 1800 },
                .nonce_ttl_s = 1800, .heartbeat_s = 10,
        };
        str_copy(F.profiles[0].name, sizeof(F.profiles[0].name), "qemu");
        str_copy(F.profiles[0].match.vendor, sizeof(F.profiles[0].match.vendor), "QEMU");
        str_copy(F.profiles[0].image, sizeof(F.profiles[0].image), "flatcar");
        F.profiles[0].approval = approval;
        F.cfg.profiles = F.profiles;
        F.cfg.n_profiles = 1;
        snprintf(F.db, sizeof(F.db), "%s/r.db", test_tmpdir());
        return registry_open(F.db, &F.cfg, &F.reg);
}

static void teardown(void)
{
        registry_close(F.reg);
        F.reg = NULL;
}

static struct boot_contact contact(uint8_t last)
{
        struct boot_contact c = { .mac = { 0x52, 0x54, 0, 0, 0, last }, .ip = 0x0a000064 };

        snprintf(c.uuid, sizeof(c.uuid), "8c1b5a2e-4c1e-4d5a-9f00-0000000000%02x", last);
        return c;
}

static struct agent_identity ident(uint8_t last)
{
        struct agent_identity id = { .serial = "S1", .vendor = "QEMU", .product = "Standard PC" };

        snprintf(id.uuid, sizeof(id.uuid), "8c1b5a2e-4c1e-4d5a-9f00-0000000000%02x", last);
        return id;
}

/* Boots machine `last` and registers its agent; the reply lands in *rep. */
static int enroll(uint8_t last, int64_t now, struct agent_reply *rep)
{
        struct boot_contact c = contact(last);
        struct agent_identity id = ident(last);
        struct registry_boot b;

        if (registry_boot(F.reg, &c, now, &b) < 0 || b.kind != BOOT_KIND_ENROLL)
                return -1;
        registry_register(F.reg, b.nonce, c.mac, &id, "{\"cpu\":{\"count\":2}}", c.ip, now, rep);
        return rep->status == 200 ? 0 : -1;
}

TEST(registry_first_contact_discovers_and_mints_nonce)
{
        struct boot_contact c = contact(1);
        struct registry_boot b1, b2;

        CHECK_EQ(setup(PROFILE_APPROVE_MANUAL), 0);
        CHECK_EQ(registry_boot(F.reg, &c, T0, &b1), 0);
        CHECK_EQ(b1.kind, BOOT_KIND_ENROLL);
        CHECK_EQ(b1.m.state, MS_DISCOVERED);
        CHECK_STREQ(b1.m.name, "m-525400000001");
        CHECK(secret_is_wellformed(b1.nonce, SECRET_NONCE_BYTES));
        CHECK_EQ(b1.m.deadline, T0 + 1800);
        CHECK_EQ(registry_boot(F.reg, &c, T0 + 5, &b2), 0);
        CHECK(strcmp(b1.nonce, b2.nonce) != 0);
        CHECK_EQ(b2.m.id, b1.m.id);
        teardown();
}

TEST(registry_nonce_is_single_use_and_bound_to_its_machine)
{
        struct boot_contact c = contact(2), other = contact(3);
        struct agent_identity id = ident(2);
        struct registry_boot b, b_old;
        struct agent_reply rep;
        int64_t mid;

        CHECK_EQ(setup(PROFILE_APPROVE_MANUAL), 0);
        CHECK_EQ(registry_boot(F.reg, &c, T0, &b_old), 0);
        CHECK_EQ(registry_boot(F.reg, &c, T0, &b), 0);
        /* the older nonce died with the newer boot */
        registry_register(F.reg, b_old.nonce, c.mac, &id, "{}", c.ip, T0, &rep);
        CHECK_EQ(rep.status, 401);
        /* another machine's MAC */
        CHECK_EQ(registry_boot(F.reg, &other, T0, &b_old), 0);
        registry_register(F.reg, b.nonce, other.mac, &id, "{}", c.ip, T0, &rep);
        CHECK_EQ(rep.status, 401);
        /* malformed */
        registry_register(F.reg, "short", c.mac, &id, "{}", c.ip, T0, &rep);
        CHECK_EQ(rep.status, 401);
        registry_register(F.reg, b.nonce, c.mac, &id, "{}", c.ip, T0 + 1, &rep);
        CHECK_EQ(rep.status, 200);
        CHECK_EQ(rep.m.state, MS_REGISTERED);
        CHECK_STREQ(rep.m.profile, "qemu");
        CHECK_EQ(rep.instruction.action, INS_WAIT);
        CHECK(strstr(rep.instruction.reason, "approve") != NULL);
        CHECK(secret_is_wellformed(rep.session, SECRET_SESSION_BYTES));
        CHECK_EQ(registry_authenticate(F.reg, rep.session, &mid), 0);
        CHECK_EQ(mid, rep.m.id);
        /* replayed nonce */
        registry_register(F.reg, b.nonce, c.mac, &id, "{}", c.ip, T0 + 2, &rep);
        CHECK_EQ(rep.status, 401);
        teardown();
}

TEST(registry_nonce_expires)
{
        struct boot_contact c = contact(4);
        struct agent_identity id = ident(4);
        struct registry_boot b;
        struct agent_reply rep;

        CHECK_EQ(setup(PROFILE_APPROVE_MANUAL), 0);
        CHECK_EQ(registry_boot(F.reg, &c, T0, &b), 0);
        registry_register(F.reg, b.nonce, c.mac, &id, "{}", c.ip, T0 + 1801, &rep);
        CHECK_EQ(rep.status, 401);
        CHECK(strstr(rep.error, "expired") != NULL);
        teardown();
}

TEST(registry_session_ends_with_a_new_boot)
{
        struct boot_contact c = contact(5);
        struct registry_boot b;
        struct agent_reply rep;
        int64_t mid;
        char session[SECRET_MAX_TEXT];

        CHECK_EQ(setup(PROFILE_APPROVE_MANUAL), 0);
        CHECK_EQ(enroll(5, T0, &rep), 0);
        str_copy(session, sizeof(session), rep.session);
        CHECK_EQ(registry_authenticate(F.reg, session, &mid), 0);
        CHECK_EQ(registry_authenticate(F.reg, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &mid), -EACCES);
        CHECK_EQ(registry_boot(F.reg, &c, T0 + 60, &b), 0);
        CHECK_EQ(registry_authenticate(F.reg, session, &mid), -EACCES);
        /* re-registering (a new boot) opens a new session and stays registered */
        struct agent_identity id = ident(5);
        registry_register(F.reg, b.nonce, c.mac, &id, "{}", c.ip, T0 + 61, &rep);
        CHECK_EQ(rep.status, 200);
        CHECK_EQ(rep.m.state, MS_REGISTERED);
        CHECK_EQ(registry_authenticate(F.reg, rep.session, &mid), 0);
        teardown();
}

TEST(registry_identity_conflict_refused_and_recorded)
{
        struct boot_contact c = contact(6);
        struct agent_identity id = ident(6);
        struct registry_boot b;
        struct agent_reply rep;
        struct buf out = BUF_INIT(1 << 20);

        CHECK_EQ(setup(PROFILE_APPROVE_MANUAL), 0);
        CHECK_EQ(registry_boot(F.reg, &c, T0, &b), 0);
        str_copy(id.uuid, sizeof(id.uuid), "11111111-2222-3333-4444-555555555555");
        registry_register(F.reg, b.nonce, c.mac, &id, "{}", c.ip, T0, &rep);
        CHECK_EQ(rep.status, 409);
        CHECK_EQ(registry_show_json(F.reg, "m-525400000006", &out), 0);
        CHECK(strstr(out.data, "identity-conflict") != NULL);
        CHECK(strstr(out.data, "\"state\":\"discovered\"") != NULL);
        buf_free(&out);
        teardown();
}

TEST(registry_manual_approval_and_operator_ops)
{
        struct store_machine m;
        struct agent_reply rep;
        char err[256];

        CHECK_EQ(setup(PROFILE_APPROVE_MANUAL), 0);
        CHECK_EQ(enroll(7, T0, &rep), 0);
        CHECK_EQ(registry_admin(F.reg, ADMIN_APPROVE, "52:54:00:00:00:07", NULL, T0, &m, err, sizeof(err)), 0);
        CHECK_EQ(m.state, MS_APPROVED);
        CHECK_EQ(registry_admin(F.reg, ADMIN_APPROVE, "m-525400000007", NULL, T0, &m, err, sizeof(err)), -EPERM);
        CHECK(strstr(err, "cannot approve m-525400000007: it is approved") != NULL);
        CHECK_EQ(registry_admin(F.reg, ADMIN_REIMAGE, "m-525400000007", NULL, T0, &m, err, sizeof(err)), -EPERM);
        CHECK_EQ(registry_admin(F.reg, ADMIN_RETIRE, "m-525400000007", NULL, T0, &m, err, sizeof(err)), 0);
        CHECK_EQ(m.state, MS_RETIRED);
        struct boot_contact c = contact(7);
        struct registry_boot b;
        CHECK_EQ(registry_boot(F.reg, &c, T0, &b), 0);
        CHECK_EQ(b.kind, BOOT_KIND_RETIRED);
        CHECK_EQ(registry_admin(F.reg, ADMIN_FORGET, "m-525400000007", NULL, T0, &m, err, sizeof(err)), 0);
        CHECK_EQ(registry_admin(F.reg, ADMIN_FORGET, "m-525400000007", NULL, T0, &m, err, sizeof(err)), -ENOENT);
        CHECK_EQ(registry_boot(F.reg, &c, T0, &b), 0);
        CHECK_EQ(b.m.state, MS_DISCOVERED);
        teardown();
}

TEST(registry_auto_profile_needs_no_approval)
{
        struct agent_reply rep;

        CHECK_EQ(setup(PROFILE_APPROVE_AUTO), 0);
        CHECK_EQ(enroll(8, T0, &rep), 0);
        CHECK_EQ(rep.m.state, MS_APPROVED);
        CHECK(strstr(rep.instruction.reason, "flatcar") != NULL);
        teardown();
}

TEST(registry_no_profile_waits_registered)
{
        struct agent_reply rep;

        CHECK_EQ(setup(PROFILE_APPROVE_AUTO), 0);
        F.cfg.n_profiles = 0;
        CHECK_EQ(enroll(9, T0, &rep), 0);
        CHECK_EQ(rep.m.state, MS_REGISTERED);
        CHECK_STREQ(rep.instruction.reason, "no profile matches this machine");
        teardown();
}

TEST(registry_deadlines_fail_machines_and_heartbeats_defer_them)
{
        struct agent_reply rep, hb;
        struct store_machine m;

        CHECK_EQ(setup(PROFILE_APPROVE_MANUAL), 0);
        CHECK_EQ(enroll(10, T0, &rep), 0);
        CHECK_EQ(rep.m.deadline, T0 + 300);
        registry_heartbeat(F.reg, rep.m.id, -1, "idle", 0, T0 + 200, &hb);
        CHECK_EQ(hb.status, 200);
        CHECK_EQ(registry_sweep(F.reg, T0 + 301), 0);
        CHECK_EQ(registry_sweep(F.reg, T0 + 501), 1);
        CHECK_EQ(registry_find(F.reg, "m-52540000000a", &m), 0);
        CHECK_EQ(m.state, MS_FAILED);
        CHECK_STREQ(m.reason, "agent stopped responding");
        /* and a discovered machine that never registers */
        struct boot_contact c = contact(11);
        struct registry_boot b;
        CHECK_EQ(registry_boot(F.reg, &c, T0, &b), 0);
        CHECK_EQ(registry_sweep(F.reg, T0 + 1801), 1);
        CHECK_EQ(registry_find(F.reg, "m-52540000000b", &m), 0);
        CHECK_EQ(m.state, MS_FAILED);
        /* a failed machine that boots and registers again retries */
        CHECK_EQ(enroll(11, T0 + 2000, &rep), 0);
        CHECK_EQ(rep.m.state, MS_REGISTERED);
        CHECK_STREQ(rep.m.reason, "");
        teardown();
}

TEST(registry_agent_events_follow_the_table)
{
        struct agent_reply rep, ev;
        struct store_machine m;
        char err[256];

        CHECK_EQ(setup(PROFILE_APPROVE_AUTO), 0);
        str_copy(F.profiles[0].cluster, sizeof(F.profiles[0].cluster), "lab");     /* imaged waits to join */
        CHECK_EQ(enroll(12, T0, &rep), 0);
        registry_agent_event(F.reg, rep.m.id, "install-succeeded", "", -1, T0, &ev);
        CHECK_EQ(ev.status, 409);
        registry_agent_event(F.reg, rep.m.id, "install-progress", "", 10, T0, &ev);
        CHECK_EQ(ev.status, 409);
        registry_agent_event(F.reg, rep.m.id, "install-started", "/dev/sda", 0, T0, &ev);
        CHECK_EQ(ev.status, 200);
        CHECK_EQ(ev.m.state, MS_IMAGING);
        registry_agent_event(F.reg, rep.m.id, "install-progress", "half", 50, T0, &ev);
        CHECK_EQ(ev.status, 200);
        CHECK_EQ(ev.m.progress, 50);
        registry_agent_event(F.reg, rep.m.id, "install-succeeded", "verified", 100, T0, &ev);
        CHECK_EQ(ev.m.state, MS_IMAGED);
        CHECK_EQ(ev.instruction.action, INS_REBOOT);
        /* imaged is transient: a restart fails it cleanly */
        CHECK_EQ(registry_recover(F.reg, T0 + 5), 1);
        CHECK_EQ(registry_find(F.reg, "m-52540000000c", &m), 0);
        CHECK_EQ(m.state, MS_FAILED);
        CHECK_EQ(registry_admin(F.reg, ADMIN_REIMAGE, "m-52540000000c", NULL, T0, &m, err, sizeof(err)), 0);
        CHECK_EQ(m.state, MS_APPROVED);
        teardown();
}

TEST(registry_labels_choose_the_profile)
{
        struct store_machine m;
        struct agent_reply rep;
        char err[256];

        CHECK_EQ(setup(PROFILE_APPROVE_MANUAL), 0);
        F.profiles[1] = F.profiles[0];
        str_copy(F.profiles[1].name, sizeof(F.profiles[1].name), "databases");
        str_copy(F.profiles[1].match.labels[0].key, PROFILE_MAX_WORD + 1, "role");
        str_copy(F.profiles[1].match.labels[0].value, PROFILE_MAX_WORD + 1, "db");
        F.profiles[1].match.n_labels = 1;
        F.cfg.n_profiles = 2;
        CHECK_EQ(enroll(13, T0, &rep), 0);
        CHECK_STREQ(rep.m.profile, "qemu");
        CHECK_EQ(registry_admin(F.reg, ADMIN_LABEL, "m-52540000000d", "role=db", T0, &m, err, sizeof(err)), 0);
        CHECK_STREQ(m.profile, "databases");
        CHECK_EQ(registry_admin(F.reg, ADMIN_LABEL, "m-52540000000d", "role", T0, &m, err, sizeof(err)), -EINVAL);
        teardown();
}

TEST(registry_status_json_shape)
{
        struct agent_reply rep;
        struct buf out = BUF_INIT(1 << 20);
        json_object *o, *v;

        CHECK_EQ(setup(PROFILE_APPROVE_MANUAL), 0);
        CHECK_EQ(enroll(14, T0, &rep), 0);
        CHECK_EQ(registry_status_json(F.reg, T0, &out), 0);
        o = json_tokener_parse(out.data);
        CHECK(o != NULL);
        CHECK(json_object_object_get_ex(o, "counts", &v));
        CHECK_EQ(json_object_get_int(json_object_object_get(v, "registered")), 1);
        CHECK(json_object_object_get_ex(o, "machines", &v));
        CHECK_EQ(json_object_array_length(v), 1);
        CHECK_STREQ(json_object_get_string(json_object_object_get(json_object_array_get_idx(v, 0), "mac")),
                    "52:54:00:00:00:0e");
        json_object_put(o);
        buf_reset(&out);
        CHECK_EQ(registry_show_json(F.reg, "m-52540000000e", &out), 0);
        CHECK(strstr(out.data, "\"count\":2") != NULL);
        CHECK(strstr(out.data, "\"event\":\"register\"") != NULL);
        buf_free(&out);
        teardown();
}

struct racer {
        struct registry *reg;
        const char *who;
        enum admin_op op;
        int result;
};

static void *race(void *arg)
{
        struct racer *rc = arg;
        struct store_machine m;
        char err[256];

        rc->result = registry_admin(rc->reg, rc->op, rc->who, NULL, T0, &m, err, sizeof(err));
        return NULL;
}

/* Two registries on one database (two writers): of two concurrent approvals exactly one wins. */
TEST(registry_concurrent_writers_one_wins)
{
        struct registry *second;
        struct agent_reply rep;

        CHECK_EQ(setup(PROFILE_APPROVE_MANUAL), 0);
        CHECK_EQ(registry_open(F.db, &F.cfg, &second), 0);
        for (uint8_t i = 20; i < 40; i++) {
                char name[STORE_MAX_NAME + 1];
                struct racer a = { F.reg, name, ADMIN_APPROVE, 0 }, b = { second, name, ADMIN_APPROVE, 0 };
                pthread_t ta, tb;

                CHECK_EQ(enroll(i, T0, &rep), 0);
                snprintf(name, sizeof(name), "%s", rep.m.name);
                pthread_create(&ta, NULL, race, &a);
                pthread_create(&tb, NULL, race, &b);
                pthread_join(ta, NULL);
                pthread_join(tb, NULL);
                CHECK((a.result == 0) != (b.result == 0));
                CHECK(a.result == -EPERM || b.result == -EPERM);
        }
        registry_close(second);
        teardown();
}

/* An approval policy that did not get committed (a crash, or a profile that became auto) is applied later. */
TEST(registry_auto_approval_is_replayed)
{
        struct agent_reply rep, hb;
        struct store_machine m;

        CHECK_EQ(setup(PROFILE_APPROVE_MANUAL), 0);
        CHECK_EQ(enroll(40, T0, &rep), 0);
        CHECK_EQ(rep.m.state, MS_REGISTERED);
        F.profiles[0].approval = PROFILE_APPROVE_AUTO;
        registry_heartbeat(F.reg, rep.m.id, -1, "", 0, T0 + 5, &hb);
        CHECK_EQ(hb.status, 200);
        CHECK_EQ(hb.m.state, MS_APPROVED);
        CHECK_EQ(enroll(41, T0, &rep), 0);
        CHECK_EQ(rep.m.state, MS_APPROVED);
        F.profiles[0].approval = PROFILE_APPROVE_MANUAL;
        CHECK_EQ(enroll(42, T0, &rep), 0);
        CHECK_EQ(rep.m.state, MS_REGISTERED);
        F.profiles[0].approval = PROFILE_APPROVE_AUTO;
        CHECK_EQ(registry_recover(F.reg, T0 + 10), 0);
        CHECK_EQ(registry_find(F.reg, "m-52540000002a", &m), 0);
        CHECK_EQ(m.state, MS_APPROVED);
        teardown();
}

static const char *show_field(const char *who, const char *key, char *buf, size_t cap)
{
        struct buf out = BUF_INIT(1 << 20);
        json_object *o, *v;

        buf[0] = '\0';
        if (registry_show_json(F.reg, who, &out) == 0 && (o = json_tokener_parse(out.data))) {
                if (json_object_object_get_ex(o, key, &v))
                        str_copy(buf, cap, json_object_get_string(v));
                json_object_put(o);
        }
        buf_free(&out);
        return buf;
}

/* All zero and all FF are no identity: stored as none, never a conflict, never matched by a profile. */
TEST(registry_uuid_no_identity)
{
        static const char nil[] = "00000000-0000-0000-0000-000000000000";
        static const char real[] = "8c1b5a2e-4c1e-4d5a-9f00-000000000051";
        struct boot_contact c = contact(50), c2 = contact(51);
        struct agent_identity id = ident(50), id2 = ident(51);
        struct registry_boot b;
        struct agent_reply rep;
        char v[128];

        CHECK_EQ(setup(PROFILE_APPROVE_MANUAL), 0);
        F.profiles[1] = F.profiles[0];
        str_copy(F.profiles[1].name, sizeof(F.profiles[1].name), "any-uuid");
        str_copy(F.profiles[1].match.uuid[0], sizeof(F.profiles[1].match.uuid[0]), "*");
        F.profiles[1].match.n_uuid = 1;
        F.cfg.n_profiles = 2;

        str_copy(c.uuid, sizeof(c.uuid), nil);
        CHECK_EQ(registry_boot(F.reg, &c, T0, &b), 0);
        CHECK_STREQ(b.m.uuid, "");
        str_copy(id.uuid, sizeof(id.uuid), "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF");
        registry_register(F.reg, b.nonce, c.mac, &id, "{}", c.ip, T0, &rep);
        CHECK_EQ(rep.status, 200);
        CHECK_STREQ(rep.m.uuid, "");
        CHECK_STREQ(rep.m.profile, "qemu");
        CHECK_STREQ(show_field("m-525400000032", "uuid", v, sizeof(v)), "");

        /* a machine known by its UUID keeps it; an agent or firmware reporting none is no conflict */
        str_copy(c2.uuid, sizeof(c2.uuid), real);
        CHECK_EQ(registry_boot(F.reg, &c2, T0, &b), 0);
        str_copy(id2.uuid, sizeof(id2.uuid), nil);
        registry_register(F.reg, b.nonce, c2.mac, &id2, "{}", c2.ip, T0, &rep);
        CHECK_EQ(rep.status, 200);
        CHECK_STREQ(rep.m.uuid, real);
        CHECK_STREQ(rep.m.profile, "any-uuid");
        str_copy(c2.uuid, sizeof(c2.uuid), "ffffffff-ffff-ffff-ffff-ffffffffffff");
        CHECK_EQ(registry_boot(F.reg, &c2, T0 + 1, &b), 0);
        CHECK_STREQ(b.m.uuid, real);
        /* malformed text from a caller is no identity either */
        str_copy(c.uuid, sizeof(c.uuid), "{00000000-0000-0000-0000-0000000000");
        CHECK_EQ(registry_boot(F.reg, &c, T0 + 2, &b), 0);
        CHECK_STREQ(b.m.uuid, "");
        teardown();
}

/* `machine show` renders the kernel command line of the next enrollment boot, the nonce masked. */
TEST(registry_show_enroll_cmdline)
{
        struct boot_contact c = contact(60);
        struct registry_boot b;
        struct agent_reply rep, ev;
        char v[1024], url[BOOT_MAX_URL + 8];

        CHECK_EQ(setup(PROFILE_APPROVE_AUTO), 0);
        str_copy(F.cfg.boot.enroll.kernel, sizeof(F.cfg.boot.enroll.kernel), "vmlinuz");
        str_copy(F.cfg.boot.enroll.cmdline, sizeof(F.cfg.boot.enroll.cmdline), "console=ttyS0,115200n8");
        CHECK_EQ(registry_boot(F.reg, &c, T0, &b), 0);
        /* no boot scripts served (HTTP not started): none */
        CHECK_STREQ(show_field("m-52540000003c", "enroll_cmdline", v, sizeof(v)), "");
        memset(url, 'a', sizeof(url) - 1);
        url[sizeof(url) - 1] = '\0';
        CHECK_EQ(registry_set_enroll_boot(F.reg, url, "initrd.img"), -ENAMETOOLONG);
        CHECK_EQ(registry_set_enroll_boot(F.reg, "http://10.0.0.1:8080", "enroll/initrd.img"), 0);
        CHECK_STREQ(show_field("m-52540000003c", "enroll_cmdline", v, sizeof(v)),
                    "console=ttyS0,115200n8 metald.url=http://10.0.0.1:8080 metald.mac=52:54:00:00:00:3c "
                    "metald.nonce=<hidden>");
        CHECK_STREQ(show_field("m-52540000003c", "enroll_cmdline_efi", v, sizeof(v)),
                    "initrd=initrd.img console=ttyS0,115200n8 metald.url=http://10.0.0.1:8080 "
                    "metald.mac=52:54:00:00:00:3c metald.nonce=<hidden>");
        struct buf out = BUF_INIT(1 << 20);
        CHECK_EQ(registry_show_json(F.reg, "m-52540000003c", &out), 0);
        CHECK(strstr(out.data, b.nonce) == NULL);
        buf_free(&out);
        /* a machine that boots its installed system gets no enrollment command line */
        CHECK_EQ(enroll(60, T0, &rep), 0);
        registry_agent_event(F.reg, rep.m.id, "install-started", "", 0, T0, &ev);
        registry_agent_event(F.reg, rep.m.id, "install-succeeded", "", 100, T0, &ev);
        CHECK_EQ(ev.m.state, MS_READY);         /* the profile names no cluster: ready at once */
        CHECK_STREQ(show_field("m-52540000003c", "enroll_cmdline", v, sizeof(v)), "");
        CHECK_STREQ(show_field("m-52540000003c", "enroll_cmdline_efi", v, sizeof(v)), "");
        teardown();
}
