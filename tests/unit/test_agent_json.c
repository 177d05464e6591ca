/* SPDX-License-Identifier: Apache-2.0 */
#include <json-c/json.h>
#include <stdlib.h>

#include "metald/agent.h"
#include "metald/util.h"
#include "test.h"

#define SESSION "Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmE"
#define WAIT "{\"action\":\"wait\",\"reason\":\"waiting for approval\"}"
#define SHA "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define IMAGE_URL "http://10.0.0.1:8080/_metald/images/debian-worker/7"
/* An install image with the given disk rule, hostname and extra fields. */
#define IMAGE_WITH(disk, host, extra)                                                                         \
        "{\"name\":\"debian-worker\",\"version\":7,\"url\":\"" IMAGE_URL "\",\"sha256\":\"" SHA "\","              \
        "\"size\":1048576,\"disk\":\"" disk "\",\"allow_removable\":false,\"hostname\":\"" host "\"" extra "}"
#define IMAGE IMAGE_WITH("sda", "web-1", "")
#define INSTALL_WITH(image) \
        "{\"state\":\"a\",\"heartbeat_seconds\":5,\"instruction\":{\"action\":\"install\",\"image\":" image "}}"
/* The image's fields but one replaced: name, value as JSON text. */
#define IMG(n, v, u, sh, sz, d, ar, h)                                                                 \
        "{\"name\":" n ",\"version\":" v ",\"url\":" u ",\"sha256\":" sh ",\"size\":" sz ",\"disk\":" d \
        ",\"allow_removable\":" ar ",\"hostname\":" h "}"
#define N "\"debian-worker\""
#define V "7"
#define U "\"" IMAGE_URL "\""
#define SH "\"" SHA "\""
#define SZ "1048576"
#define D "\"sda\""
#define AR "false"
#define H "\"web-1\""

struct reply_case {
        enum agent_call call;
        const char *body;
        bool ok;
        const char *why;        /* a substring of the reason, for refusals */
};

