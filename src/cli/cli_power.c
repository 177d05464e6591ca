/* SPDX-License-Identifier: Apache-2.0 */
/* metald power: one power operation on one machine, named on the command line. */
#include <getopt.h>
#include <stdio.h>

#include "metald/cli.h"
#include "metald/power.h"
#include "metald/util.h"

static const char usage_text[] =
        "usage: metald power status|on|off|cycle|reset|soft-off --driver qemu --socket PATH\n"
        "       metald power ACTION --driver ipmi --host HOST [--port N] --user USER --password-file FILE\n"
        "                          [--cipher-suite N]\n"
        "       metald power ACTION --driver manual\n"
        "\n"
        "  --timeout DURATION   time for the whole operation (default 20s)\n"
        "\n"
        "off is a hard power off; soft-off presses the ACPI power button. The BMC password\n"
        "is the first line of FILE, which must not be accessible to others. status prints on,\n"
        "off or unknown. Exit codes: 0 ok, 1 the operation failed (or needs an operator:\n"
        "the manual driver), 2 usage.\n";

static int set_text(char *dst, size_t cap, const char *value, const char *opt)
{
        if (str_copy(dst, cap, value) < 0)
                return cli_usage_error("value too long", opt);
        return 0;
}

static int set_number(const char *value, uint64_t min, uint64_t max, uint64_t *ret, const char *opt)
{
        if (parse_u64(value, min, max, ret) < 0)
                return cli_usage_error("not a number in range", opt);
        return 0;
}

/* One option into t: 0, or EXIT_USAGE. */
static int set_option(struct power_target *t, int c, const char *arg)
{
        uint64_t v, usec;

        switch (c) {
        case 'd':
                return power_driver_from_name(arg, &t->driver) < 0 ? cli_usage_error("unknown driver", arg) : 0;
        case 's':
                return set_text(t->socket, sizeof(t->socket), arg, "--socket");
        case 'H':
                return set_text(t->host, sizeof(t->host), arg, "--host");
        case 'u':
                return set_text(t->user, sizeof(t->user), arg, "--user");
        case 'f':
                return set_text(t->password_file, sizeof(t->password_file), arg, "--password-file");
        case 'p':
                if (set_number(arg, 1, 65535, &v, "--port") != 0)
                        return EXIT_USAGE;
                t->port = (uint16_t)v;
                return 0;
        case 'C':
                if (set_number(arg, 1, POWER_MAX_CIPHER_SUITE, &v, "--cipher-suite") != 0)
                        return EXIT_USAGE;
                t->cipher_suite = (uint8_t)v;
                return 0;
        case 't':
                if (parse_duration_usec(arg, &usec) < 0 || usec < USEC_PER_MSEC ||
                    usec / USEC_PER_MSEC > POWER_MAX_TIMEOUT_MS)
                        return cli_usage_error("not a duration from 1ms to 10m", arg);
                t->timeout_ms = (uint32_t)(usec / USEC_PER_MSEC);
                return 0;
        }
        return cli_usage_error("unknown option or missing value", NULL);
}

/* 0 to go on (*done after --help), or EXIT_USAGE. */
static int parse_args(int argc, char **argv, struct power_target *t, bool *done)
{
        static const struct option opts[] = {
                { "driver", required_argument, NULL, 'd' },        { "socket", required_argument, NULL, 's' },
                { "host", required_argument, NULL, 'H' },          { "port", required_argument, NULL, 'p' },
                { "user", required_argument, NULL, 'u' },          { "password-file", required_argument, NULL, 'f' },
                { "cipher-suite", required_argument, NULL, 'C' },  { "timeout", required_argument, NULL, 't' },
                { "help", no_argument, NULL, 'h' },                {},
        };
        bool have_driver = false;
        int c, r;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+h", opts, NULL)) >= 0) {
                if (c == 'h') {
                        fputs(usage_text, stdout);
                        *done = true;
                        return 0;
                }
                if (c == '?' || c == ':')
                        return cli_usage_error("unknown option or missing value", argv[optind - 1]);
                if ((r = set_option(t, c, optarg)) != 0)
                        return r;
                have_driver = have_driver || c == 'd';
        }
        if (optind < argc)
                return cli_usage_error("unexpected argument", argv[optind]);
        if (!have_driver)
                return cli_usage_error("--driver manual|qemu|ipmi is required", NULL);
        return 0;
}

int cli_power(int argc, char **argv)
{
        struct power_target t = { 0 };
        enum power_state st = POWER_STATE_UNKNOWN;
        enum power_op op;
        char why[1024];
        bool done = false;
        int r;

        if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
                fputs(usage_text, argc < 2 ? stderr : stdout);
                return argc < 2 ? EXIT_USAGE : EXIT_OK;
        }
        if (power_op_from_name(argv[1], &op) < 0)
                return cli_usage_error("unknown power action", argv[1]);
        if ((r = parse_args(argc - 1, argv + 1, &t, &done)) != 0 || done)
                return r;
        if (power_target_check(&t, why, sizeof(why)) < 0)
                return cli_usage_error(why, NULL);
        r = power_run(&t, op, &st, why, sizeof(why));
        if (r < 0) {
                fprintf(stderr, "metald: power %s: %s\n", power_op_name(op), why);
                return EXIT_FAILED;
        }
        if (op == POWER_OP_STATUS && st == POWER_STATE_UNKNOWN && *why)
                fprintf(stderr, "metald: power status: %s\n", why);
        if (op == POWER_OP_STATUS)
                printf("%s\n", power_state_name(st));
        else
                printf("%s: done\n", power_op_name(op));
        return EXIT_OK;
}
