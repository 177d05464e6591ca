/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "metald/power.h"
#include "metald/power_wire.h"
#include "metald/util.h"
#include "test.h"

static int qmp(const char *line, struct power_qmp_msg *m)
{
        return power_qmp_parse(line, strlen(line), m);
}

TEST(power_qmp_parse_kinds)
{
        struct power_qmp_msg m;

        CHECK_EQ(qmp("{\"QMP\": {\"version\": {\"qemu\": {\"major\": 7}}, \"capabilities\": [\"oob\"]}}\r\n", &m), 0);
        CHECK_EQ(m.kind, POWER_QMP_GREETING);
        CHECK_EQ(qmp("{\"return\": {}, \"id\": 7}\r\n", &m), 0);
        CHECK_EQ(m.kind, POWER_QMP_RETURN);
        CHECK(m.has_id);
        CHECK_EQ(m.id, 7);
        CHECK_STREQ(m.status, "");
        CHECK_EQ(qmp("{\"return\": {\"status\": \"running\", \"singlestep\": false, \"running\": true}}", &m), 0);
        CHECK(!m.has_id);
        CHECK_STREQ(m.status, "running");
        CHECK_EQ(qmp("{\"return\": []}", &m), 0);       /* query-* commands may return lists */
        CHECK_EQ(qmp("{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"RESET\", "
                     "\"data\": {\"guest\": false, \"reason\": \"host-qmp-system-reset\"}}", &m), 0);
        CHECK_EQ(m.kind, POWER_QMP_EVENT);
        CHECK_STREQ(m.event, "RESET");
        CHECK_EQ(qmp("{\"id\": 3, \"error\": {\"class\": \"GenericError\", \"desc\": \"no\\nway\"}}", &m), 0);
        CHECK_EQ(m.kind, POWER_QMP_ERROR);
        CHECK_EQ(m.id, 3);
        CHECK_STREQ(m.error, "GenericError: no\\x0away");        /* control characters escaped */
        CHECK_EQ(qmp("{\"error\": {}}", &m), 0);
        CHECK_STREQ(m.error, "(no class): (no description)");
}

TEST(power_qmp_parse_hostile)
{
        static const char *const bad[] = {
                "", "\r\n", "not json", "{", "{\"return\": {", "{\"return\": {}} trailing", "{\"return\": {}}{\"return\": {}}",
                "[1]", "\"return\"", "42", "null", "{}", "{\"foo\": 1}",
                "{\"return\": {}, \"event\": \"RESET\"}",                   /* two kinds at once */
                "{\"return\": {}, \"error\": {}}",
                "{\"return\": {}, \"id\": \"7\"}",                         /* ids are numbers here */
                "{\"return\": {}, \"id\": 1.5}",
                "{\"event\": 7}", "{\"event\": \"\"}", "{\"QMP\": 1}", "{\"error\": \"x\"}",
                "{\"return\": {\"status\": 1}}",
                "{\"return\": {\"status\": \"runningrunningrunningrunningrunning\"}}",
                "{\"return\": {\"status\": \"run\\u0000ning\"}}",
                "{\"event\": \"\xff\xfe\"}",                               /* not UTF-8 */
        };
        char deep[200], big[POWER_QMP_MAX_MESSAGE + 2];
        struct power_qmp_msg m = { .kind = POWER_QMP_EVENT };
        size_t o = 0;

        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                if (qmp(bad[i], &m) != -EBADMSG)
                        fprintf(stderr, "  accepted: %s\n", bad[i]);
                CHECK_EQ(qmp(bad[i], &m), -EBADMSG);
        }
        CHECK_EQ(power_qmp_parse("{\"return\": {}}\0", 15, &m), -EBADMSG);     /* a NUL inside the line */
        o += (size_t)snprintf(deep, sizeof(deep), "{\"return\":");
        for (int i = 0; i < POWER_QMP_MAX_DEPTH + 1; i++)
                deep[o++] = '[';
        for (int i = 0; i < POWER_QMP_MAX_DEPTH + 1; i++)
                deep[o++] = ']';
        deep[o++] = '}';
        deep[o] = '\0';
        CHECK_EQ(qmp(deep, &m), -EBADMSG);
        memset(big, ' ', sizeof(big));
        memcpy(big, "{\"return\": {}}", 14);
        CHECK_EQ(power_qmp_parse(big, POWER_QMP_MAX_MESSAGE, &m), 0);   /* padding up to the limit is fine */
        CHECK_EQ(power_qmp_parse(big, POWER_QMP_MAX_MESSAGE + 1, &m), -EMSGSIZE);
        CHECK_EQ(m.kind, POWER_QMP_RETURN);                             /* untouched by the failure */
}