static const struct reply_case reply_cases[] = {
        /* well-formed */
        { AGENT_CALL_REGISTER, "{\"machine\":\"m-525400123456\",\"session\":\"" SESSION "\",\"state\":\"registered\","
                               "\"heartbeat_seconds\":10,\"instruction\":" WAIT "}", true, NULL },
        { AGENT_CALL_HEARTBEAT, " {\"state\":\"approved\",\"heartbeat_seconds\":3600,"
                                "\"instruction\":{\"action\":\"wait\"}}\r\n", true, NULL },
        { AGENT_CALL_INSTRUCTION, "{\"state\":\"ready\",\"instruction\":{\"action\":\"reboot\",\"reason\":\"boot\"}}",
          true, NULL },
        { AGENT_CALL_HEARTBEAT, "{\"machine\":\"web-1\",\"state\":\"approved\",\"heartbeat_seconds\":10,"
                                "\"instruction\":{\"action\":\"wait\",\"reason\":\"\"}}", true, NULL },
        { AGENT_CALL_EVENT, "{\"machine\":\"web/1\",\"state\":\"approved\",\"instruction\":" WAIT "}", false,
          "\"machine\"" },
        { AGENT_CALL_EVENT, "{\"state\":\"retired\",\"heartbeat_seconds\":1,\"instruction\":"
                            "{\"action\":\"poweroff\",\"reason\":\"retired\"}}", true, NULL },
        { AGENT_CALL_HEARTBEAT, "{\"state\":\"approved\",\"heartbeat_seconds\":5,\"instruction\":"
                                "{\"action\":\"install\",\"reason\":\"go\",\"image\":" IMAGE "}}", true, NULL },
        /* shape */
        { AGENT_CALL_HEARTBEAT, "", false, "complete" },
        { AGENT_CALL_HEARTBEAT, "[]", false, "one JSON object" },
        { AGENT_CALL_HEARTBEAT, "\"wait\"", false, "one JSON object" },
        { AGENT_CALL_HEARTBEAT, "42 ", false, NULL },
        { AGENT_CALL_HEARTBEAT, "null", false, NULL },
        { AGENT_CALL_HEARTBEAT, "{\"state\":\"a\",\"heartbeat_seconds\":5,\"instruction\":" WAIT "} {}", false,
          NULL },
        { AGENT_CALL_HEARTBEAT, "{\"state\":\"a\",\"heartbeat_seconds\":5,\"instruction\":" WAIT "} x", false,
          NULL },
        { AGENT_CALL_HEARTBEAT, "{\"state\":\"a\",\"heartbeat_seconds\":5,\"instruction\":" WAIT, false,
          "complete" },
        { AGENT_CALL_HEARTBEAT, "{'state':'a'}", false, "valid JSON" },
        { AGENT_CALL_HEARTBEAT, "{\"state\":\"a\",\"heartbeat_seconds\":5,\"instruction\":" WAIT ",}", false,
          "valid JSON" },
        { AGENT_CALL_HEARTBEAT, "{\"state\":\"a\",\"heartbeat_seconds\":NaN,\"instruction\":" WAIT "}", false,
          NULL },
        /* fields */
        { AGENT_CALL_HEARTBEAT, "{\"state\":\"a\",\"instruction\":" WAIT "}", false,
          "missing field \"heartbeat_seconds\"" },
        { AGENT_CALL_HEARTBEAT, "{\"state\":\"a\",\"heartbeat_seconds\":5,\"instruction\":" WAIT ",\"x\":1}", false,
          "unknown field \"x\"" },
        { AGENT_CALL_HEARTBEAT, "{\"state\":\"a\",\"heartbeat_seconds\":5,\"instruction\":" WAIT
                                ",\"session\":\"" SESSION "\"}", false, "unknown field \"session\"" },
        { AGENT_CALL_REGISTER, "{\"machine\":\"m-1\",\"state\":\"registered\",\"heartbeat_seconds\":10,"
                               "\"instruction\":" WAIT "}", false, "missing field \"session\"" },
        { AGENT_CALL_HEARTBEAT, "{\"state\":\"a\",\"heartbeat_seconds\":\"5\",\"instruction\":" WAIT "}", false,
          "is not an integer" },
        { AGENT_CALL_HEARTBEAT, "{\"state\":\"a\",\"heartbeat_seconds\":5.0,\"instruction\":" WAIT "}", false,
          "is not an integer" },
        { AGENT_CALL_HEARTBEAT, "{\"state\":\"a\",\"heartbeat_seconds\":null,\"instruction\":" WAIT "}", false,
          "is not an integer" },
        { AGENT_CALL_HEARTBEAT, "{\"state\":1,\"heartbeat_seconds\":5,\"instruction\":" WAIT "}", false,
          "is not a string" },
        { AGENT_CALL_HEARTBEAT, "{\"state\":\"a\",\"heartbeat_seconds\":5,\"instruction\":[]}", false,
          "is not an object" },
        { AGENT_CALL_HEARTBEAT, "{\"state\":\"a\",\"heartbeat_seconds\":0,\"instruction\":" WAIT "}", false,
          "out of range" },
        { AGENT_CALL_HEARTBEAT, "{\"state\":\"a\",\"heartbeat_seconds\":3601,\"instruction\":" WAIT "}", false,
          "out of range" },
        { AGENT_CALL_HEARTBEAT, "{\"state\":\"a\",\"heartbeat_seconds\":-5,\"instruction\":" WAIT "}", false,
          "out of range" },
        { AGENT_CALL_HEARTBEAT, "{\"state\":\"a\",\"heartbeat_seconds\":99999999999999999999999,\"instruction\":"
                                WAIT "}", false, NULL },
        { AGENT_CALL_HEARTBEAT, "{\"state\":\"\",\"heartbeat_seconds\":5,\"instruction\":" WAIT "}", false,
          "invalid value" },
        { AGENT_CALL_HEARTBEAT, "{\"state\":\"a b\",\"heartbeat_seconds\":5,\"instruction\":" WAIT "}", false,
          "invalid value" },
        { AGENT_CALL_HEARTBEAT, "{\"state\":\"a\\u0000b\",\"heartbeat_seconds\":5,\"instruction\":" WAIT "}",
          false, "invalid value" },
        { AGENT_CALL_HEARTBEAT, "{\"state\":\"\xff\",\"heartbeat_seconds\":5,\"instruction\":" WAIT "}", false,
          "valid JSON" },
        { AGENT_CALL_REGISTER, "{\"machine\":\"../etc\",\"session\":\"" SESSION "\",\"state\":\"registered\","
                               "\"heartbeat_seconds\":10,\"instruction\":" WAIT "}", false, "invalid value" },
        { AGENT_CALL_REGISTER, "{\"machine\":\"m-1\",\"session\":\"short\",\"state\":\"registered\","
                               "\"heartbeat_seconds\":10,\"instruction\":" WAIT "}", false, "\"session\"" },
        { AGENT_CALL_REGISTER, "{\"machine\":\"m-1\",\"session\":\"" SESSION "\\r\\nX-Evil: 1\",\"state\":\"r\","
                               "\"heartbeat_seconds\":10,\"instruction\":" WAIT "}", false, "\"session\"" },
        /* instructions */
        { AGENT_CALL_HEARTBEAT, "{\"state\":\"a\",\"heartbeat_seconds\":5,\"instruction\":{\"action\":\"format\"}}",
          false, "unknown instruction action \"format\"" },
        { AGENT_CALL_HEARTBEAT, "{\"state\":\"a\",\"heartbeat_seconds\":5,\"instruction\":{\"action\":\"WAIT\"}}",
          false, "unknown instruction action" },
        { AGENT_CALL_HEARTBEAT, "{\"state\":\"a\",\"heartbeat_seconds\":5,\"instruction\":{\"reason\":\"x\"}}",
          false, "missing field \"instruction.action\"" },
        { AGENT_CALL_HEARTBEAT, "{\"state\":\"a\",\"heartbeat_seconds\":5,\"instruction\":{\"action\":\"wait\","
                                "\"reason\":\"line\\nbreak\"}}", false, "instruction.reason" },
        { AGENT_CALL_HEARTBEAT, "{\"state\":\"a\",\"heartbeat_seconds\":5,\"instruction\":{\"action\":\"wait\","
                                "\"delay\":5}}", false, "unknown field \"instruction.delay\"" },
        { AGENT_CALL_HEARTBEAT, "{\"state\":\"a\",\"heartbeat_seconds\":5,\"instruction\":{\"action\":\"install\"}}",
          false, "without an image" },
        { AGENT_CALL_HEARTBEAT, "{\"state\":\"a\",\"heartbeat_seconds\":5,\"instruction\":{\"action\":\"wait\","
                                "\"image\":" IMAGE "}}", false, "wait instruction with an image" },
        /* the image of an install */
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMG(N, V, "\"ftp://x/y\"", SH, SZ, D, AR, H)), false,
          "instruction.image.url" },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMG(N, V, U, "\"abc\"", SZ, D, AR, H)), false,
          "instruction.image.sha256" },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMG(N, V, U, SH, "0", D, AR, H)), false, "instruction.image.size" },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMG(N, V, U, SH, "-1", D, AR, H)), false, "instruction.image.size" },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMG(N, V, U, SH, "17592186044417", D, AR, H)), false,
          "instruction.image.size" },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMG(N, V, U, SH, "\"1\"", D, AR, H)), false, "is not an integer" },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMG(N, "0", U, SH, SZ, D, AR, H)), false, "instruction.image.version" },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMG(N, "9007199254740992", U, SH, SZ, D, AR, H)), false,
          "instruction.image.version" },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMG(N, "7.5", U, SH, SZ, D, AR, H)), false, "is not an integer" },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMG("\"Debian\"", V, U, SH, SZ, D, AR, H)), false,
          "instruction.image.name" },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMG("\"-x\"", V, U, SH, SZ, D, AR, H)), false, "instruction.image.name" },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMG("\"a/b\"", V, U, SH, SZ, D, AR, H)), false,
          "instruction.image.name" },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMG("\"\"", V, U, SH, SZ, D, AR, H)), false, "instruction.image.name" },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMG(N, V, U, SH, SZ, D, "1", H)), false, "is not a boolean" },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMG(N, V, U, SH, SZ, D, "\"true\"", H)), false, "is not a boolean" },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMG(N, V, U, SH, SZ, D, "null", H)), false, "is not a boolean" },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMG(N, V, U, SH, SZ, D, AR, "\"\"")), false,
          "instruction.image.hostname" },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMG(N, V, U, SH, SZ, D, AR, "\"Web-1\"")), false,
          "instruction.image.hostname" },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMG(N, V, U, SH, SZ, D, AR, "\"web_1\"")), false,
          "instruction.image.hostname" },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMG(N, V, U, SH, SZ, D, AR, "\"a;reboot\"")), false,
          "instruction.image.hostname" },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMAGE_WITH("sda", "web-1", ",\"kubeconfig\":\"x\"")), false,
          "unknown field \"instruction.image.kubeconfig\"" },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH("{\"name\":" N ",\"version\":" V ",\"url\":" U ",\"sha256\":" SH
                                             ",\"size\":" SZ ",\"disk\":" D ",\"hostname\":" H "}"),
          false, "missing field \"instruction.image.allow_removable\"" },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH("{\"name\":" N ",\"version\":" V ",\"url\":" U ",\"sha256\":" SH
                                             ",\"size\":" SZ ",\"allow_removable\":" AR ",\"hostname\":" H "}"),
          false, "missing field \"instruction.image.disk\"" },
        /* disk rules */
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMAGE_WITH("largest", "web-1", "")), true, NULL },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMAGE_WITH("nvme", "web-1", "")), true, NULL },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMAGE_WITH("nvme0n1", "web-1", "")), true, NULL },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMAGE_WITH("serial=QM 00001", "web-1", "")), true, NULL },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMAGE_WITH("path=/dev/disk/by-path/pci-0000:00:1f.2-ata-1", "w", "")),
          true, NULL },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMAGE_WITH("path=/dev/disk/by-id/wwn-0x5000c500a1b2c3d4", "w", "")),
          true, NULL },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMAGE_WITH("../../dev/mem", "web-1", "")), false,
          "instruction.image.disk" },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMAGE_WITH("/dev/sda", "web-1", "")), false, "instruction.image.disk" },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMAGE_WITH("", "web-1", "")), false, "instruction.image.disk" },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMAGE_WITH("serial=", "web-1", "")), false, "instruction.image.disk" },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMAGE_WITH("serial=\\u0007", "web-1", "")), false,
          "instruction.image.disk" },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMAGE_WITH("path=/dev/sda", "web-1", "")), false,
          "instruction.image.disk" },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMAGE_WITH("path=/dev/disk/by-id/../../mem", "web-1", "")), false,
          "instruction.image.disk" },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMAGE_WITH("path=/dev/disk/by-id/..", "web-1", "")), false,
          "instruction.image.disk" },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMAGE_WITH("path=/dev/disk/by-uuid/1234", "web-1", "")), false,
          "instruction.image.disk" },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMAGE_WITH("sda sdb", "web-1", "")), false, "instruction.image.disk" },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMAGE_WITH("Largest=1", "web-1", "")), false, "instruction.image.disk" },
        { AGENT_CALL_HEARTBEAT, INSTALL_WITH(IMAGE_WITH("abcdefghijabcdefghijabcdefghijabc", "web-1", "")), false,
          "instruction.image.disk" },
};

