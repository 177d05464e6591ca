/* SPDX-License-Identifier: Apache-2.0 */
#include <curl/curl.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>

#include "metald/agent.h"
#include "metald/agent_install.h"
#include "metald/log.h"
#include "metald/util.h"
#include "metald/version.h"

#define DEFAULT_CMDLINE "/proc/cmdline"
#define DEFAULT_KEYS_DIR "/etc/metald/trusted-keys"

static const char usage_text[] =
        "usage: metald-agent <command> [options]\n"
        "\n"
        "commands:\n"
        "  run [options]               register with metald and follow its instructions\n"
        "  inventory [--sysroot DIR]   print this machine's inventory as JSON\n"
        "  install [options]           install a signed image by hand (see install --help)\n"
        "  version                     print the version\n"
        "  help                        show this text\n"
        "\n"
        "run options:\n"
        "  --url URL          metald's HTTP service, http://HOST[:PORT] (default: metald.url=)\n"
        "  --mac MAC          the NIC this machine booted from (default: metald.mac=)\n"
        "  --nonce NONCE      the one-time boot nonce (default: metald.nonce=)\n"
        "  --cmdline FILE     read metald.* parameters from FILE (default " DEFAULT_CMDLINE ")\n"
        "  --sysroot DIR      read the inventory below DIR (default /)\n"
        "  --reboot-cmd CMD   how to reboot (default \"reboot -f\")\n"
        "  --poweroff-cmd CMD how to power off (default \"poweroff -f\")\n"
        "  --max-attempts N   give up after N failed calls in a row (default: never)\n"
        "  --keys DIR         trusted image keys, DIR/*.pub (default " DEFAULT_KEYS_DIR ")\n"
        "  --dev-dir DIR      where the disks' device nodes are (default /dev)\n"
        "  --state-file FILE  resume an interrupted install from FILE (put it on tmpfs; default: none)\n"
        "  --progress SECONDS period of install-progress events (default 5)\n"
        "  --log-level LEVEL  error, warning, notice, info or debug (default info)\n"
        "\n"
        "Exit codes: 0 ok, 1 operation failed, 2 usage or configuration error.\n";

enum {
        OPT_URL = 0x100, OPT_MAC, OPT_NONCE, OPT_CMDLINE, OPT_SYSROOT, OPT_REBOOT_CMD, OPT_POWEROFF_CMD,
        OPT_MAX_ATTEMPTS, OPT_LOG_LEVEL, OPT_HELP, OPT_KEYS, OPT_DEV_DIR, OPT_STATE_FILE, OPT_PROGRESS,
};

struct args {
        const char *url, *mac, *nonce, *cmdline, *sysroot, *reboot_cmd, *poweroff_cmd, *keys, *dev_dir, *state_file;
        unsigned max_attempts, progress_s;
        bool help;
};

/* Echoes arg, but never a value that could be the nonce (after '=' or a bare nonce-shaped word). */
static int usage_error(const char *what, const char *arg)
{
        char esc[256];

        if (arg && agent_nonce_check(arg) == 0)
                arg = "(not shown)";
        if (arg)
                log_escape(esc, sizeof(esc), arg, strcspn(arg, "="));
        fprintf(stderr, "metald-agent: %s%s%s\nTry 'metald-agent help'.\n", what, arg ? ": " : "", arg ? esc : "");
        return EXIT_USAGE;
}

static int parse_option(int c, struct args *a)
{
        uint64_t v;
        int level;

        switch (c) {
        case OPT_URL:
                a->url = optarg;
                break;
        case OPT_MAC:
                a->mac = optarg;
                break;
        case OPT_NONCE:
                a->nonce = optarg;
                break;
        case OPT_CMDLINE:
                a->cmdline = optarg;
                break;
        case OPT_SYSROOT:
                a->sysroot = optarg;
                break;
        case OPT_REBOOT_CMD:
                a->reboot_cmd = optarg;
                break;
        case OPT_POWEROFF_CMD:
                a->poweroff_cmd = optarg;
                break;
        case OPT_KEYS:
                a->keys = optarg;
                break;
        case OPT_DEV_DIR:
                a->dev_dir = optarg;
                break;
        case OPT_STATE_FILE:
                a->state_file = optarg;
                break;
        case OPT_PROGRESS:
                if (parse_u64(optarg, 1, 3600, &v) < 0)
                        return usage_error("--progress is not 1-3600 seconds", optarg);
                a->progress_s = (unsigned)v;
                break;
        case OPT_MAX_ATTEMPTS:
                if (parse_u64(optarg, 0, UINT32_MAX, &v) < 0)
                        return usage_error("--max-attempts is not a number", optarg);
                a->max_attempts = (unsigned)v;
                break;
        case OPT_LOG_LEVEL:
                level = log_level_from_string(optarg);
                if (level < 0)
                        return usage_error("unknown log level", optarg);
                log_set_level(level);
                break;
        case OPT_HELP:
                a->help = true;
                break;
        default:
                return usage_error("unknown option or missing value", NULL);
        }
        return 0;
}