TEST(power_qmp_states)
{
        enum power_state st = POWER_STATE_UNKNOWN;

        CHECK_EQ(power_qmp_state("running", &st), 0);
        CHECK_EQ(st, POWER_STATE_ON);
        CHECK_EQ(power_qmp_state("guest-panicked", &st), 0);
        CHECK_EQ(st, POWER_STATE_ON);
        CHECK_EQ(power_qmp_state("paused", &st), 0);
        CHECK_EQ(st, POWER_STATE_OFF);
        CHECK_EQ(power_qmp_state("prelaunch", &st), 0);
        CHECK_EQ(st, POWER_STATE_OFF);
        CHECK_EQ(power_qmp_state("shutdown", &st), 0);
        CHECK_EQ(st, POWER_STATE_OFF);
        CHECK_EQ(power_qmp_state("inmigrate", &st), -EINVAL);
        CHECK_EQ(power_qmp_state("", &st), -EINVAL);
        CHECK_EQ(power_qmp_state("Running", &st), -EINVAL);
        CHECK_EQ(st, POWER_STATE_OFF);
}

static int ipmi_status(const char *out, enum power_state *st)
{
        return power_ipmi_parse_status(out, strlen(out), st);
}

TEST(power_ipmi_status_output)
{
        static const char *const bad[] = {
                "", "\n", "Chassis Power is", "Chassis Power is unknown", "chassis power is on",
                "xChassis Power is on", "Chassis Power is on!", "Chassis Power is on\nChassis Power is off\n",
                "Chassis Power is on\nChassis Power is on\n", "Chassis Power Control: Up/On\n",
                "Error: Unable to establish IPMI v2 / RMCP+ session\n",
        };
        enum power_state st = POWER_STATE_UNKNOWN;
        char huge[POWER_IPMI_MAX_OUTPUT + 64];

        CHECK_EQ(ipmi_status("Chassis Power is on\n", &st), 0);
        CHECK_EQ(st, POWER_STATE_ON);
        CHECK_EQ(ipmi_status("Chassis Power is off\r\n", &st), 0);
        CHECK_EQ(st, POWER_STATE_OFF);
        CHECK_EQ(ipmi_status("Unable to Get Channel Cipher Suites\nChassis Power is on  ", &st), 0);
        CHECK_EQ(st, POWER_STATE_ON);
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                if (ipmi_status(bad[i], &st) != -EBADMSG)
                        fprintf(stderr, "  accepted: %s\n", bad[i]);
                CHECK_EQ(ipmi_status(bad[i], &st), -EBADMSG);
        }
        CHECK_EQ(power_ipmi_parse_status("Chassis Power is on\0\n", 21, &st), -EBADMSG);
        memset(huge, '\n', sizeof(huge));
        memcpy(huge, "Chassis Power is off\n", 21);
        CHECK_EQ(power_ipmi_parse_status(huge, POWER_IPMI_MAX_OUTPUT, &st), 0);
        CHECK_EQ(power_ipmi_parse_status(huge, sizeof(huge), &st), -EMSGSIZE);
        CHECK_EQ(st, POWER_STATE_OFF);
}