static bool contains(const char *haystack, const char *needle)
{
        return !needle || strstr(haystack, needle);
}

TEST(agent_response_table)
{
        for (size_t i = 0; i < ARRAY_SIZE(reply_cases); i++) {
                const struct reply_case *c = &reply_cases[i];
                struct agent_response r;
                char why[256] = "";
                int e = agent_response_parse(c->call, c->body, strlen(c->body), &r, why, sizeof(why));

                if ((e == 0) != c->ok || (!c->ok && (e != -EBADMSG || !contains(why, c->why)))) {
                        fprintf(stderr, "  case %zu: %s -> %d (%s)\n", i, c->body, e, why);
                        CHECK(false);
                }
        }
}

TEST(agent_response_fields)
{
        const char *body = reply_cases[0].body;
        struct agent_response r;
        char why[256];

        CHECK_EQ(agent_response_parse(AGENT_CALL_REGISTER, body, strlen(body), &r, why, sizeof(why)), 0);
        CHECK_STREQ(r.machine, "m-525400123456");
        CHECK_STREQ(r.session, SESSION);
        CHECK_STREQ(r.state, "registered");
        CHECK_EQ(r.heartbeat_seconds, 10);
        CHECK_EQ(r.instruction.action, AGENT_ACTION_WAIT);
        CHECK_STREQ(r.instruction.reason, "waiting for approval");
        agent_response_wipe(&r);
        CHECK_STREQ(r.session, "");

        body = reply_cases[2].body;
        CHECK_EQ(agent_response_parse(AGENT_CALL_INSTRUCTION, body, strlen(body), &r, why, sizeof(why)), 0);
        CHECK_EQ(r.heartbeat_seconds, 0);
        CHECK_STREQ(r.machine, "");
        CHECK_STREQ(r.session, "");
        CHECK_EQ(r.instruction.action, AGENT_ACTION_REBOOT);

        body = reply_cases[6].body;
        CHECK_EQ(agent_response_parse(AGENT_CALL_HEARTBEAT, body, strlen(body), &r, why, sizeof(why)), 0);
        CHECK_EQ(r.instruction.action, AGENT_ACTION_INSTALL);
        CHECK_STREQ(r.instruction.image.name, "debian-worker");
        CHECK_EQ(r.instruction.image.version, 7);
        CHECK_STREQ(r.instruction.image.url, IMAGE_URL);
        CHECK_STREQ(r.instruction.image.sha256, SHA);
        CHECK_EQ(r.instruction.image.size, 1048576);
        CHECK_STREQ(r.instruction.image.disk, "sda");
        CHECK(!r.instruction.image.allow_removable);
        CHECK_STREQ(r.instruction.image.hostname, "web-1");

        body = INSTALL_WITH(IMG(N, "9007199254740991", U, SH, "17592186044416", "\"serial=S 1\"", "true", H));
        CHECK_EQ(agent_response_parse(AGENT_CALL_HEARTBEAT, body, strlen(body), &r, why, sizeof(why)), 0);
        CHECK_EQ(r.instruction.image.version, 9007199254740991LL);
        CHECK_EQ(r.instruction.image.size, 17592186044416LL);
        CHECK(r.instruction.image.allow_removable);
        CHECK_STREQ(r.instruction.image.disk, "serial=S 1");

        /* a call of another kind does not accept the register shape */
        body = reply_cases[0].body;
        CHECK_EQ(agent_response_parse(AGENT_CALL_HEARTBEAT, body, strlen(body), &r, why, sizeof(why)), -EBADMSG);
}

