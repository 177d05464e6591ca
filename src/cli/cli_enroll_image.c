/* SPDX-License-Identifier: Apache-2.0 */
#include <getopt.h>
#include <stdio.h>

#include "metald/cli.h"
#include "metald/config.h"
#include "metald/initramfs.h"
#include "metald/util.h"

#define DEFAULT_CONFIG "/etc/metald/metald.yaml"

static const char usage_text[] =
        "usage: metald enroll-image build [--config FILE] [--output PATH]\n"
        "\n"
        "Builds the enrollment initramfs that boot.enroll.build describes, as metald serve\n"
        "does: into STATE_DIR/enroll/, reusing an image built from the same inputs, or into\n"
        "PATH with --output. Prints its path, size and SHA-256.\n";

struct enroll_args {
        const char *config, *output;
};

/* 0 to go on (*ret_done after --help), or EXIT_USAGE. */
static int parse_args(int argc, char **argv, struct enroll_args *a, bool *ret_done)
{
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' },
                { "output", required_argument, NULL, 'o' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;

        *a = (struct enroll_args){ .config = DEFAULT_CONFIG };
        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "c:o:h", opts, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        a->config = optarg;
                        break;
                case 'o':
                        a->output = optarg;
                        break;
                case 'h':
                        fputs(usage_text, stdout);
                        *ret_done = true;
                        return 0;
                default:
                        return cli_usage_error("unknown option or missing value", argv[optind - 1]);
                }
        }
        if (optind < argc)
                return cli_usage_error("unexpected argument", argv[optind]);
        if (a->output && !*a->output)
                return cli_usage_error("--output needs a path", NULL);
        return 0;
}

static int build(const struct config *cfg, const struct enroll_args *a, struct initramfs_result *res, char *why,
                 size_t why_len)
{
        _cleanup_free_ struct initramfs_spec *spec = calloc(1, sizeof(*spec));
        struct initramfs_plan plan = { 0 };
        char dir[CONFIG_MAX_PATH_BYTES];
        int r;

        if (!spec)
                return -ENOMEM;
        initramfs_spec_from_config(&cfg->boot.enroll.build, spec);
        initramfs_spec_keys_from_config(&cfg->images, spec);
        if (!a->output) {
                if ((size_t)snprintf(dir, sizeof(dir), "%s/enroll", cfg->state_dir) >= sizeof(dir)) {
                        snprintf(why, why_len, "state_dir is longer than %d bytes", CONFIG_MAX_PATH_BYTES - 9);
                        return -ENAMETOOLONG;
                }
                return initramfs_ensure_dir(spec, dir, res, why, why_len);
        }
        r = initramfs_plan(spec, &plan, why, why_len);
        if (r == 0)
                r = initramfs_write(&plan, a->output, res, why, why_len);
        initramfs_plan_free(&plan);
        return r;
}

int cli_enroll_image(int argc, char **argv)
{
        _cleanup_free_ struct initramfs_result *res = calloc(1, sizeof(*res));
        struct config *cfg = NULL;
        struct enroll_args a;
        char err[1024], why[1024];
        bool done = false;
        int r;

        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
                fputs(usage_text, stdout);
                return EXIT_OK;
        }
        if (argc < 2 || strcmp(argv[1], "build") != 0)
                return cli_usage_error("unknown enroll-image command", argc < 2 ? "(none)" : argv[1]);
        if ((r = parse_args(argc - 1, argv + 1, &a, &done)) != 0 || done)
                return r;
        if (!res)
                return EXIT_FAILED;
        if (config_load_file(a.config, &cfg, err, sizeof(err)) < 0) {
                fprintf(stderr, "metald: %s\n", err);
                return EXIT_USAGE;
        }
        if (!cfg->boot.enroll.build.enabled) {
                fprintf(stderr, "metald: %s: boot.enroll.build is not configured\n", a.config);
                config_free(cfg);
                return EXIT_USAGE;
        }
        r = build(cfg, &a, res, why, sizeof(why));
        config_free(cfg);
        if (r < 0) {
                fprintf(stderr, "metald: enroll-image: %s\n", *why ? why : strerror(-r));
                return EXIT_FAILED;
        }
        printf("%s %s\n", res->built ? "built" : "reused", res->path);
        printf("size: %llu\nsha256: %s\nmodules: %zu\nlibraries: %zu\nseconds: %.2f\n", (unsigned long long)res->size,
               res->sha256_hex, res->n_modules, res->n_libraries, res->seconds);
        return EXIT_OK;
}