TEST(power_ipmi_control_output)
{
        static const struct {
                enum power_op op;
                const char *out;
        } good[] = {
                { POWER_OP_ON, "Chassis Power Control: Up/On\n" },
                { POWER_OP_OFF, "Chassis Power Control: Down/Off\r\n" },
                { POWER_OP_CYCLE, "noise\nChassis Power Control: Cycle\n" },
                { POWER_OP_RESET, "Chassis Power Control: Reset" },
                { POWER_OP_SOFT_OFF, "Chassis Power Control: Soft\n" },
        };

        for (size_t i = 0; i < ARRAY_SIZE(good); i++)
                CHECK_EQ(power_ipmi_parse_control(good[i].out, strlen(good[i].out), good[i].op), 0);
        CHECK_EQ(power_ipmi_parse_control("Chassis Power Control: Up/On\n", 29, POWER_OP_OFF), -EBADMSG);
        CHECK_EQ(power_ipmi_parse_control("", 0, POWER_OP_ON), -EBADMSG);
        CHECK_EQ(power_ipmi_parse_control("Chassis Power Control: Up/On", 28, POWER_OP_STATUS), -EINVAL);
        CHECK_EQ(power_ipmi_parse_control("Chassis Power Control: Up/On!", 29, POWER_OP_ON), -EBADMSG);
        CHECK_STREQ(power_ipmi_word(POWER_OP_SOFT_OFF), "soft");
        CHECK_STREQ(power_ipmi_word(POWER_OP_CYCLE), "cycle");
}

TEST(power_summarize_stderr)
{
        char buf[64], tiny[8];
        char many[4096];

        power_summarize("\n  Error in open session\n\nError: Unable\x1b[31m\r\n", 45, buf, sizeof(buf));
        CHECK_STREQ(buf, "Error in open session; Error: Unable\\x1b[31m");
        power_summarize("", 0, buf, sizeof(buf));
        CHECK_STREQ(buf, "");
        memset(many, 'x', sizeof(many));
        power_summarize(many, sizeof(many), tiny, sizeof(tiny));
        CHECK_EQ(strlen(tiny), sizeof(tiny) - 1);
        for (size_t i = 0; i < sizeof(many); i += 2)
                many[i] = '\n';
        power_summarize(many, sizeof(many), buf, sizeof(buf));
        CHECK(strlen(buf) < sizeof(buf));
}

TEST(power_names)
{
        enum power_op op;
        enum power_driver d;

        CHECK_EQ(power_op_from_name("soft-off", &op), 0);
        CHECK_EQ(op, POWER_OP_SOFT_OFF);
        CHECK_STREQ(power_op_name(POWER_OP_CYCLE), "cycle");
        CHECK_EQ(power_op_from_name("soft", &op), -EINVAL);
        CHECK_EQ(power_driver_from_name("ipmi", &d), 0);
        CHECK_EQ(d, POWER_DRIVER_IPMI);
        CHECK_EQ(power_driver_from_name("IPMI", &d), -EINVAL);
        CHECK_STREQ(power_state_name(POWER_STATE_UNKNOWN), "unknown");
}

TEST(power_manual_needs_an_operator)
{
        struct power_target t = { .driver = POWER_DRIVER_MANUAL };
        enum power_state st = POWER_STATE_ON;
        char why[256];

        for (int op = POWER_OP_STATUS; op <= POWER_OP_SOFT_OFF; op++) {
                CHECK_EQ(power_run(&t, (enum power_op)op, &st, why, sizeof(why)), -EOPNOTSUPP);
                CHECK(strstr(why, "manual") != NULL);
        }
        CHECK_EQ(st, POWER_STATE_ON);   /* not filled on failure */
        CHECK_EQ(power_cycle(&t, why, sizeof(why)), -EOPNOTSUPP);
        CHECK(strstr(why, "by hand") != NULL);
}