static int parse_args(int argc, char **argv, bool run, struct args *ret)
{
        static const struct option run_opts[] = {
                { "url", required_argument, NULL, OPT_URL },
                { "mac", required_argument, NULL, OPT_MAC },
                { "nonce", required_argument, NULL, OPT_NONCE },
                { "cmdline", required_argument, NULL, OPT_CMDLINE },
                { "sysroot", required_argument, NULL, OPT_SYSROOT },
                { "reboot-cmd", required_argument, NULL, OPT_REBOOT_CMD },
                { "poweroff-cmd", required_argument, NULL, OPT_POWEROFF_CMD },
                { "max-attempts", required_argument, NULL, OPT_MAX_ATTEMPTS },
                { "keys", required_argument, NULL, OPT_KEYS },
                { "dev-dir", required_argument, NULL, OPT_DEV_DIR },
                { "state-file", required_argument, NULL, OPT_STATE_FILE },
                { "progress", required_argument, NULL, OPT_PROGRESS },
                { "log-level", required_argument, NULL, OPT_LOG_LEVEL },
                { "help", no_argument, NULL, OPT_HELP },
                {},
        };
        static const struct option inventory_opts[] = {
                { "sysroot", required_argument, NULL, OPT_SYSROOT },
                { "help", no_argument, NULL, OPT_HELP },
                {},
        };
        struct args a = { .sysroot = "/", .reboot_cmd = "reboot -f", .poweroff_cmd = "poweroff -f",
                          .keys = DEFAULT_KEYS_DIR, .dev_dir = "/dev", .progress_s = AGENT_INSTALL_PROGRESS_S };
        int c, r;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "", run ? run_opts : inventory_opts, NULL)) >= 0) {
                if (c == '?')
                        return usage_error("unknown option or missing value", argv[optind - 1]);
                r = parse_option(c, &a);
                if (r != 0)
                        return r;
        }
        if (optind < argc)
                return usage_error("unexpected argument", argv[optind]);
        *ret = a;
        return 0;
}

/* The kernel command line; a missing default file is no error (the options may say everything). */
static int read_cmdline(const char *path, bool required, struct agent_cmdline *ret)
{
        char text[AGENT_MAX_CMDLINE_BYTES + 1];
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        size_t n = 0;
        ssize_t k;
        int r;

        if (fd < 0) {
                if (required) {
                        fprintf(stderr, "metald-agent: cannot read %s: %s\n", path, strerror(errno));
                        return EXIT_USAGE;
                }
                return agent_cmdline_parse("", 0, ret) < 0 ? EXIT_FAILED : 0;
        }
        while (n < sizeof(text) && (k = read(fd, text + n, sizeof(text) - n)) != 0) {
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        fprintf(stderr, "metald-agent: cannot read %s: %s\n", path, strerror(errno));
                        return EXIT_USAGE;
                }
                n += (size_t)k;
        }
        if (n > AGENT_MAX_CMDLINE_BYTES) {
                fprintf(stderr, "metald-agent: %s is longer than %d bytes\n", path, AGENT_MAX_CMDLINE_BYTES);
                return EXIT_USAGE;
        }
        r = agent_cmdline_parse(text, n, ret);
        explicit_bzero(text, n);        /* it holds the nonce */
        return r < 0 ? EXIT_FAILED : 0;
}

static int missing(const char *key, const char *option, const char *path)
{
        fprintf(stderr, "metald-agent: %s= is not on the kernel command line (%s) and %s was not given\n", key, path,
                option);
        return EXIT_USAGE;
}