static char *repeat(const char *prefix, char c, size_t n, const char *suffix)
{
        size_t lp = strlen(prefix), ls = strlen(suffix);
        char *s = malloc(lp + n + ls + 1);

        if (!s)
                return NULL;
        memcpy(s, prefix, lp);
        memset(s + lp, c, n);
        memcpy(s + lp + n, suffix, ls + 1);
        return s;
}

TEST(agent_response_hostile_sizes)
{
        struct agent_response r;
        char why[256];
        char *s;

        /* a reason of the longest accepted length, and one byte more */
        s = repeat("{\"state\":\"a\",\"heartbeat_seconds\":5,\"instruction\":{\"action\":\"wait\",\"reason\":\"", 'r',
                   AGENT_MAX_REASON, "\"}}");
        CHECK(s);
        CHECK_EQ(agent_response_parse(AGENT_CALL_HEARTBEAT, s, strlen(s), &r, why, sizeof(why)), 0);
        CHECK_EQ(strlen(r.instruction.reason), AGENT_MAX_REASON);
        free(s);
        s = repeat("{\"state\":\"a\",\"heartbeat_seconds\":5,\"instruction\":{\"action\":\"wait\",\"reason\":\"", 'r',
                   AGENT_MAX_REASON + 1, "\"}}");
        CHECK(s);
        CHECK_EQ(agent_response_parse(AGENT_CALL_HEARTBEAT, s, strlen(s), &r, why, sizeof(why)), -EBADMSG);
        CHECK(strstr(why, "longer than"));
        free(s);
        /* a machine name of 64 bytes */
        s = repeat("{\"machine\":\"", 'm', AGENT_MAX_MACHINE_NAME + 1,
                   "\",\"session\":\"" SESSION "\",\"state\":\"r\",\"heartbeat_seconds\":1,\"instruction\":" WAIT "}");
        CHECK(s);
        CHECK_EQ(agent_response_parse(AGENT_CALL_REGISTER, s, strlen(s), &r, why, sizeof(why)), -EBADMSG);
        free(s);
        /* over the body cap */
        s = repeat("{\"state\":\"", 's', AGENT_MAX_BODY_BYTES, "\"}");
        CHECK(s);
        CHECK_EQ(agent_response_parse(AGENT_CALL_HEARTBEAT, s, strlen(s), &r, why, sizeof(why)), -EBADMSG);
        CHECK(strstr(why, "over"));
        free(s);
        /* deep nesting, inside and outside the known fields */
        s = repeat("{\"state\":\"a\",\"heartbeat_seconds\":5,\"instruction\":" WAIT ",\"x\":", '[', 5000, "");
        CHECK(s);
        CHECK_EQ(agent_response_parse(AGENT_CALL_HEARTBEAT, s, strlen(s), &r, why, sizeof(why)), -EBADMSG);
        free(s);
        s = repeat("", '{', 100000, "");
        CHECK(s);
        CHECK_EQ(agent_response_parse(AGENT_CALL_HEARTBEAT, s, strlen(s), &r, why, sizeof(why)), -EBADMSG);
        free(s);
        /* binary: a NUL byte inside the body */
        CHECK_EQ(agent_response_parse(AGENT_CALL_HEARTBEAT, "{}\0{}", 5, &r, why, sizeof(why)), -EBADMSG);
}

