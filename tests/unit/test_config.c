/* SPDX-License-Identifier: Apache-2.0 */
#include "metald/config.h"
#include "test.h"

static int load(const char *yaml, struct config **c, char *err, size_t n)
{
        return config_load_string(yaml, "metald.yaml", c, err, n);
}

TEST(config_defaults_and_values)
{
        struct config *c = NULL;
        char err[512];

        CHECK_EQ(load("server: { address: 10.0.0.1, interface: eth1 }\n"
                      "state_dir: /tmp/x\n"
                      "log_level: debug\n"
                      "dhcp:\n"
                      "  lease_time: 2h\n"
                      "  subnets:\n"
                      "    - network: 10.0.0.0/24\n"
                      "      ranges: [\"10.0.0.10 - 10.0.0.20\", 10.0.0.30-10.0.0.40]\n"
                      "      dns: 10.0.0.1\n"
                      "tftp: { root: /srv/pxe, max_blksize: 1468 }\n"
                      "boot: { efi_x64: snponly.efi, files: { \"0\": custom.kpxe } }\n",
                      &c, err, sizeof(err)), 0);
        CHECK_STREQ(c->interface, "eth1");
        CHECK_STREQ(c->state_dir, "/tmp/x");
        CHECK_EQ(c->dhcp.lease_time_s, 7200);
        CHECK_EQ(c->dhcp.port, 67);
        CHECK_EQ(c->dhcp.n_subnets, 1);
        CHECK_EQ(c->dhcp.subnets[0].n_ranges, 2);
        CHECK_EQ(c->dhcp.subnets[0].ranges[0].start, 0x0a00000a);
        CHECK_EQ(c->dhcp.subnets[0].n_dns, 1);
        CHECK_EQ(c->tftp.max_blksize, 1468);
        CHECK_STREQ(config_boot_file(c, 7), "snponly.efi");
        CHECK_STREQ(config_boot_file(c, 0), "custom.kpxe");
        CHECK_STREQ(config_boot_file(c, 11), "ipxe-arm64.efi");
        CHECK(config_boot_file(c, 4000) == NULL);
        config_free(c);
}

