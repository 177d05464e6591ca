/* SPDX-License-Identifier: Apache-2.0 */
#include "metald/config.h"
#include "metald/machine_power.h"
#include "metald/util.h"
#include "test.h"

static int load_profile(const char *power, struct config **c, char *err, size_t n)
{
        char yaml[2048];

        snprintf(yaml, sizeof(yaml), "profiles:\n  - name: p\n    power: %s\n", power);
        return config_load_string(yaml, "metald.yaml", c, err, n);
}

TEST(config_profile_power)
{
        struct config *c = NULL;
        char err[512];

        CHECK_EQ(config_load_string("profiles:\n  - name: p\n", "metald.yaml", &c, err, sizeof(err)), 0);
        CHECK_EQ(c->profiles[0].power.driver, PROFILE_POWER_MANUAL);
        config_free(c);
        CHECK_EQ(load_profile("{ driver: qemu, socket: \"/run/ci/{mac}.qmp\" }", &c, err, sizeof(err)), 0);
        CHECK_EQ(c->profiles[0].power.driver, PROFILE_POWER_QEMU);
        CHECK_STREQ(c->profiles[0].power.socket, "/run/ci/{mac}.qmp");
        config_free(c);
        CHECK_EQ(load_profile("{ driver: ipmi, host: \"{name}-bmc.lab\", user: admin, "
                              "password_file: /etc/metald/bmc.pass, cipher_suite: 17 }", &c, err, sizeof(err)), 0);
        CHECK_EQ(c->profiles[0].power.driver, PROFILE_POWER_IPMI);
        CHECK_EQ(c->profiles[0].power.port, POWER_IPMI_DEFAULT_PORT);
        CHECK_EQ(c->profiles[0].power.cipher_suite, 17);
        CHECK_STREQ(c->profiles[0].power.host, "{name}-bmc.lab");
        config_free(c);
}

TEST(config_profile_power_refused)
{
        static const struct {
                const char *power, *says;
        } bad[] = {
                { "{ driver: redfish }", "power.driver: 'redfish' is not manual, qemu or ipmi" },
                { "{ driver: qemu }", "power.socket: is required by the qemu driver" },
                { "{ driver: qemu, socket: run/x.qmp }", "power.socket: 'run/x.qmp' is not an absolute path" },
                { "{ driver: qemu, socket: \"/run/{serial}.qmp\" }", "power.socket" },
                { "{ driver: qemu, socket: /x, host: h }", "power.host: is not a setting of the qemu driver" },
                { "{ driver: manual, socket: /x }", "power.socket: is not a setting of the manual driver" },
                { "{ driver: ipmi, host: h, user: u }", "power.password_file: is required by the ipmi driver" },
                { "{ driver: ipmi, host: -oX, user: u, password_file: /p }", "power.host" },
                { "{ driver: ipmi, host: \"a b\", user: u, password_file: /p }", "power.host" },
                { "{ driver: ipmi, host: h, user: \"a b\", password_file: /p }", "power.user" },
                { "{ driver: ipmi, host: h, user: u, password_file: p }", "power.password_file" },
                { "{ driver: ipmi, host: h, user: u, password_file: /p, port: 0 }", "power.port" },
                { "{ driver: ipmi, host: h, user: u, password_file: /p, cipher_suite: 0 }", "power.cipher_suite" },
                { "{ driver: ipmi, host: h, user: u, password_file: /p, password: x }", "power.password: unknown key" },
                { "{ driver: ipmi, host: h, user: abcdefghijklmnopq, password_file: /p }", "power.user" },
                { "qemu", "power: expected a mapping" },
        };
        struct config *c = NULL;
        char err[512];

        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                err[0] = '\0';
                CHECK_EQ(load_profile(bad[i].power, &c, err, sizeof(err)), -EINVAL);
                if (!strstr(err, bad[i].says))
                        fprintf(stderr, "  %s: %s\n", bad[i].power, err);
                CHECK(strstr(err, bad[i].says) != NULL);
                CHECK(strstr(err, "profiles[0]") != NULL);
        }
}

TEST(machine_power_templates)
{
        static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0xAB, 0x0c, 0x01 };
        struct profile_power pp = { .driver = PROFILE_POWER_QEMU, .socket = "/run/ci/{mac}-{name}.qmp" };
        struct power_target t = { 0 };
        char why[256];

        CHECK_EQ(machine_power_target(&pp, mac, "node-1", &t, why, sizeof(why)), 0);
        CHECK_EQ(t.driver, POWER_DRIVER_QEMU);
        CHECK_STREQ(t.socket, "/run/ci/525400ab0c01-node-1.qmp");
        CHECK_EQ(machine_power_target(&pp, mac, "../etc", &t, why, sizeof(why)), -EINVAL);
        CHECK_EQ(machine_power_target(&pp, mac, "..", &t, why, sizeof(why)), -EINVAL);
        CHECK_EQ(machine_power_target(&pp, mac, "", &t, why, sizeof(why)), -EINVAL);
        memset(pp.socket, 'x', POWER_MAX_PATH - 4);
        pp.socket[0] = '/';
        memcpy(pp.socket + POWER_MAX_PATH - 4, "{mac}", 6);
        CHECK_EQ(machine_power_target(&pp, mac, "n", &t, why, sizeof(why)), -ENAMETOOLONG);
        CHECK_STREQ(t.socket, "/run/ci/525400ab0c01-node-1.qmp");      /* untouched on failure */
        pp = (struct profile_power){ .driver = PROFILE_POWER_IPMI, .host = "bmc-{mac}", .port = 623, .user = "admin",
                                     .password_file = "/etc/metald/bmc.pass", .cipher_suite = 3 };
        CHECK_EQ(machine_power_target(&pp, mac, "n", &t, why, sizeof(why)), 0);
        CHECK_EQ(t.driver, POWER_DRIVER_IPMI);
        CHECK_STREQ(t.host, "bmc-525400ab0c01");
        CHECK_EQ(t.port, 623);
        CHECK_EQ(t.cipher_suite, 3);
        CHECK_STREQ(t.password_file, "/etc/metald/bmc.pass");
        pp = (struct profile_power){ .driver = PROFILE_POWER_MANUAL };
        CHECK_EQ(machine_power_target(&pp, mac, "n", &t, why, sizeof(why)), 0);
        CHECK_EQ(t.driver, POWER_DRIVER_MANUAL);
}
