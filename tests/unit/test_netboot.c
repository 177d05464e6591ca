/* SPDX-License-Identifier: Apache-2.0 */
/* A profile's netboot: the configuration, the script, what an approved machine boots and is told, the views. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>

#include "../fuzz/ipxe_model.h"
#include "metald/boot_script.h"
#include "metald/config.h"
#include "metald/image.h"
#include "metald/registry.h"
#include "metald/util.h"
#include "test.h"

static const int64_t T0 = 1800000000;

#define RESCUE_ENTRY                                                                       \
        "  - name: rescue\n"                                                               \
        "    netboot:\n"                                                                   \
        "      kernel: rescue/vmlinuz\n"                                                   \
        "      initrd: rescue/initrd.img\n"                                                \
        "      cmdline: console=ttyS0 rescue=1\n"
#define RESCUE_YAML "profiles:\n" RESCUE_ENTRY

TEST(config_profile_netboot)
{
        struct config *c = NULL;
        char err[512];

        CHECK_EQ(config_load_string(RESCUE_YAML, "metald.yaml", &c, err, sizeof(err)), 0);
        CHECK_STREQ(c->profiles[0].netboot.kernel, "rescue/vmlinuz");
        CHECK_STREQ(c->profiles[0].netboot.initrd, "rescue/initrd.img");
        CHECK_STREQ(c->profiles[0].netboot.cmdline, "console=ttyS0 rescue=1");
        CHECK_STREQ(c->profiles[0].image, "");
        config_free(c);
        /* a memory test has no initrd and needs no command line */
        CHECK_EQ(config_load_string("profiles:\n  - name: memtest\n    netboot: { kernel: memtest86+.bin }\n",
                                    "metald.yaml", &c, err, sizeof(err)), 0);
        CHECK_STREQ(c->profiles[0].netboot.kernel, "memtest86+.bin");
        CHECK_STREQ(c->profiles[0].netboot.initrd, "");
        config_free(c);
        /* signed images may be required while no profile netboots */
        CHECK_EQ(config_load_string("profiles:\n  - name: p\n    image: debian\n"
                                    "images: { require_signed: true, trusted_keys: [] }\n",
                                    "metald.yaml", &c, err, sizeof(err)), -EINVAL);
        CHECK(strstr(err, "needs images.trusted_keys") != NULL);
        CHECK_EQ(config_load_string("profiles:\n  - name: p\n    image: debian\n", "metald.yaml", &c, err,
                                    sizeof(err)), 0);
        CHECK(!*c->profiles[0].netboot.kernel);
        config_free(c);
}

TEST(config_profile_netboot_refused)
{
        static const struct {
                const char *profile, *says;
        } bad[] = {
                { "    image: debian\n    netboot: { kernel: k }\n",
                  "metald.yaml:4: profiles[0].netboot: image and netboot exclude each other" },
                { "    netboot: { kernel: k }\n    image: debian\n",
                  "profiles[0].netboot: image and netboot exclude each other" },
                { "    netboot: { initrd: i }\n", "metald.yaml:3: profiles[0].netboot.kernel: is required" },
                { "    netboot: { kernel: \"\" }\n", "profiles[0].netboot.kernel: '' is not a relative path" },
                { "    netboot: { kernel: /boot/vmlinuz }\n",
                  "profiles[0].netboot.kernel: '/boot/vmlinuz' is not a relative path" },
                { "    netboot: { kernel: ../vmlinuz }\n", "profiles[0].netboot.kernel: '../vmlinuz'" },
                { "    netboot: { kernel: \"a b\" }\n", "profiles[0].netboot.kernel: 'a b'" },
                { "    netboot: { kernel: \"k${x}\" }\n", "profiles[0].netboot.kernel" },
                { "    netboot: { kernel: k, initrd: \"i;x\" }\n", "profiles[0].netboot.initrd: 'i;x'" },
                { "    netboot: { kernel: k, initrd: dir/ }\n", "profiles[0].netboot.initrd: 'dir/'" },
                { "    netboot: { kernel: k, cmdline: \"a ${net0/ip}\" }\n",
                  "profiles[0].netboot.cmdline: '$' and '\\' are not allowed" },
                { "    netboot: { kernel: k, cmdline: \"a || reboot\" }\n",
                  "profiles[0].netboot.cmdline: a word '||', '&&', ';' or one starting with '#'" },
                { "    netboot: { kernel: k, cmdline: \"a #b\" }\n", "profiles[0].netboot.cmdline: a word" },
                { "    netboot: { kernel: k, cmdline: \"a\\tb\" }\n",
                  "profiles[0].netboot.cmdline: only printable ASCII" },
                { "    netboot: { kernel: k, nonce: x }\n", "profiles[0].netboot.nonce: unknown key" },
                { "    netboot: k\n", "profiles[0].netboot: expected a mapping" },
                { "    netboot: { kernel: k }\n    image_version: 2\n", "profiles[0].image_version: needs an image" },
        };
        struct config *c = NULL;
        char yaml[1024], err[512];

        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                snprintf(yaml, sizeof(yaml), "profiles:\n  - name: p\n%s", bad[i].profile);
                err[0] = '\0';
                CHECK_EQ(config_load_string(yaml, "metald.yaml", &c, err, sizeof(err)), -EINVAL);
                if (!strstr(err, bad[i].says))
                        fprintf(stderr, "  case %zu: %s\n", i, err);
                CHECK(strstr(err, bad[i].says) != NULL);
                CHECK(!strchr(err, '\n'));
        }
}

