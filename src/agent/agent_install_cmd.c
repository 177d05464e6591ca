/* SPDX-License-Identifier: Apache-2.0 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "metald/agent.h"
#include "metald/agent_install.h"
#include "metald/fs.h"
#include "metald/log.h"
#include "metald/util.h"

/*
 * metald-agent install: the verified install on its own, for operators and
 * tests (docs/AGENT-API.md, "Installing an image by hand"). The install
 * instruction of metald-agent run goes through the same agent_install().
 */

#define DEFAULT_KEYS_DIR "/etc/metald/trusted-keys"

static const char install_usage[] =
        "usage: metald-agent install [options]\n"
        "\n"
        "  --manifest FILE         manifest.json of the image (or --metald and --session-file)\n"
        "  --sig FILE              its signature, manifest.json.sig\n"
        "  --metald URL            fetch both from metald's agent API instead, http://HOST[:PORT]\n"
        "  --session-file FILE     the session secret for --metald (never on the command line)\n"
        "  --manifest-sha256 HEX   the digest the manifest must have (required)\n"
        "  --keys DIR              trusted public keys, DIR/*.pub (default " DEFAULT_KEYS_DIR ")\n"
        "  --url URL               where the image's files are: URL/disk (required)\n"
        "  --target PATH           block device or regular file to install to (required)\n"
        "  --hostname NAME         write a configuration record with this host name\n"
        "  --config-offset N       where the configuration record goes on the target\n"
        "  --config-length N       the room there\n"
        "  --state-file FILE       resume from / record progress in FILE (put it on tmpfs)\n"
        "  --progress SECONDS      period of progress lines (default 5)\n"
        "  --log-level LEVEL       error, warning, notice, info or debug (default info)\n"
        "\n"
        "Exit codes: 0 installed, 1 install failed (the target does not boot), 2 usage error.\n";

enum {
        OPT_MANIFEST = 0x100, OPT_SIG, OPT_METALD, OPT_SESSION_FILE, OPT_SHA, OPT_KEYS, OPT_URL, OPT_TARGET,
        OPT_HOSTNAME, OPT_CONFIG_OFFSET, OPT_CONFIG_LENGTH, OPT_STATE_FILE, OPT_PROGRESS, OPT_LOG_LEVEL, OPT_HELP,
};

struct install_args {
        const char *manifest, *sig, *metald, *session_file, *sha, *keys, *url, *target, *hostname, *state_file;
        uint64_t config_offset, config_length, progress_s;
        bool help;
};

static int usage(const char *what, const char *arg)
{
        char esc[256];

        fprintf(stderr, "metald-agent install: %s%s%s\nTry 'metald-agent install --help'.\n", what, arg ? ": " : "",
                arg ? log_escape(esc, sizeof(esc), arg, strlen(arg)) : "");
        return EXIT_USAGE;
}

static int take(int c, struct install_args *a)
{
        const char **strs[] = {
                [OPT_MANIFEST - OPT_MANIFEST] = &a->manifest, [OPT_SIG - OPT_MANIFEST] = &a->sig,
                [OPT_METALD - OPT_MANIFEST] = &a->metald, [OPT_SESSION_FILE - OPT_MANIFEST] = &a->session_file,
                [OPT_SHA - OPT_MANIFEST] = &a->sha, [OPT_KEYS - OPT_MANIFEST] = &a->keys,
                [OPT_URL - OPT_MANIFEST] = &a->url, [OPT_TARGET - OPT_MANIFEST] = &a->target,
                [OPT_HOSTNAME - OPT_MANIFEST] = &a->hostname, [OPT_STATE_FILE - OPT_MANIFEST] = &a->state_file,
        };
        int level;

        if (c >= OPT_MANIFEST && c - OPT_MANIFEST < (int)ARRAY_SIZE(strs) && strs[c - OPT_MANIFEST]) {
                *strs[c - OPT_MANIFEST] = optarg;
                return 0;
        }
        switch (c) {
        case OPT_CONFIG_OFFSET:
                return parse_u64(optarg, 0, AGENT_MAX_IMAGE_BYTES, &a->config_offset) < 0
                               ? usage("--config-offset is not a number of bytes", optarg) : 0;
        case OPT_CONFIG_LENGTH:
                return parse_u64(optarg, 0, AGENT_MAX_IMAGE_BYTES, &a->config_length) < 0
                               ? usage("--config-length is not a number of bytes", optarg) : 0;
        case OPT_PROGRESS:
                return parse_u64(optarg, 1, 3600, &a->progress_s) < 0 ? usage("--progress is not 1-3600", optarg) : 0;
        case OPT_LOG_LEVEL:
                if ((level = log_level_from_string(optarg)) < 0)
                        return usage("unknown log level", optarg);
                log_set_level(level);
                return 0;
        case OPT_HELP:
                a->help = true;
                return 0;
        default:
                return usage("unknown option or missing value", NULL);
        }
}

