/* SPDX-License-Identifier: Apache-2.0 */
#include <getopt.h>
#include <stdio.h>

#include "metald/cli.h"
#include "metald/config.h"
#include "metald/daemon.h"
#include "metald/initramfs.h"
#include "metald/log.h"
#include "metald/preflight.h"
#include "metald/util.h"
#include "metald/version.h"

/* Reads --config FILE (the only option these commands take): 0 to go on (*done after --help), or EXIT_USAGE. */
static int parse_config_opt(int argc, char **argv, const char **ret_path, bool *done)
{
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;

        *ret_path = CLI_DEFAULT_CONFIG;
        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        *ret_path = optarg;
                        break;
                case 'h':
                        cli_usage(stdout);
                        *done = true;
                        return 0;
                default:
                        return cli_usage_error("unknown option or missing value", argv[optind - 1]);
                }
        }
        if (optind < argc)
                return cli_usage_error("unexpected argument", argv[optind]);
        return 0;
}

static int load_config(const char *path, struct config **ret)
{
        char err[1024];

        if (config_load_file(path, ret, err, sizeof(err)) < 0) {
                fprintf(stderr, "metald: %s\n", err);
                return EXIT_USAGE;
        }
        return 0;
}

static int cmd_serve(int argc, char **argv)
{
        struct config *cfg = NULL;
        const char *path;
        bool done = false;
        int r;

        if ((r = parse_config_opt(argc, argv, &path, &done)) != 0 || done)
                return r;
        if ((r = load_config(path, &cfg)) != 0)
                return r;
        r = daemon_run(cfg);
        config_free(cfg);
        return r;
}

/* One line per finding on stderr; EXIT_USAGE after any error, else "ok" and how many warnings. */
static int check_files(const char *path, const struct config *cfg)
{
        struct preflight_report rep;
        int r;

        if (preflight_run(cfg, PREFLIGHT_INITRAMFS, &rep) < 0) {
                fprintf(stderr, "metald: out of memory\n");
                return EXIT_FAILED;
        }
        for (size_t i = 0; i < rep.n; i++)
                fprintf(stderr, "metald: %s: %s: %s\n", preflight_severity_name(rep.findings[i].severity),
                        rep.findings[i].file, rep.findings[i].what);
        if (!rep.n_errors && rep.n_warnings)
                printf("%s: ok (%zu warning%s)\n", path, rep.n_warnings, rep.n_warnings == 1 ? "" : "s");
        else if (!rep.n_errors)
                printf("%s: ok\n", path);
        r = rep.n_errors ? EXIT_USAGE : EXIT_OK;
        preflight_report_free(&rep);
        return r;
}

static int cmd_config(int argc, char **argv)
{
        struct config *cfg = NULL;
        const char *path;
        bool done = false;
        int r;

        if (argc < 2 || strcmp(argv[1], "check") != 0)
                return cli_usage_error("unknown config command", argc < 2 ? "(none)" : argv[1]);
        if ((r = parse_config_opt(argc - 1, argv + 1, &path, &done)) != 0 || done)
                return r;
        if ((r = load_config(path, &cfg)) != 0)
                return r;
        r = check_files(path, cfg);
        config_free(cfg);
        return r;
}

int cli_main(int argc, char **argv)
{
        static const struct {
                const char *name;
                int (*fn)(int argc, char **argv);
        } commands[] = {
                { "serve", cmd_serve },
                { "config", cmd_config },
                { "status", cli_control },
                { "machine", cli_control },
                { "enroll-image", cli_enroll_image },
                { "image", cli_image },
                { "power", cli_power },
        };

        log_setup("metald");
        if (argc < 2)
                return cli_usage_error("no command given", NULL);
        if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
                printf("metald %s\n", METALD_VERSION);
                return EXIT_OK;
        }
        if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
                cli_usage(stdout);
                return EXIT_OK;
        }
        for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
                if (strcmp(argv[1], commands[i].name) == 0)
                        return commands[i].fn(argc - 1, argv + 1);
        return cli_usage_error("unknown command", argv[1]);
}