TEST(power_target_checks)
{
        struct power_target t = { .driver = POWER_DRIVER_QEMU };
        char why[256];

        CHECK_EQ(power_target_check(&t, why, sizeof(why)), -EINVAL);
        CHECK(strstr(why, "socket") != NULL);
        t = (struct power_target){ .driver = POWER_DRIVER_IPMI, .host = "10.0.0.5", .user = "admin",
                                   .password_file = "/etc/metald/bmc.pass" };
        CHECK_EQ(power_target_check(&t, why, sizeof(why)), 0);
        str_copy(t.host, sizeof(t.host), "-oProxyCommand=x");
        CHECK_EQ(power_target_check(&t, why, sizeof(why)), -EINVAL);
        str_copy(t.host, sizeof(t.host), "bmc 1");
        CHECK_EQ(power_target_check(&t, why, sizeof(why)), -EINVAL);
        str_copy(t.host, sizeof(t.host), "fe80::1");
        CHECK_EQ(power_target_check(&t, why, sizeof(why)), 0);
        str_copy(t.user, sizeof(t.user), "-P");
        CHECK_EQ(power_target_check(&t, why, sizeof(why)), -EINVAL);
        str_copy(t.user, sizeof(t.user), "");
        CHECK_EQ(power_target_check(&t, why, sizeof(why)), -EINVAL);
        str_copy(t.user, sizeof(t.user), "admin");
        str_copy(t.password_file, sizeof(t.password_file), "bmc.pass");
        CHECK_EQ(power_target_check(&t, why, sizeof(why)), -EINVAL);
        str_copy(t.password_file, sizeof(t.password_file), "/p");
        t.cipher_suite = 18;
        CHECK_EQ(power_target_check(&t, why, sizeof(why)), -EINVAL);
        t.cipher_suite = 17;
        t.timeout_ms = POWER_MAX_TIMEOUT_MS + 1;
        CHECK_EQ(power_status(&t, NULL, why, sizeof(why)), -EINVAL);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        if (fd >= 0) {
                if (write(fd, text, strlen(text)) < 0)
                        abort();
                fchmod(fd, mode);
                close(fd);
        }
}

TEST(power_password_files)
{
        static const struct {
                const char *text;
                mode_t mode;
                int want;
        } cases[] = {
                { "s3cret\n", 0600, 0 },          { "s3cret", 0400, 0 },
                { "s3cret\r\nmore\n", 0640, 0 },  { "s3cret\n", 0644, -EPERM },
                { "s3cret\n", 0660, -EPERM },     { "s3cret\n", 0604, -EPERM },
                { "", 0600, -EINVAL },            { "\nsecond line\n", 0600, -EINVAL },
                { "123456789012345678901\n", 0600, -EINVAL },     /* 21 bytes: over IPMI 2.0's 20 */
                { "12345678901234567890\n", 0600, 0 },
        };
        char path[512], why[512];
        int fd = -1;

        snprintf(path, sizeof(path), "%s/pw", test_tmpdir());
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                unlink(path);
                write_file(path, cases[i].text, cases[i].mode);
                fd = -1;
                CHECK_EQ(power_open_password_file(path, &fd, why, sizeof(why)), cases[i].want);
                CHECK(cases[i].want == 0 ? fd >= 0 : fd == -1);
                if (fd >= 0)
                        close(fd);
                CHECK(!strstr(why, "s3cret") && !strstr(why, "123456"));        /* never the password */
        }
        CHECK_EQ(power_open_password_file(test_tmpdir(), &fd, why, sizeof(why)), -EINVAL);
        snprintf(path, sizeof(path), "%s/missing", test_tmpdir());
        CHECK_EQ(power_open_password_file(path, &fd, why, sizeof(why)), -ENOENT);
        CHECK(strstr(why, path) != NULL);
}

/* An ipmi target whose ipmitool is a script of the test's. */
static void fake_ipmitool(struct power_target *t, const char *script)
{
        char path[512], pw[512];

        snprintf(path, sizeof(path), "%s/ipmitool", test_tmpdir());
        snprintf(pw, sizeof(pw), "%s/bmc.pass", test_tmpdir());
        unlink(path);
        write_file(path, script, 0700);
        write_file(pw, "s3cret\n", 0600);
        *t = (struct power_target){ .driver = POWER_DRIVER_IPMI, .host = "127.0.0.1", .port = 6230,
                                    .user = "admin", .cipher_suite = 3, .timeout_ms = 5000 };
        str_copy(t->ipmitool, sizeof(t->ipmitool), path);
        str_copy(t->password_file, sizeof(t->password_file), pw);
}