static int error_parse(const char *body, char *out, size_t cap)
{
        return agent_error_parse(body, strlen(body), out, cap);
}

TEST(agent_error_parse)
{
        char out[128];

        CHECK_EQ(error_parse("{\"error\":\"unknown or already used nonce\"}", out, sizeof(out)), 0);
        CHECK_STREQ(out, "unknown or already used nonce");
        CHECK_EQ(error_parse("{\"error\":\"caf\xc3\xa9 \\\"x\\\"\"}", out, sizeof(out)), 0);
        CHECK_STREQ(out, "caf\\xc3\\xa9 \\x22x\\x22");
        CHECK_EQ(error_parse("{\"error\":5}", out, sizeof(out)), -EBADMSG);
        CHECK_EQ(error_parse("{\"error\":\"a\",\"b\":1}", out, sizeof(out)), -EBADMSG);
        CHECK_EQ(error_parse("<html>", out, sizeof(out)), -EBADMSG);
        CHECK_EQ(error_parse("", out, sizeof(out)), -EBADMSG);
}

TEST(agent_requests)
{
        struct buf b = BUF_INIT(AGENT_MAX_BODY_BYTES);

        CHECK_EQ(agent_heartbeat_request(-1, NULL, &b), 0);
        CHECK_STREQ(b.data, "{}");
        buf_reset(&b);
        CHECK_EQ(agent_heartbeat_request(150, "  waiting\n for\tsomething ", &b), 0);
        CHECK_STREQ(b.data, "{\"progress\":100,\"status\":\"waiting  for something\"}");
        buf_reset(&b);
        CHECK_EQ(agent_event_request(AGENT_EVENT_INSTALL_FAILED, "not /available \"here\"", -1, &b), 0);
        CHECK_STREQ(b.data, "{\"event\":\"install-failed\",\"detail\":\"not /available \\\"here\\\"\"}");
        buf_reset(&b);
        CHECK_EQ(agent_event_request(AGENT_EVENT_INSTALL_PROGRESS, NULL, 42, &b), 0);
        CHECK_STREQ(b.data, "{\"event\":\"install-progress\",\"progress\":42}");
        CHECK_EQ(agent_event_request(_AGENT_EVENT_MAX, NULL, 1, &b), -EINVAL);
        buf_free(&b);
        CHECK_STREQ(agent_event_name(AGENT_EVENT_LOG), "log");
        CHECK_STREQ(agent_action_name(AGENT_ACTION_POWEROFF), "poweroff");
        CHECK_STREQ(agent_action_name((enum agent_action)99), "?");
}

TEST(agent_instruction_equal)
{
        struct agent_instruction a = { .action = AGENT_ACTION_WAIT }, b = a;

        str_copy(a.reason, sizeof(a.reason), "waiting for approval");
        b = a;
        CHECK(agent_instruction_equal(&a, &b));
        str_copy(b.reason, sizeof(b.reason), "approved");
        CHECK(!agent_instruction_equal(&a, &b));
        b = a;
        b.action = AGENT_ACTION_REBOOT;
        CHECK(!agent_instruction_equal(&a, &b));
        a.action = b.action = AGENT_ACTION_INSTALL;
        str_copy(a.image.url, sizeof(a.image.url), "http://x/1");
        b = a;
        CHECK(agent_instruction_equal(&a, &b));
        b.image.size = 7;
        CHECK(!agent_instruction_equal(&a, &b));
        b = a;
        b.image.allow_removable = true;
        CHECK(!agent_instruction_equal(&a, &b));
        b = a;
        str_copy(b.image.hostname, sizeof(b.image.hostname), "web-2");
        CHECK(!agent_instruction_equal(&a, &b));
        b = a;
        b.image.version = 8;
        CHECK(!agent_instruction_equal(&a, &b));
}