TEST(config_require_signed_refuses_netboot)
{
        char prefix[256], key[300], yaml[2048], err[512], id[MANIFEST_KEY_ID_HEX + 1], why[256];
        struct config *c = NULL;

        /* require_signed needs a trusted key */
        snprintf(prefix, sizeof(prefix), "%s/site", test_tmpdir());
        CHECK_EQ(image_keygen(prefix, id, why, sizeof(why)), 0);
        snprintf(key, sizeof(key), "%s.pub", prefix);
        snprintf(yaml, sizeof(yaml), "profiles:\n  - name: worker\n    image: debian\n"
                 "images:\n  trusted_keys: [%s]\n  require_signed: true\n", key);
        CHECK_EQ(config_load_string(yaml, "metald.yaml", &c, err, sizeof(err)), 0);
        config_free(c);
        snprintf(yaml, sizeof(yaml), "profiles:\n  - name: worker\n    match: { vendor: Dell }\n    image: debian\n" RESCUE_ENTRY
                 "images:\n  trusted_keys: [%s]\n  require_signed: true\n", key);
        CHECK_EQ(config_load_string(yaml, "metald.yaml", &c, err, sizeof(err)), -EINVAL);
        CHECK_STREQ(err, "metald.yaml:7: profile rescue: netboot boots unsigned files, which "
                         "images.require_signed refuses");
        /* false: allowed */
        snprintf(yaml, sizeof(yaml), RESCUE_YAML "images:\n  trusted_keys: [%s]\n  require_signed: false\n", key);
        CHECK_EQ(config_load_string(yaml, "metald.yaml", &c, err, sizeof(err)), 0);
        config_free(c);
}

/* --- the script --- */

static struct boot_view view(void)
{
        return (struct boot_view){
                .base_url = "http://10.0.0.1:8080",
                .script_url = "http://10.0.0.1:8080/boot.ipxe",
                .kernel = "enroll/vmlinuz", .initrd = "enroll/initrd.img", .cmdline = "quiet",
                .retry_delay_s = 30,
                .nonce = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        };
}

static const struct boot_netboot rescue = {
        .profile = "rescue", .kernel = "rescue/vmlinuz", .initrd = "rescue/initrd.img",
        .cmdline = "console=ttyS0 rescue=1",
};

static int render(const struct boot_netboot *nb, const char *platform, struct buf *out)
{
        struct boot_view v = view();
        struct boot_identity id = { .mac = { 0x52, 0x54, 0, 0x12, 0x34, 0x56 }, .arch = "x86_64" };

        str_copy(id.platform, sizeof(id.platform), platform);
        buf_reset(out);
        return boot_script_netboot(&v, &id, "m-525400123456", nb, out);
}