TEST(power_ipmi_runs_ipmitool)
{
        /* the password reaches ipmitool through -f and fd 3 only: not in argv, not in the environment */
        static const char script[] =
                "#!/bin/sh\n"
                "[ \"$1 $2 $3 $4 $5 $6 $7 $8 $9 ${10} ${11} ${12} ${13} ${14} $#\" = "
                "\"-I lanplus -H 127.0.0.1 -p 6230 -U admin -f /dev/fd/3 -C 3 chassis power 15\" ] || exit 7\n"
                "[ \"$(head -n1 /dev/fd/3)\" = s3cret ] || exit 8\n"
                "env | grep -q s3cret && exit 9\n"
                "[ -z \"$IPMI_PASSWORD\" ] || exit 10\n"
                "case \"${15}\" in\n"
                "status) echo 'Chassis Power is off' ;;\n"
                "cycle) echo 'Chassis Power Control: Cycle' ;;\n"
                "*) echo 'Chassis Power Control: Down/Off' ;;\n"
                "esac\n";
        struct power_target t;
        enum power_state st = POWER_STATE_ON;
        char why[512] = "";
        int r;

        fake_ipmitool(&t, script);
        r = power_status(&t, &st, why, sizeof(why));
        if (r < 0)
                fprintf(stderr, "  %s\n", why);
        CHECK_EQ(r, 0);
        CHECK_EQ(st, POWER_STATE_OFF);
        CHECK_EQ(power_cycle(&t, why, sizeof(why)), 0);
        CHECK_EQ(power_reset(&t, why, sizeof(why)), -EBADMSG);  /* answered Down/Off to a reset */
        CHECK(strstr(why, "Down/Off") != NULL);
}

TEST(power_ipmi_failures)
{
        struct power_target t;
        enum power_state st;
        char why[512];
        uint64_t t0;

        fake_ipmitool(&t, "#!/bin/sh\necho 'Error: Unable to establish IPMI v2 / RMCP+ session' >&2\nexit 1\n");
        CHECK_EQ(power_status(&t, &st, why, sizeof(why)), -EIO);
        CHECK(strstr(why, "status 1") && strstr(why, "Unable to establish IPMI v2"));
        fake_ipmitool(&t, "#!/bin/sh\nhead -c 100000 /dev/zero | tr '\\0' x\n");
        CHECK_EQ(power_status(&t, &st, why, sizeof(why)), -EMSGSIZE);
        fake_ipmitool(&t, "#!/bin/sh\nhead -c 100000 /dev/zero | tr '\\0' x >&2\nexit 2\n");
        CHECK_EQ(power_status(&t, &st, why, sizeof(why)), -EIO);
        CHECK(strlen(why) < sizeof(why) - 1);
        fake_ipmitool(&t, "#!/bin/sh\nprintf 'Chassis Power is \\033]0;pwned\\007on\\n'\n");
        CHECK_EQ(power_status(&t, &st, why, sizeof(why)), -EBADMSG);
        CHECK(!strchr(why, '\033'));
        /* a hung ipmitool, and one that closes its output but does not exit, are killed in time */
        fake_ipmitool(&t, "#!/bin/sh\nexec sleep 30\n");
        t.timeout_ms = 300;
        t0 = now_monotonic_usec();
        CHECK_EQ(power_status(&t, &st, why, sizeof(why)), -ETIMEDOUT);
        fake_ipmitool(&t, "#!/bin/sh\nexec >/dev/null 2>&1\nexec sleep 30\n");
        t.timeout_ms = 300;
        CHECK_EQ(power_on(&t, why, sizeof(why)), -ETIMEDOUT);
        CHECK(now_monotonic_usec() - t0 < 5 * USEC_PER_SEC);
        CHECK(strstr(why, "did not finish") != NULL);
        fake_ipmitool(&t, "#!/bin/sh\necho 'Chassis Power is on'\n");
        str_copy(t.ipmitool, sizeof(t.ipmitool), "/nonexistent/ipmitool");
        CHECK_EQ(power_status(&t, &st, why, sizeof(why)), -ENOENT);
        CHECK(strstr(why, "install ipmitool") != NULL);
}

/* A QMP peer that plays a script: after each line it receives, it sends the next reply. */
struct qmp_peer {
        int listen_fd;
        const char *greeting;
        const char *const *replies;     /* NULL-terminated; "" = say nothing and wait */
        char received[2048];
        size_t received_len;
};