static int parse(int argc, char **argv, struct install_args *ret)
{
        static const struct option opts[] = {
                { "manifest", required_argument, NULL, OPT_MANIFEST },
                { "sig", required_argument, NULL, OPT_SIG },
                { "metald", required_argument, NULL, OPT_METALD },
                { "session-file", required_argument, NULL, OPT_SESSION_FILE },
                { "manifest-sha256", required_argument, NULL, OPT_SHA },
                { "keys", required_argument, NULL, OPT_KEYS },
                { "url", required_argument, NULL, OPT_URL },
                { "target", required_argument, NULL, OPT_TARGET },
                { "hostname", required_argument, NULL, OPT_HOSTNAME },
                { "config-offset", required_argument, NULL, OPT_CONFIG_OFFSET },
                { "config-length", required_argument, NULL, OPT_CONFIG_LENGTH },
                { "state-file", required_argument, NULL, OPT_STATE_FILE },
                { "progress", required_argument, NULL, OPT_PROGRESS },
                { "log-level", required_argument, NULL, OPT_LOG_LEVEL },
                { "help", no_argument, NULL, OPT_HELP },
                {},
        };
        struct install_args a = { .keys = DEFAULT_KEYS_DIR, .progress_s = AGENT_INSTALL_PROGRESS_S };
        int c, r;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                if (c == '?')
                        return usage("unknown option or missing value", argv[optind - 1]);
                if ((r = take(c, &a)) != 0)
                        return r;
        }
        if (optind < argc)
                return usage("unexpected argument", argv[optind]);
        if (!a.help) {
                if (!a.sha || !a.url || !a.target)
                        return usage("--manifest-sha256, --url and --target are required", NULL);
                if (!!a.manifest != !!a.sig || !!a.metald != !!a.session_file || !!a.manifest == !!a.metald)
                        return usage("give either --manifest and --sig, or --metald and --session-file", NULL);
                if (a.hostname && a.config_length == 0)
                        return usage("--hostname needs --config-offset and --config-length", NULL);
        }
        *ret = a;
        return 0;
}

static void on_progress(void *userdata, const struct agent_install_progress *p)
{
        char eta[32] = "unknown";

        if (p->eta_s != UINT64_MAX)
                snprintf(eta, sizeof(eta), "%" PRIu64 " s", p->eta_s);
        log_info("install: %" PRIu64 " of %" PRIu64 " bytes, %" PRIu64 " KiB/s, %s to go, chunk %zu of %zu",
                 p->done_bytes, p->total_bytes, p->rate_bytes_per_s >> 10, eta, p->next_chunk, p->n_chunks);
}

static int read_file(const char *path, size_t max, struct buf *ret)
{
        uint8_t *data;
        size_t len;
        int r = fs_read_file(path, max, NULL, &data, &len);

        if (r < 0)
                return log_error_errno(r, "Cannot read %s: %s", path, r == -EFBIG ? "too large" : strerror(-r));
        *ret = (struct buf){ .data = (char *)data, .len = len, .alloc = len + 1, .max = max };
        return 0;
}