TEST(boot_script_netboot_bios_and_uefi)
{
        static const char tail[] = "boot || goto failed\n"
                                   ":failed\n"
                                   "echo metald: the netboot did not boot; trying again in 30 seconds\n"
                                   "sleep 30\n"
                                   "chain --replace http://10.0.0.1:8080/boot.ipxe || goto failed\n";
        struct boot_netboot memtest = { .profile = "memtest", .kernel = "memtest86+.bin", .initrd = "", .cmdline = "" };
        struct buf b = BUF_INIT(BOOT_MAX_SCRIPT_BYTES);
        char expect[2048];

        CHECK_EQ(render(&rescue, "pcbios", &b), 0);
        snprintf(expect, sizeof(expect), "#!ipxe\n"
                 "echo metald: m-525400123456 boots netboot profile rescue (unsigned)\n"
                 "kernel http://10.0.0.1:8080/rescue/vmlinuz console=ttyS0 rescue=1 || goto failed\n"
                 "initrd http://10.0.0.1:8080/rescue/initrd.img || goto failed\n%s", tail);
        CHECK_STREQ(b.data, expect);
        /* UEFI: the EFI stub finds its initrd by name, as for enrollment */
        CHECK_EQ(render(&rescue, "efi", &b), 0);
        snprintf(expect, sizeof(expect), "#!ipxe\n"
                 "echo metald: m-525400123456 boots netboot profile rescue (unsigned)\n"
                 "kernel http://10.0.0.1:8080/rescue/vmlinuz initrd=initrd.img console=ttyS0 rescue=1 || goto failed\n"
                 "initrd http://10.0.0.1:8080/rescue/initrd.img || goto failed\n%s", tail);
        CHECK_STREQ(b.data, expect);
        /* not the enrollment environment: nothing of metald's on the command line */
        CHECK(!strstr(b.data, "metald.") && !strstr(b.data, "AAAA"));
        /* no initrd: no initrd line, no initrd= */
        CHECK_EQ(render(&memtest, "efi", &b), 0);
        snprintf(expect, sizeof(expect), "#!ipxe\n"
                 "echo metald: m-525400123456 boots netboot profile memtest (unsigned)\n"
                 "kernel http://10.0.0.1:8080/memtest86+.bin || goto failed\n%s", tail);
        CHECK_STREQ(b.data, expect);
        buf_free(&b);
}

/* Values the configuration refuses still cannot change the script's shape when they reach the renderer. */
TEST(boot_script_netboot_hostile_values)
{
        static const char *const hostile[] = {
                "${netX/ip}", "${", "}", "$", "a b", " ", "\n", "\r\n", "x\nreboot", "#", "#x", "||", "&&", ";",
                "\\", "x\\", "\"", "\xff\xfe", "%00", "a\tb", "\v\f", "${a${b}c}", "$${}{x}",
        };
        struct buf good = BUF_INIT(BOOT_MAX_SCRIPT_BYTES), bad = BUF_INIT(BOOT_MAX_SCRIPT_BYTES);
        struct buf skel_good = BUF_INIT(1 << 20), skel_bad = BUF_INIT(1 << 20);
        size_t exp_good, exp_bad;
        int failures = 0;

        for (int efi = 0; efi < 2; efi++) {
                CHECK_EQ(render(&rescue, efi ? "efi" : "pcbios", &good), 0);
                for (size_t i = 0; i < ARRAY_SIZE(hostile); i++) {
                        for (int field = 0; field < 4; field++) {
                                struct boot_netboot nb = rescue;
                                char value[64];

                                snprintf(value, sizeof(value), "%s%s", field == 3 ? "" : "x", hostile[i]);
                                if (field == 0)
                                        nb.kernel = value;
                                else if (field == 1)
                                        nb.initrd = value;
                                else if (field == 2)
                                        nb.profile = value;
                                else
                                        nb.cmdline = value;
                                CHECK_EQ(render(&nb, efi ? "efi" : "pcbios", &bad), 0);
                                CHECK(!memchr(bad.data, '\0', bad.len) && !strchr(bad.data, '\r'));
                                /* words may come and go in the command line and the console line, nothing else */
                                buf_reset(&skel_good);
                                buf_reset(&skel_bad);
                                CHECK_EQ(ipxe_model_skeleton(good.data, good.len, field < 2, &skel_good, &exp_good), 0);
                                CHECK_EQ(ipxe_model_skeleton(bad.data, bad.len, field < 2, &skel_bad, &exp_bad), 0);
                                CHECK_EQ(exp_bad, 0);
                                if (strcmp(skel_bad.data, skel_good.data) != 0) {
                                        fprintf(stderr, "  field %d value '%s':\n%s", field, hostile[i], bad.data);
                                        failures++;
                                }
                        }
                }
        }
        CHECK_EQ(failures, 0);
        buf_free(&good);
        buf_free(&bad);
        buf_free(&skel_good);
        buf_free(&skel_bad);
}