/* Each bad document must fail with an error naming file, line and key. */
TEST(config_errors_name_file_line_key)
{
        static const struct { const char *yaml, *expect; } cases[] = {
                { "dhcp:\n  lease_time: 99x\n", "metald.yaml:2: dhcp.lease_time: '99x' is not a duration" },
                { "dhcp:\n  port: 70000\n", "metald.yaml:2: dhcp.port: '70000' is not an integer between 1 and 65535" },
                { "dhcp:\n  mode: relay\n", "metald.yaml:2: dhcp.mode: 'relay' is not 'full' or 'proxy'" },
                { "tftp:\n  rooot: /x\n", "metald.yaml:2: tftp.rooot: unknown key" },
                { "bogus: 1\n", "metald.yaml:1: bogus: unknown key" },
                { "dhcp:\n  subnets:\n    - network: 10.0.0.1/24\n", "metald.yaml:3: dhcp.subnets[0].network:" },
                { "dhcp:\n  subnets:\n    - network: 10.0.0.0/24\n      ranges: [10.0.1.1-10.0.1.5]\n",
                  "dhcp.subnets[0].ranges[0]: '10.0.1.1-10.0.1.5' is not inside the subnet" },
                { "dhcp:\n  subnets:\n    - network: 10.0.0.0/24\n      ranges: [10.0.0.9-10.0.0.5]\n",
                  "starts after it ends" },
                { "dhcp:\n  subnets:\n    - network: 10.0.0.0/24\n      reservations:\n"
                  "        - { mac: 52:54:00:00:00:01, address: 10.0.0.5 }\n"
                  "        - { mac: 52:54:00:00:00:01, address: 10.0.0.6 }\n",
                  "metald.yaml:6: dhcp.subnets[0].reservations[1]: MAC is already reserved" },
                { "dhcp:\n  subnets:\n    - network: 10.0.0.0/24\n    - network: 10.0.0.0/16\n", "overlaps" },
                { "dhcp:\n  subnets: []\n", "full mode needs at least one subnet" },
                { "server:\n  address: 300.1.1.1\n", "metald.yaml:2: server.address: '300.1.1.1' is not an IPv4 address" },
                { "log_level: loud\n", "log_level: 'loud' is not one of" },
                { "boot:\n  files:\n    x86: a.efi\n", "boot.files.x86: key is not an architecture number" },
                { "boot:\n  efi_x64: grub.efi\n", "boot.efi_x64: 'grub.efi' is not ipxe.efi or snponly.efi" },
                { "a: &x 1\nb: *x\n", "anchors and aliases are not supported" },
                { "a: 1\na: 2\n", "metald.yaml:2: duplicate key 'a'" },
                { "dhcp: [1, 2]\n", "expected a mapping" },
                { "dhcp:\n  lease_time: [1]\n", "dhcp.lease_time: expected a scalar" },
                { "key: \"unterminated\n", "YAML syntax error" },
                { "", "configuration is empty" },
                { "- 1\n- 2\n", "expected a mapping" },
                { "dhcp:\n  lease_time: \"\\x01\\x02bad\"\n", "'\\x01\\x02bad' is not a duration" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct config *c = NULL;
                char err[512] = "";
                int r = load(cases[i].yaml, &c, err, sizeof(err));

                if (r >= 0 || !strstr(err, cases[i].expect)) {
                        fprintf(stderr, "  case %zu: got \"%s\"\n", i, err);
                        config_free(c);
                        CHECK(false);
                }
        }
}

TEST(config_file_errors)
{
        struct config *c = NULL;
        char err[512];

        CHECK(config_load_file("/nonexistent/metald.yaml", &c, err, sizeof(err)) < 0);
        CHECK(strstr(err, "/nonexistent/metald.yaml: cannot open") != NULL);
}

TEST(config_deep_nesting_refused)
{
        struct config *c = NULL;
        char yaml[512] = "", err[512];

        for (int i = 0; i < 40; i++)
                strcat(yaml, "[");
        for (int i = 0; i < 40; i++)
                strcat(yaml, "]");
        CHECK(load(yaml, &c, err, sizeof(err)) < 0);
        CHECK(strstr(err, "nesting is too deep") != NULL);
}

TEST(config_lifecycle_profiles_control)
{
        struct config *c = NULL;
        char err[512];

        CHECK_EQ(load("lifecycle:\n"
                      "  agent_timeout: 2m\n"
                      "  heartbeat: 5s\n"
                      "  local_boot: { bios: \"sanboot --drive 0x81\", efi: exit }\n"
                      "profiles:\n"
                      "  - name: qemu\n"
                      "    match: { mac: \"52:54:00:*\", vendor: QEMU, labels: { role: worker } }\n"
                      "    image: flatcar\n"
                      "    install: { disk: ssd }\n"
                      "    hostname: \"w-{mac}\"\n"
                      "    approval: auto\n"
                      "  - name: fallback\n"
                      "control: { socket: /tmp/x.sock, mode: \"0600\" }\n",
                      &c, err, sizeof(err)), 0);
        CHECK_EQ(c->lifecycle.timeouts.agent_s, 120);
        CHECK_EQ(c->lifecycle.heartbeat_s, 5);
        CHECK_STREQ(c->lifecycle.local_boot_bios, "sanboot --drive 0x81");
        CHECK_EQ(c->n_profiles, 2);
        CHECK_STREQ(c->profiles[0].match.mac[0], "52:54:00:*");
        CHECK_EQ(c->profiles[0].match.n_labels, 1);
        CHECK_EQ(c->profiles[0].approval, PROFILE_APPROVE_AUTO);
        CHECK_STREQ(c->profiles[0].disk, "ssd");
        CHECK_STREQ(c->profiles[1].disk, "largest");
        CHECK_EQ(c->profiles[1].approval, PROFILE_APPROVE_MANUAL);
        CHECK_EQ(c->control.socket_mode, 0600);
        CHECK_STREQ(c->control.socket, "/tmp/x.sock");
        config_free(c);
}

TEST(config_profile_errors)
{
        static const struct { const char *yaml, *expect; } cases[] = {
                { "profiles:\n  - { image: x }\n", "profiles[0].name: is required" },
                { "profiles:\n  - { name: a }\n  - { name: a }\n", "profiles[1]: name 'a' is used by profiles[0] too" },
                { "profiles:\n  - { name: a }\n  - { name: b }\n",
                  "profiles[1]: matches exactly the same machines as profiles[0] (a)" },
                { "profiles:\n  - { name: a, approval: sometimes }\n", "profiles[0].approval: 'sometimes' is not manual or auto" },
                { "profiles:\n  - { name: a, install: { mode: pxe } }\n", "not a known install mode" },
                { "profiles:\n  - { name: a, install: { disk: /dev/sda } }\n", "is not largest, smallest" },
                { "profiles:\n  - { name: \"a b\" }\n", "is not a name of letters" },
                { "profiles:\n  - { name: a, match: { labels: { role: \"x y\" } } }\n", "profiles[0].match.labels.role" },
                { "profiles:\n  - { name: a, match: { colour: red } }\n", "profiles[0].match.colour: unknown key" },
                { "lifecycle: { heartbeat: 2m }\n", "lifecycle.heartbeat: must be at most a third" },
                { "lifecycle: { local_boot: { efi: \"exit\\nshell\" } }\n", "is not one line of printable ASCII" },
                { "control: { mode: \"999\" }\n", "control.mode: '999' is not an octal file mode" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct config *c = NULL;
                char err[512] = "";
                int r = load(cases[i].yaml, &c, err, sizeof(err));

                if (r >= 0 || !strstr(err, cases[i].expect)) {
                        fprintf(stderr, "  case %zu: got \"%s\"\n", i, err);
                        config_free(c);
                        CHECK(false);
                }
        }
}