static void *qmp_peer_run(void *arg)
{
        struct qmp_peer *p = arg;
        int fd = accept(p->listen_fd, NULL, NULL);
        char c;

        if (fd < 0)
                return NULL;
        if (send(fd, p->greeting, strlen(p->greeting), MSG_NOSIGNAL) < 0)
                goto out;
        for (size_t i = 0; p->replies[i]; i++) {
                while (read(fd, &c, 1) == 1 && p->received_len + 1 < sizeof(p->received)) {
                        p->received[p->received_len++] = c;
                        if (c == '\n')
                                break;
                }
                if (!*p->replies[i]) {
                        while (read(fd, &c, 1) == 1)    /* until the client gives up */
                                ;
                        break;
                }
                if (send(fd, p->replies[i], strlen(p->replies[i]), MSG_NOSIGNAL) < 0)
                        break;
        }
out:
        close(fd);
        return NULL;
}

static int qmp_play(const char *greeting, const char *const *replies, enum power_op op, uint32_t timeout_ms,
                    enum power_state *st, char *why, size_t why_len, char *ret_received, size_t cap)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct qmp_peer p = { .greeting = greeting, .replies = replies };
        struct power_target t = { .driver = POWER_DRIVER_QEMU, .timeout_ms = timeout_ms };
        pthread_t th;
        int r;

        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/qmp.sock", test_tmpdir());
        unlink(sa.sun_path);
        str_copy(t.socket, sizeof(t.socket), sa.sun_path);
        p.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (p.listen_fd < 0 || bind(p.listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(p.listen_fd, 1) < 0)
                abort();
        if (pthread_create(&th, NULL, qmp_peer_run, &p) != 0)
                abort();
        r = power_run(&t, op, st, why, why_len);
        shutdown(p.listen_fd, SHUT_RDWR);
        pthread_join(th, NULL);
        close(p.listen_fd);
        if (ret_received)
                snprintf(ret_received, cap, "%.*s", (int)p.received_len, p.received);
        return r;
}

#define GREETING "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n"
#define OK(id) "{\"return\": {}, \"id\": " #id "}\r\n"
#define EVENT(name) "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 0}, \"event\": \"" name "\"}\r\n"

TEST(power_qemu_status_skips_events)
{
        static const char *const replies[] = {
                EVENT("STOP") OK(1),
                EVENT("RESUME") EVENT("NIC_RX_FILTER_CHANGED") "{\"return\": {\"status\": \"paused\"}, \"id\": 99}\r\n"
                "{\"return\": {\"status\": \"running\", \"running\": true}, \"id\": 2}\r\n",
                NULL,
        };
        enum power_state st = POWER_STATE_UNKNOWN;
        char why[256], got[2048];

        CHECK_EQ(qmp_play(GREETING, replies, POWER_OP_STATUS, 5000, &st, why, sizeof(why), got, sizeof(got)), 0);
        CHECK_EQ(st, POWER_STATE_ON);   /* the reply to id 2, not the stray one */
        CHECK_STREQ(got, "{\"execute\":\"qmp_capabilities\",\"id\":1}\r\n{\"execute\":\"query-status\",\"id\":2}\r\n");
}

TEST(power_qemu_off_and_cycle)
{
        static const char *const off[] = { OK(1), OK(2), OK(3) EVENT("RESET"), NULL };
        /* the RESET event may come before the reply; cont must wait for both */
        static const char *const cycle[] = { OK(1), OK(2), EVENT("RESET") OK(3), OK(4), NULL };
        char why[256], got[2048];

        CHECK_EQ(qmp_play(GREETING, off, POWER_OP_OFF, 5000, NULL, why, sizeof(why), got, sizeof(got)), 0);
        CHECK(strstr(got, "\"stop\",\"id\":2") && strstr(got, "\"system_reset\",\"id\":3"));
        CHECK(!strstr(got, "cont"));
        CHECK_EQ(qmp_play(GREETING, cycle, POWER_OP_CYCLE, 5000, NULL, why, sizeof(why), got, sizeof(got)), 0);
        CHECK(strstr(got, "\"cont\",\"id\":4") != NULL);
}