/* --- the policy --- */

static struct profile netboot_profile(void)
{
        struct profile p = { .name = "rescue" };

        str_copy(p.netboot.kernel, sizeof(p.netboot.kernel), "rescue/vmlinuz");
        return p;
}

TEST(policy_approved_netboot_boots_it_and_is_told_reboot)
{
        struct profile nb = netboot_profile(), img = { .name = "worker", .image = "debian" };
        struct store_machine m = { .state = MS_APPROVED };
        struct install_facts none = { .verdict = INSTALL_NONE };
        struct instruction ins;

        CHECK_EQ(machine_boot_kind_for(&m, &nb), BOOT_KIND_NETBOOT);
        CHECK(machine_netboot(&m, &nb) == &nb.netboot);
        machine_instruction(&m, &nb, NULL, &none, &ins);
        CHECK_EQ(ins.action, INS_REBOOT);
        CHECK_STREQ(ins.reason, "boot netboot profile rescue (unsigned)");
        /* a profile with an image, or none: the enrollment environment */
        CHECK_EQ(machine_boot_kind_for(&m, &img), BOOT_KIND_ENROLL);
        CHECK_EQ(machine_boot_kind_for(&m, NULL), BOOT_KIND_ENROLL);
        /* a tie gives the machine no profile */
        machine_instruction(&m, &nb, "other", &none, &ins);
        CHECK_EQ(ins.action, INS_WAIT);
        /* an image of its own, from a reimage --image, wins over the profile's netboot */
        str_copy(m.image, sizeof(m.image), "debian");
        CHECK_EQ(machine_boot_kind_for(&m, &nb), BOOT_KIND_ENROLL);
        CHECK(machine_netboot(&m, &nb) == NULL);
        machine_instruction(&m, &nb, NULL, &none, &ins);
        CHECK_EQ(ins.action, INS_WAIT);
        m.image[0] = '\0';
        /* only approved machines netboot: before approval they enroll, installed ones boot their disk */
        static const struct {
                enum machine_state s;
                enum boot_kind k;
        } states[] = {
                { MS_DISCOVERED, BOOT_KIND_ENROLL }, { MS_REGISTERED, BOOT_KIND_ENROLL },
                { MS_APPROVED, BOOT_KIND_NETBOOT }, { MS_IMAGING, BOOT_KIND_ENROLL }, { MS_READY, BOOT_KIND_LOCAL },
                { MS_FAILED, BOOT_KIND_ENROLL }, { MS_RETIRED, BOOT_KIND_RETIRED },
        };
        for (size_t i = 0; i < ARRAY_SIZE(states); i++) {
                m.state = states[i].s;
                CHECK_EQ(machine_boot_kind_for(&m, &nb), states[i].k);
        }
}

/* --- the registry --- */

struct fx {
        struct config cfg;
        struct profile profiles[1];
        struct registry *reg;
        char db[512];
};

static struct fx F;

static int setup(void)
{
        memset(&F, 0, sizeof(F));
        F.cfg.lifecycle = (struct lifecycle_config){
                .timeouts = { .enroll_s = 1800, .agent_s = 300, .imaging_s = 7200, .imaged_s = 1800, .join_s = 1800 },
                .nonce_ttl_s = 1800, .heartbeat_s = 10,
        };
        F.profiles[0] = netboot_profile();
        F.profiles[0].approval = PROFILE_APPROVE_MANUAL;
        str_copy(F.profiles[0].netboot.cmdline, sizeof(F.profiles[0].netboot.cmdline), "console=ttyS0");
        F.cfg.profiles = F.profiles;
        F.cfg.n_profiles = 1;
        snprintf(F.db, sizeof(F.db), "%s/r.db", test_tmpdir());
        return registry_open(F.db, &F.cfg, &F.reg);
}

static json_object *status_machine(struct buf *out)
{
        json_object *o, *list;

        buf_reset(out);
        if (registry_status_json(F.reg, T0 + 10, out) < 0 || !(o = json_tokener_parse(out->data)))
                return NULL;
        list = json_object_object_get(o, "machines");
        list = json_object_get(json_object_array_get_idx(list, 0));
        json_object_put(o);
        return list;
}