/* The manifest and signature from files, or from metald over this machine's session. */
static int read_inputs(const struct install_args *a, struct buf *manifest, struct buf *sig)
{
        _cleanup_free_ uint8_t *secret = NULL;
        char url[AGENT_MAX_URL + 1], text[AGENT_MAX_SESSION + 1];
        struct agent_client *client = NULL;
        struct agent_result res;
        size_t len = 0;
        int r;

        if (a->manifest) {
                r = read_file(a->manifest, IMAGE_MAX_MANIFEST_BYTES, manifest);
                if (r == 0)
                        r = read_file(a->sig, AGENT_INSTALL_MAX_SIG_BYTES, sig);
                return r;
        }
        if (agent_url_check(a->metald, url, sizeof(url)) < 0)
                return log_error_errno(-EINVAL, "--metald must be http://HOST[:PORT]");
        r = fs_read_file(a->session_file, AGENT_MAX_SESSION + 1, NULL, &secret, &len);
        if (r < 0)
                return log_error_errno(r, "Cannot read %s: %s", a->session_file, strerror(-r));
        while (len > 0 && (secret[len - 1] == '\n' || secret[len - 1] == '\r'))
                len--;
        if (len > AGENT_MAX_SESSION)
                return log_error_errno(-EINVAL, "%s does not hold a session secret", a->session_file);
        memcpy(text, secret, len);
        text[len] = '\0';
        explicit_bzero(secret, len);
        r = agent_client_new(url, &client);
        if (r == 0)
                r = agent_client_set_session(client, text);
        explicit_bzero(text, sizeof(text));
        if (r == 0 && (r = agent_fetch_image_manifest(client, manifest, sig, &res)) < 0)
                log_error("Cannot fetch the manifest: %s", res.why);
        else if (r < 0)
                log_error("Cannot talk to metald: %s", strerror(-r));
        agent_client_free(client);
        return r;
}

static int install(const struct install_args *a)
{
        struct buf manifest = BUF_INIT(0), sig = BUF_INIT(0);
        struct agent_install_setup setup;
        struct agent_install_options o = {
                .target = a->target, .config_offset = a->config_offset, .config_length = a->config_length,
                .now = (int64_t)time(NULL), .progress = on_progress,
                .progress_interval_usec = a->progress_s * USEC_PER_SEC, .state_file = a->state_file,
        };
        struct agent_install_result res;
        char why[256];
        int r;

        if (agent_sha256_from_hex(a->sha, o.manifest_sha256) < 0)
                return usage("--manifest-sha256 is not 64 lower-case hex digits", a->sha);
        r = agent_install_setup(&setup, a->keys, a->url, a->hostname, why, sizeof(why));
        if (r == -EINVAL)
                return usage(why, NULL);
        if (r < 0) {
                log_error("Cannot install: %s", why);
                return EXIT_FAILED;
        }
        r = read_inputs(a, &manifest, &sig);
        if (r == 0) {
                agent_install_setup_apply(&setup, &o);
                o.manifest = (const uint8_t *)manifest.data;
                o.manifest_len = manifest.len;
                o.sig = (const uint8_t *)sig.data;
                o.sig_len = sig.len;
                log_info("install: %s/disk to %s", a->url, a->target);
                r = agent_install(&o, &res);
                if (r < 0)
                        log_error("Install failed: %s", res.why);
                else
                        log_info("install: done, %zu chunks written (resumed at chunk %zu), %u retries",
                                 res.chunks_written, res.resumed_at, res.retries);
        }
        agent_install_setup_free(&setup);
        buf_free(&manifest);
        buf_free(&sig);
        return r < 0 ? EXIT_FAILED : EXIT_OK;
}

int agent_install_command(int argc, char **argv)
{
        struct install_args a;
        int r;

        if ((r = parse(argc, argv, &a)) != 0)
                return r;
        if (a.help) {
                fputs(install_usage, stdout);
                return EXIT_OK;
        }
        return install(&a);
}