/* Options win over the command line; every value is checked. */
static int resolve_params(const struct args *a, const struct agent_cmdline *cl, char url[static AGENT_MAX_URL + 1],
                          char mac[static AGENT_MAC_CHARS + 1], const char **ret_nonce)
{
        const char *path = a->cmdline ? a->cmdline : DEFAULT_CMDLINE;
        const char *u = a->url ? a->url : cl->url, *m = a->mac ? a->mac : cl->mac, *n = a->nonce ? a->nonce : cl->nonce;
        uint8_t hw[6];
        char esc[128];

        if (!u)
                return missing("metald.url", "--url", path);
        if (!m)
                return missing("metald.mac", "--mac", path);
        if (!n)
                return missing("metald.nonce", "--nonce", path);
        if (agent_url_check(u, url, AGENT_MAX_URL + 1) < 0) {
                fprintf(stderr, "metald-agent: metald.url must be http://HOST[:PORT], not \"%s\"\n",
                        log_escape(esc, sizeof(esc), u, strlen(u)));
                return EXIT_USAGE;
        }
        if (parse_mac(m, hw) < 0) {
                fprintf(stderr, "metald-agent: metald.mac is not a MAC address: \"%s\"\n",
                        log_escape(esc, sizeof(esc), m, strlen(m)));
                return EXIT_USAGE;
        }
        format_mac(mac, hw);
        if (agent_nonce_check(n) < 0) {
                /* never echo the nonce */
                fprintf(stderr, "metald-agent: metald.nonce must be %d base64url characters\n", AGENT_NONCE_CHARS);
                return EXIT_USAGE;
        }
        *ret_nonce = n;
        return 0;
}

static int cmd_run(int argc, char **argv)
{
        struct agent_cmdline cl = { 0 };
        char url[AGENT_MAX_URL + 1], mac[AGENT_MAC_CHARS + 1];
        struct agent_options o;
        const char *nonce;
        struct args a;
        int r;

        if ((r = parse_args(argc, argv, true, &a)) != 0)
                return r;
        if (a.help) {
                fputs(usage_text, stdout);
                return EXIT_OK;
        }
        if ((r = read_cmdline(a.cmdline ? a.cmdline : DEFAULT_CMDLINE, a.cmdline != NULL, &cl)) != 0)
                return r;
        r = resolve_params(&a, &cl, url, mac, &nonce);
        if (r == 0) {
                o = (struct agent_options){
                        .url = url, .boot_mac = mac, .nonce = nonce, .sysroot = a.sysroot,
                        .reboot_cmd = a.reboot_cmd, .poweroff_cmd = a.poweroff_cmd, .max_attempts = a.max_attempts,
                        .keys_dir = a.keys, .dev_dir = a.dev_dir, .state_file = a.state_file,
                        .progress_s = a.progress_s,
                };
                r = agent_run(&o) < 0 ? EXIT_FAILED : EXIT_OK;
        }
        agent_cmdline_free(&cl);
        return r;
}

static int cmd_inventory(int argc, char **argv)
{
        _cleanup_free_ struct agent_inventory *inv = calloc(1, sizeof(*inv));
        struct buf out = BUF_INIT(1024 * 1024);
        struct args a;
        int r;

        if ((r = parse_args(argc, argv, false, &a)) != 0)
                return r;
        if (a.help) {
                fputs(usage_text, stdout);
                return EXIT_OK;
        }
        if (!inv)
                return EXIT_FAILED;
        r = agent_inventory_collect(a.sysroot, inv);
        if (r < 0) {
                fprintf(stderr, "metald-agent: cannot read the inventory below %s: %s\n", a.sysroot, strerror(-r));
                return EXIT_FAILED;
        }
        r = agent_inventory_to_json(inv, &out);
        if (r == 0)
                r = buf_puts(&out, "\n");
        if (r == 0 && (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0))
                r = -EIO;
        buf_free(&out);
        if (r < 0) {
                fprintf(stderr, "metald-agent: cannot print the inventory: %s\n", strerror(-r));
                return EXIT_FAILED;
        }
        return EXIT_OK;
}

int main(int argc, char **argv)
{
        int r;

        log_setup("metald-agent");
        signal(SIGPIPE, SIG_IGN);
        if (argc < 2)
                return usage_error("no command given", NULL);
        if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
                printf("metald-agent %s\n", METALD_VERSION);
                return EXIT_OK;
        }
        if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
                fputs(usage_text, stdout);
                return EXIT_OK;
        }
        if (strcmp(argv[1], "inventory") == 0)
                return cmd_inventory(argc - 1, argv + 1);
        if (strcmp(argv[1], "run") != 0 && strcmp(argv[1], "install") != 0)
                return usage_error("unknown command", argv[1]);
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                fprintf(stderr, "metald-agent: cannot initialize libcurl\n");
                return EXIT_FAILED;
        }
        if (strcmp(argv[1], "install") == 0)
                r = agent_install_command(argc - 1, argv + 1);
        else
                r = cmd_run(argc - 1, argv + 1);
        curl_global_cleanup();
        return r;
}