static const char *jstr(json_object *o, const char *k)
{
        json_object *v;

        return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "(absent)";
}

TEST(registry_approved_netboot_machine)
{
        struct boot_contact c = { .mac = { 0x52, 0x54, 0, 0, 0, 0x70 }, .ip = 0x0a000064 };
        struct agent_identity id = { .serial = "S1", .vendor = "QEMU", .product = "Standard PC" };
        struct buf out = BUF_INIT(1 << 20);
        struct registry_boot b;
        struct agent_reply rep, hb;
        struct store_machine m;
        json_object *j;
        char err[256];
        int64_t sid;

        CHECK_EQ(setup(), 0);
        /* before approval it enrolls like any machine */
        CHECK_EQ(registry_boot(F.reg, &c, T0, &b), 0);
        CHECK_EQ(b.kind, BOOT_KIND_ENROLL);
        registry_register(F.reg, b.nonce, c.mac, &id, "{}", c.ip, T0, &rep);
        CHECK_EQ(rep.status, 200);
        CHECK_EQ(rep.m.state, MS_REGISTERED);
        CHECK_EQ(registry_admin(F.reg, ADMIN_APPROVE, "m-525400000070", NULL, T0, &m, err, sizeof(err)), 0);
        CHECK_EQ(m.state, MS_APPROVED);
        /* no agent will call in from the netboot: no deadline runs out */
        CHECK_EQ(m.deadline, 0);
        /* the enrollment agent still running is told to reboot into it */
        registry_heartbeat(F.reg, rep.m.id, -1, "idle", 0, T0 + 5, &hb);
        CHECK_EQ(hb.status, 200);
        CHECK_EQ(hb.instruction.action, INS_REBOOT);
        CHECK_STREQ(hb.instruction.reason, "boot netboot profile rescue (unsigned)");
        CHECK_EQ(hb.m.deadline, 0);
        /* its next network boots: the netboot, every time, and the old session ends */
        for (int i = 0; i < 2; i++) {
                CHECK_EQ(registry_boot(F.reg, &c, T0 + 10 + i, &b), 0);
                CHECK_EQ(b.kind, BOOT_KIND_NETBOOT);
                CHECK(b.netboot == &F.profiles[0]);
                CHECK_STREQ(b.nonce, "");
                CHECK_EQ(b.m.state, MS_APPROVED);
        }
        CHECK_EQ(registry_authenticate(F.reg, rep.session, &sid), -EACCES);
        CHECK_EQ(registry_sweep(F.reg, T0 + 100000), 0);
        CHECK_EQ(registry_find(F.reg, "m-525400000070", &m), 0);
        CHECK_EQ(m.state, MS_APPROVED);
        /* shown as unsigned */
        CHECK((j = status_machine(&out)) != NULL);
        CHECK_STREQ(jstr(j, "boot"), "netboot");
        CHECK_STREQ(jstr(j, "signed"), "false");
        CHECK_STREQ(jstr(j, "waiting_for"), "boot netboot profile rescue (unsigned)");
        CHECK_STREQ(jstr(json_object_object_get(j, "netboot"), "kernel"), "rescue/vmlinuz");
        CHECK_STREQ(jstr(json_object_object_get(j, "netboot"), "cmdline"), "console=ttyS0");
        json_object_put(j);
        buf_reset(&out);
        CHECK_EQ(registry_show_json(F.reg, "m-525400000070", &out), 0);
        CHECK(strstr(out.data, "\"boot\":\"netboot\",\"signed\":false") != NULL);
        CHECK(strstr(out.data, "\"event\":\"boot-netboot\"") != NULL);
        CHECK(strstr(out.data, "\"enroll_cmdline\":\"\"") != NULL);
        /* the profile without its netboot: the machine enrolls again, and its deadline runs */
        F.profiles[0].netboot.kernel[0] = '\0';
        CHECK((j = status_machine(&out)) != NULL);
        CHECK_STREQ(jstr(j, "boot"), "enroll");
        CHECK_STREQ(jstr(j, "signed"), "true");
        CHECK_STREQ(jstr(j, "netboot"), "(absent)");
        json_object_put(j);
        CHECK_EQ(registry_boot(F.reg, &c, T0 + 20, &b), 0);
        CHECK_EQ(b.kind, BOOT_KIND_ENROLL);
        CHECK_EQ(b.m.deadline, T0 + 20 + 300);
        buf_free(&out);
        registry_close(F.reg);
}