TEST(power_qemu_on_after_shutdown)
{
        static const char *const replies[] = {
                OK(1), "{\"return\": {\"status\": \"shutdown\"}, \"id\": 2}\r\n", OK(3) EVENT("RESET"), OK(4), NULL,
        };
        static const char *const running[] = { OK(1), "{\"return\": {\"status\": \"running\"}, \"id\": 2}\r\n", NULL };
        char why[256], got[2048];

        CHECK_EQ(qmp_play(GREETING, replies, POWER_OP_ON, 5000, NULL, why, sizeof(why), got, sizeof(got)), 0);
        CHECK(strstr(got, "\"system_reset\",\"id\":3") && strstr(got, "\"cont\",\"id\":4"));
        CHECK_EQ(qmp_play(GREETING, running, POWER_OP_ON, 5000, NULL, why, sizeof(why), got, sizeof(got)), 0);
        CHECK(!strstr(got, "cont"));    /* already on: nothing sent */
}

TEST(power_qemu_hostile_peers)
{
        static const char *const error[] = {
                OK(1), "{\"error\": {\"class\": \"GenericError\", \"desc\": \"\\u001b[2Jgone\"}, \"id\": 2}\r\n", NULL,
        };
        static const char *const garbage[] = { OK(1), "this is not JSON\r\n", NULL };
        static const char *const silent[] = { OK(1), "", NULL };
        static const char *const closes[] = { OK(1), NULL };
        static const char *const none[] = { NULL };
        static const char *const unknown[] = { OK(1), "{\"return\": {\"status\": \"inmigrate\"}, \"id\": 2}\r\n", NULL };
        static char endless[POWER_QMP_MAX_MESSAGE + 64];
        const char *const oversize[] = { OK(1), endless, NULL };
        enum power_state st = POWER_STATE_ON;
        char why[256];
        uint64_t t0;
        int r;

        CHECK_EQ(qmp_play(GREETING, error, POWER_OP_STATUS, 5000, &st, why, sizeof(why), NULL, 0), -EIO);
        CHECK(strstr(why, "query-status: GenericError: \\x1b[2Jgone") != NULL);
        CHECK_EQ(qmp_play(GREETING, garbage, POWER_OP_RESET, 5000, &st, why, sizeof(why), NULL, 0), -EBADMSG);
        CHECK_EQ(qmp_play(OK(0), garbage, POWER_OP_STATUS, 5000, &st, why, sizeof(why), NULL, 0), -EPROTO);
        CHECK_EQ(qmp_play("{\"QMP\": {}}", none, POWER_OP_STATUS, 5000, &st, why, sizeof(why), NULL, 0),
                 -ECONNRESET);  /* a greeting without its line ending, then the end */
        t0 = now_monotonic_usec();
        CHECK_EQ(qmp_play(GREETING, silent, POWER_OP_STATUS, 300, &st, why, sizeof(why), NULL, 0), -ETIMEDOUT);
        CHECK(now_monotonic_usec() - t0 < 3 * USEC_PER_SEC);
        r = qmp_play(GREETING, closes, POWER_OP_SOFT_OFF, 5000, &st, why, sizeof(why), NULL, 0);
        CHECK(r == -ECONNRESET || r == -EPIPE);         /* gone before or after the command was sent */
        memset(endless, 'x', sizeof(endless) - 1);
        CHECK_EQ(qmp_play(GREETING, oversize, POWER_OP_STATUS, 5000, &st, why, sizeof(why), NULL, 0), -EMSGSIZE);
        CHECK_EQ(st, POWER_STATE_ON);   /* no failure filled it */
        CHECK_EQ(qmp_play(GREETING, unknown, POWER_OP_STATUS, 5000, &st, why, sizeof(why), NULL, 0), 0);
        CHECK_EQ(st, POWER_STATE_UNKNOWN);
        CHECK(strstr(why, "inmigrate") != NULL);
}

TEST(power_qemu_no_socket)
{
        struct power_target t = { .driver = POWER_DRIVER_QEMU };
        enum power_state st;
        char why[256];

        snprintf(t.socket, sizeof(t.socket), "%s/none.sock", test_tmpdir());
        CHECK_EQ(power_status(&t, &st, why, sizeof(why)), -ENOENT);
        CHECK(strstr(why, "is QEMU running") != NULL);
        memset(t.socket, 'a', 200);
        t.socket[0] = '/';
        t.socket[200] = '\0';
        CHECK_EQ(power_status(&t, &st, why, sizeof(why)), -ENAMETOOLONG);
}