/* A machine whose deadline was set before its profile named a netboot is not failed for it. */
TEST(registry_netboot_deadline_set_before_is_not_applied)
{
        struct boot_contact c = { .mac = { 0x52, 0x54, 0, 0, 0, 0x71 } };
        struct agent_identity id = { .serial = "S2", .vendor = "QEMU" };
        struct registry_boot b;
        struct agent_reply rep;
        struct store_machine m;
        char err[256], kernel[sizeof(F.profiles[0].netboot.kernel)];

        CHECK_EQ(setup(), 0);
        str_copy(kernel, sizeof(kernel), F.profiles[0].netboot.kernel);
        F.profiles[0].netboot.kernel[0] = '\0';
        CHECK_EQ(registry_boot(F.reg, &c, T0, &b), 0);
        registry_register(F.reg, b.nonce, c.mac, &id, "{}", 0, T0, &rep);
        CHECK_EQ(registry_admin(F.reg, ADMIN_APPROVE, "m-525400000071", NULL, T0, &m, err, sizeof(err)), 0);
        CHECK_EQ(m.deadline, T0 + 300);
        str_copy(F.profiles[0].netboot.kernel, sizeof(F.profiles[0].netboot.kernel), kernel);
        CHECK_EQ(registry_sweep(F.reg, T0 + 301), 0);
        CHECK_EQ(registry_find(F.reg, "m-525400000071", &m), 0);
        CHECK_EQ(m.state, MS_APPROVED);
        /* without it again, the deadline applies */
        F.profiles[0].netboot.kernel[0] = '\0';
        CHECK_EQ(registry_sweep(F.reg, T0 + 302), 1);
        registry_close(F.reg);
}

/* Reimage works as for any machine: back to approved, and from there its netboot. */
TEST(registry_netboot_machine_reimaged)
{
        struct boot_contact c = { .mac = { 0x52, 0x54, 0, 0, 0, 0x72 } };
        struct agent_identity id = { .serial = "S3", .vendor = "QEMU" };
        struct registry_boot b;
        struct agent_reply rep, ev;
        struct store_machine m;
        char err[256], kernel[sizeof(F.profiles[0].netboot.kernel)];

        CHECK_EQ(setup(), 0);
        /* installed while its profile still named an image */
        str_copy(kernel, sizeof(kernel), F.profiles[0].netboot.kernel);
        F.profiles[0].netboot.kernel[0] = '\0';
        str_copy(F.profiles[0].image, sizeof(F.profiles[0].image), "debian");
        CHECK_EQ(registry_boot(F.reg, &c, T0, &b), 0);
        registry_register(F.reg, b.nonce, c.mac, &id, "{}", 0, T0, &rep);
        CHECK_EQ(registry_admin(F.reg, ADMIN_APPROVE, "m-525400000072", NULL, T0, &m, err, sizeof(err)), 0);
        registry_agent_event(F.reg, rep.m.id, "install-started", "", 0, T0, &ev);
        registry_agent_event(F.reg, rep.m.id, "install-succeeded", "", 100, T0, &ev);
        CHECK_EQ(ev.m.state, MS_READY);
        /* then the profile became a rescue netboot */
        F.profiles[0].image[0] = '\0';
        str_copy(F.profiles[0].netboot.kernel, sizeof(F.profiles[0].netboot.kernel), kernel);
        CHECK_EQ(registry_boot(F.reg, &c, T0 + 1, &b), 0);
        CHECK_EQ(b.kind, BOOT_KIND_LOCAL);
        CHECK_EQ(registry_admin(F.reg, ADMIN_REIMAGE, "m-525400000072", NULL, T0 + 2, &m, err, sizeof(err)), 0);
        CHECK_EQ(m.state, MS_APPROVED);
        CHECK_EQ(m.deadline, 0);
        CHECK_EQ(registry_boot(F.reg, &c, T0 + 3, &b), 0);
        CHECK_EQ(b.kind, BOOT_KIND_NETBOOT);
        registry_close(F.reg);
}
