/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include "metald/cli.h"
#include "metald/config.h"
#include "metald/image.h"
#include "metald/util.h"

static const char usage_text[] =
        "usage: metald image <command> [options]\n"
        "\n"
        "  keygen --out PREFIX                  a new Ed25519 key pair: PREFIX.key (0600) and PREFIX.pub\n"
        "  sign DIR --key FILE                  sign DIR/manifest.json as it is\n"
        "  sign DIR --key FILE --build --name NAME --version N [--arch x86_64|arm64] [--expires 90d]\n"
        "       [--chunk-size 4M] [--compress zstd|none] [--level N] [--cmdline TEXT] [--out OUTDIR]\n"
        "                                       build an image from DIR's kernel, initrd, disk (raw) and/or\n"
        "                                       rootfs, into OUTDIR (default: DIR, the disk rewritten), and sign it\n"
        "  verify DIR|ARCHIVE [--config FILE | --trusted-key FILE...] [--revoked-key FILE...]\n"
        "  import DIR|ARCHIVE [--config FILE] [--allow-downgrade]\n"
        "  list [--config FILE] [--json]\n"
        "  show NAME[:VERSION] [--config FILE]\n"
        "  rm NAME:VERSION [--config FILE]\n"
        "\n"
        "Archives are tar, tar.gz or tar.zst. The catalog is STATE_DIR/images/ of the configuration.\n"
        "Exit codes: 0 ok, 1 refused or failed, 2 usage or configuration error.\n";

struct image_args {
        const char *config, *key, *name, *arch, *cmdline, *out, *expires, *chunk_size, *compress, *level;
        const char *trusted[IMAGE_MAX_KEYS], *revoked[IMAGE_MAX_KEYS];
        size_t n_trusted, n_revoked;
        uint64_t version;
        bool build, allow_downgrade, json, config_given;
        const char *target;
};

enum { OPT_TRUSTED = 256, OPT_REVOKED, OPT_ALLOW_DOWNGRADE, OPT_CHUNK, OPT_COMPRESS, OPT_LEVEL, OPT_CMDLINE,
       OPT_EXPIRES, OPT_ARCH, OPT_NAME, OPT_VERSION, OPT_BUILD, OPT_JSON, OPT_OUT, OPT_KEY };

static int add_path(const char **list, size_t *n, const char *p, const char *opt)
{
        if (*n >= IMAGE_MAX_KEYS)
                return cli_usage_error("too many keys", opt);
        list[(*n)++] = p;
        return 0;
}

static int parse_opt(int c, struct image_args *a)
{
        switch (c) {
        case 'c': a->config = optarg; a->config_given = true; return 0;
        case OPT_KEY: a->key = optarg; return 0;
        case OPT_OUT: a->out = optarg; return 0;
        case OPT_NAME: a->name = optarg; return 0;
        case OPT_ARCH: a->arch = optarg; return 0;
        case OPT_CMDLINE: a->cmdline = optarg; return 0;
        case OPT_EXPIRES: a->expires = optarg; return 0;
        case OPT_CHUNK: a->chunk_size = optarg; return 0;
        case OPT_COMPRESS: a->compress = optarg; return 0;
        case OPT_LEVEL: a->level = optarg; return 0;
        case OPT_BUILD: a->build = true; return 0;
        case OPT_JSON: a->json = true; return 0;
        case OPT_ALLOW_DOWNGRADE: a->allow_downgrade = true; return 0;
        case OPT_TRUSTED: return add_path(a->trusted, &a->n_trusted, optarg, "--trusted-key");
        case OPT_REVOKED: return add_path(a->revoked, &a->n_revoked, optarg, "--revoked-key");
        case OPT_VERSION:
                if (parse_u64(optarg, 1, IMAGE_MAX_VERSION, &a->version) < 0)
                        return cli_usage_error("--version must be an integer from 1 to 2^53-1", optarg);
                return 0;
        default:
                return cli_usage_error("unknown option or missing value", NULL);
        }
}

/* Options, then at most one positional argument (the DIR, ARCHIVE or NAME[:VERSION]). */
static int parse_args(int argc, char **argv, struct image_args *a, bool *ret_done)
{
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' },     { "key", required_argument, NULL, OPT_KEY },
                { "out", required_argument, NULL, OPT_OUT },    { "name", required_argument, NULL, OPT_NAME },
                { "version", required_argument, NULL, OPT_VERSION }, { "arch", required_argument, NULL, OPT_ARCH },
                { "expires", required_argument, NULL, OPT_EXPIRES },
                { "chunk-size", required_argument, NULL, OPT_CHUNK },
                { "compress", required_argument, NULL, OPT_COMPRESS },
                { "level", required_argument, NULL, OPT_LEVEL },
                { "cmdline", required_argument, NULL, OPT_CMDLINE },
                { "build", no_argument, NULL, OPT_BUILD },      { "json", no_argument, NULL, OPT_JSON },
                { "trusted-key", required_argument, NULL, OPT_TRUSTED },
                { "revoked-key", required_argument, NULL, OPT_REVOKED },
                { "allow-downgrade", no_argument, NULL, OPT_ALLOW_DOWNGRADE },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c, r;

        *a = (struct image_args){ .config = CLI_DEFAULT_CONFIG };
        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) >= 0) {
                if (c == 'h') {
                        fputs(usage_text, stdout);
                        *ret_done = true;
                        return 0;
                }
                if (c == '?' || c == ':')
                        return cli_usage_error("unknown option or missing value", argv[optind - 1]);
                if ((r = parse_opt(c, a)) != 0)
                        return r;
        }
        if (optind < argc)
                a->target = argv[optind++];
        if (optind < argc)
                return cli_usage_error("unexpected argument", argv[optind]);
        return 0;
}

static int load_config(const struct image_args *a, struct config **ret)
{
        char err[1024];

        if (config_load_file(a->config, ret, err, sizeof(err)) < 0) {
                fprintf(stderr, "metald: %s\n", err);
                return EXIT_USAGE;
        }
        return 0;
}

static int refused(const char *why)
{
        fprintf(stderr, "metald: image: %s\n", why);
        return EXIT_FAILED;
}

static int cmd_keygen(const struct image_args *a)
{
        char id[MANIFEST_KEY_ID_HEX + 1], why[1024];

        if (!a->out || a->target)
                return cli_usage_error("keygen takes --out PREFIX and nothing else", a->target);
        if (image_keygen(a->out, id, why, sizeof(why)) < 0)
                return refused(why);
        printf("key_id: %s\nprivate key: %s%s\npublic key: %s%s\n", id, a->out, IMAGE_KEY_SUFFIX, a->out,
               IMAGE_PUB_SUFFIX);
        return EXIT_OK;
}

/* "4M", "64K", "1G" or bytes. */
static int parse_size(const char *s, uint64_t *ret)
{
        char num[32];
        size_t n = strlen(s);
        uint64_t mult = 1, v;

        if (n == 0 || n >= sizeof(num))
                return -EINVAL;
        memcpy(num, s, n + 1);
        switch (num[n - 1]) {
        case 'K': case 'k': mult = 1024; break;
        case 'M': case 'm': mult = 1024 * 1024; break;
        case 'G': case 'g': mult = 1024 * 1024 * 1024; break;
        default: break;
        }
        if (mult > 1)
                num[n - 1] = '\0';
        if (parse_u64(num, 1, UINT32_MAX, &v) < 0)
                return -EINVAL;
        *ret = v * mult;
        return 0;
}

/* "90d" or any duration parse_duration_usec() reads, in seconds. */
static int parse_expires(const char *s, int64_t *ret)
{
        char num[32];
        size_t n = strlen(s);
        uint64_t v;

        if (n > 1 && n < sizeof(num) && s[n - 1] == 'd') {
                memcpy(num, s, n - 1);
                num[n - 1] = '\0';
                if (parse_u64(num, 1, IMAGE_MAX_EXPIRES_S / 86400, &v) < 0)
                        return -EINVAL;
                *ret = (int64_t)v * 86400;
                return 0;
        }
        if (parse_duration_usec(s, &v) < 0 || v / USEC_PER_SEC < 1 || v / USEC_PER_SEC > (uint64_t)IMAGE_MAX_EXPIRES_S)
                return -EINVAL;
        *ret = (int64_t)(v / USEC_PER_SEC);
        return 0;
}

static int build_spec(const struct image_args *a, struct image_build_spec *spec)
{
        int64_t ttl = IMAGE_DEFAULT_EXPIRES_S;
        uint64_t level = 0;

        *spec = (struct image_build_spec){
                .src = a->target, .out = a->out, .name = a->name, .version = a->version,
                .arch = a->arch ? a->arch : "x86_64", .chunk_size = IMAGE_DEFAULT_CHUNK_BYTES,
                .compression = MANIFEST_COMPRESS_ZSTD, .cmdline = a->cmdline, .created = time(NULL),
        };
        if (!a->name || !a->version)
                return cli_usage_error("sign --build needs --name and --version", NULL);
        if (a->expires && parse_expires(a->expires, &ttl) < 0)
                return cli_usage_error("--expires must be a duration such as 90d or 12h", a->expires);
        if (a->chunk_size && parse_size(a->chunk_size, &spec->chunk_size) < 0)
                return cli_usage_error("--chunk-size must be a size such as 4M", a->chunk_size);
        if (a->compress && strcmp(a->compress, "none") == 0)
                spec->compression = MANIFEST_COMPRESS_NONE;
        else if (a->compress && strcmp(a->compress, "zstd") != 0)
                return cli_usage_error("--compress must be zstd or none", a->compress);
        if (a->level && parse_u64(a->level, 1, IMAGE_ZSTD_MAX_LEVEL, &level) < 0)
                return cli_usage_error("--level must be a zstd level from 1 to 19", a->level);
        spec->level = (int)level;
        spec->expires = spec->created + ttl;
        return 0;
}

static int cmd_sign(const struct image_args *a)
{
        struct image_signer *s = NULL;
        struct image_build_spec spec;
        struct manifest_key k;
        char why[1024];
        int r;

        if (!a->target || !a->key)
                return cli_usage_error("sign needs DIR and --key FILE", NULL);
        if (!a->build && (a->name || a->version || a->out || a->chunk_size || a->compress || a->expires || a->cmdline))
                return cli_usage_error("--name, --version and the other build options need --build", NULL);
        if (a->build && (r = build_spec(a, &spec)) != 0)
                return r;
        if (image_signer_load(a->key, &s, why, sizeof(why)) < 0)
                return refused(why);
        image_signer_key(s, &k);
        r = a->build ? image_build(&spec, s, why, sizeof(why)) : image_sign_dir(a->target, s, why, sizeof(why));
        image_signer_free(s);
        if (r < 0)
                return refused(why);
        printf("signed %s with key %s\n", a->build && a->out ? a->out : a->target, k.id);
        return EXIT_OK;
}

/* The keys from --trusted-key/--revoked-key, or else from the configuration's images section. */
static int keyring_from(const struct image_args *a, const struct config *cfg, struct image_keyring *kr)
{
        char why[1024];
        int r = 0;

        *kr = (struct image_keyring){ 0 };
        for (size_t i = 0; r == 0 && i < a->n_trusted; i++)
                r = image_keyring_add(kr, a->trusted[i], false, why, sizeof(why));
        for (size_t i = 0; r == 0 && i < a->n_revoked; i++)
                r = image_keyring_add(kr, a->revoked[i], true, why, sizeof(why));
        for (size_t i = 0; r == 0 && cfg && i < cfg->images.n_trusted_keys; i++)
                r = image_keyring_add(kr, cfg->images.trusted_keys[i], false, why, sizeof(why));
        for (size_t i = 0; r == 0 && cfg && i < cfg->images.n_revoked_keys; i++)
                r = image_keyring_add(kr, cfg->images.revoked_keys[i], true, why, sizeof(why));
        if (r < 0) {
                fprintf(stderr, "metald: image: %s\n", why);
                return EXIT_USAGE;
        }
        if (!kr->n_trusted) {
                fprintf(stderr, "metald: image: no trusted keys (images.trusted_keys or --trusted-key)\n");
                return EXIT_USAGE;
        }
        return 0;
}

static void print_verified(const struct manifest *m)
{
        uint64_t total = 0;

        for (int k = 0; k < _MANIFEST_ARTIFACT_MAX; k++)
                total += m->artifacts[k].present ? m->artifacts[k].size : 0;
        printf("ok %s:%llu key %s, %llu bytes verified\n", m->name, (unsigned long long)m->version, m->key_id,
               (unsigned long long)total);
}

/* An archive is checked in a scratch directory that goes away afterwards. */
static int verify_archive(const char *path, const struct image_keyring *kr, struct manifest *m, char *why,
                          size_t why_len)
{
        const char *base = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        char tmp[CONFIG_MAX_PATH_BYTES];
        struct statvfs sv;
        int fd, r;

        if ((size_t)snprintf(tmp, sizeof(tmp), "%s/metald-verify-XXXXXX", base) >= sizeof(tmp) || !mkdtemp(tmp))
                return -errno;
        fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
                rmdir(tmp);
                return -errno;
        }
        r = image_extract_archive(path, fd, fstatvfs(fd, &sv) == 0 ? (uint64_t)sv.f_bavail * sv.f_frsize : UINT64_MAX,
                                  why, why_len);
        if (r == 0)
                r = image_verify_fd(fd, path, kr, time(NULL), NULL, m, why, why_len);
        close(fd);
        fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
                /* the scratch tree holds only files image_extract_archive wrote */
                char *name = strrchr(tmp, '/') + 1;
                int dfd = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

                for (unsigned i = 0; dfd >= 0 && i < IMAGE_N_FILES; i++)
                        (void)unlinkat(dfd, image_file_name(i), 0);
                if (dfd >= 0)
                        close(dfd);
                (void)unlinkat(fd, name, AT_REMOVEDIR);
                close(fd);
        }
        return r;
}

static int cmd_verify(const struct image_args *a)
{
        struct config *cfg = NULL;
        struct image_keyring kr;
        struct manifest m;
        struct stat st;
        char why[1024];
        int r;

        if (!a->target)
                return cli_usage_error("verify needs DIR or ARCHIVE", NULL);
        if (a->config_given && a->n_trusted)
                return cli_usage_error("--config and --trusted-key exclude each other", NULL);
        if (!a->n_trusted && (r = load_config(a, &cfg)) != 0)
                return r;
        r = keyring_from(a, cfg, &kr);
        config_free(cfg);
        if (r != 0)
                return r;
        if (stat(a->target, &st) < 0) {
                fprintf(stderr, "metald: image: %s: %s\n", a->target, strerror(errno));
                return EXIT_FAILED;
        }
        why[0] = '\0';
        r = S_ISDIR(st.st_mode) ? image_verify_dir(a->target, &kr, time(NULL), NULL, &m, why, sizeof(why))
                                : verify_archive(a->target, &kr, &m, why, sizeof(why));
        if (r < 0)
                return refused(*why ? why : strerror(-r));
        print_verified(&m);
        manifest_free(&m);
        return EXIT_OK;
}

static int cmd_import(const struct image_args *a)
{
        struct config *cfg = NULL;
        struct image_keyring kr;
        struct image_info info;
        char why[1024];
        int r;

        if (!a->target)
                return cli_usage_error("import needs DIR or ARCHIVE", NULL);
        if (a->n_trusted || a->n_revoked)
                return cli_usage_error("import trusts only the configuration's keys", NULL);
        if ((r = load_config(a, &cfg)) != 0)
                return r;
        r = keyring_from(a, cfg, &kr);
        if (r == 0 && image_import(cfg->state_dir, a->target, &kr, time(NULL), a->allow_downgrade, &info, why,
                                   sizeof(why)) < 0)
                r = refused(why);
        else if (r == 0)
                printf("%s %s:%llu key %s, %llu bytes\n", info.already ? "already imported" : "imported", info.name,
                       (unsigned long long)info.version, info.key_id, (unsigned long long)info.total_bytes);
        config_free(cfg);
        return r;
}

static void format_time(int64_t t, char out[32])
{
        time_t tt = (time_t)t;
        struct tm tm;

        if (!gmtime_r(&tt, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
                snprintf(out, 32, "%lld", (long long)t);
}

static void format_artifacts(unsigned mask, char *out, size_t cap)
{
        size_t o = 0;

        out[0] = '\0';
        for (int k = 0; k < _MANIFEST_ARTIFACT_MAX; k++)
                if (mask & (1u << k))
                        o += (size_t)snprintf(out + o, cap - MIN(o, cap), "%s%s", o ? "," : "",
                                              manifest_artifact_name((enum manifest_artifact_kind)k));
}

/* The profiles that boot this version: pinned to it, or unpinned while it is the newest. */
static void format_profiles(const struct config *cfg, const struct image_info *v, size_t n, size_t i, char *out,
                            size_t cap)
{
        uint64_t newest = 0;
        size_t o = 0;

        out[0] = '\0';
        for (size_t j = 0; j < n; j++)
                if (strcmp(v[j].name, v[i].name) == 0)
                        newest = MAX(newest, v[j].version);
        for (size_t p = 0; cfg && p < cfg->n_profiles; p++) {
                const struct profile *pr = &cfg->profiles[p];

                if (strcmp(pr->image, v[i].name) != 0 ||
                    (pr->image_version ? pr->image_version != v[i].version : v[i].version != newest))
                        continue;
                o += (size_t)snprintf(out + o, cap - MIN(o, cap), "%s%s", o ? "," : "", pr->name);
                if (o >= cap)
                        break;
        }
}

static int list_json(const struct config *cfg, const struct image_info *v, size_t n)
{
        json_object *arr = json_object_new_array();
        char buf[1024], when[32];

        for (size_t i = 0; arr && i < n; i++) {
                json_object *o = json_object_new_object(), *profiles = json_object_new_array();

                json_object_object_add(o, "name", json_object_new_string(v[i].name));
                json_object_object_add(o, "version", json_object_new_int64((int64_t)v[i].version));
                json_object_object_add(o, "arch", json_object_new_string(v[i].arch));
                json_object_object_add(o, "key_id", json_object_new_string(v[i].key_id));
                json_object_object_add(o, "size", json_object_new_int64((int64_t)v[i].total_bytes));
                format_artifacts(v[i].artifacts, buf, sizeof(buf));
                json_object_object_add(o, "artifacts", json_object_new_string(buf));
                format_time(v[i].expires, when);
                json_object_object_add(o, "expires", json_object_new_string(when));
                format_profiles(cfg, v, n, i, buf, sizeof(buf));
                for (char *s = strtok(buf, ","); s; s = strtok(NULL, ","))
                        json_object_array_add(profiles, json_object_new_string(s));
                json_object_object_add(o, "profiles", profiles);
                json_object_array_add(arr, o);
        }
        if (!arr)
                return EXIT_FAILED;
        puts(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN));
        json_object_put(arr);
        return EXIT_OK;
}

static int cmd_list(const struct image_args *a)
{
        struct image_info *v = NULL;
        struct config *cfg = NULL;
        char why[1024], arts[64], when[32], profiles[512];
        size_t n = 0;
        int r;

        if (a->target)
                return cli_usage_error("list takes no argument", a->target);
        if ((r = load_config(a, &cfg)) != 0)
                return r;
        if (image_list(cfg->state_dir, &v, &n, why, sizeof(why)) < 0) {
                config_free(cfg);
                return refused(why);
        }
        if (a->json) {
                r = list_json(cfg, v, n);
        } else {
                printf("%-24s %8s %-16s %12s %-26s %-20s %s\n", "NAME", "VERSION", "KEY", "BYTES", "ARTIFACTS",
                       "EXPIRES", "PROFILES");
                for (size_t i = 0; i < n; i++) {
                        format_artifacts(v[i].artifacts, arts, sizeof(arts));
                        format_time(v[i].expires, when);
                        format_profiles(cfg, v, n, i, profiles, sizeof(profiles));
                        printf("%-24s %8llu %-16s %12llu %-26s %-20s %s\n", v[i].name, (unsigned long long)v[i].version,
                               v[i].key_id, (unsigned long long)v[i].total_bytes, arts, when,
                               *profiles ? profiles : "-");
                }
        }
        free(v);
        config_free(cfg);
        return r;
}

static int cmd_show(const struct image_args *a)
{
        char name[IMAGE_MAX_NAME + 1], why[1024], when[32], hex[2 * MANIFEST_SHA256_BYTES + 1];
        struct config *cfg = NULL;
        struct image_info info;
        struct manifest m;
        uint64_t version;
        int r;

        if (!a->target || image_parse_ref(a->target, name, &version) < 0)
                return cli_usage_error("show needs NAME[:VERSION]", a->target);
        if ((r = load_config(a, &cfg)) != 0)
                return r;
        r = image_show(cfg->state_dir, name, version, &info, &m, why, sizeof(why));
        config_free(cfg);
        if (r < 0)
                return refused(why);
        printf("name: %s\nversion: %llu\narch: %s\nkey_id: %s\n", m.name, (unsigned long long)m.version, m.arch,
               m.key_id);
        format_time(m.created, when);
        printf("created: %s\n", when);
        format_time(m.expires, when);
        printf("expires: %s\nchunk_size: %llu\n", when, (unsigned long long)m.chunk_size);
        if (*m.cmdline)
                printf("cmdline: %s\n", m.cmdline);
        for (int k = 0; k < _MANIFEST_ARTIFACT_MAX; k++) {
                const struct manifest_artifact *art = &m.artifacts[k];

                if (!art->present)
                        continue;
                manifest_hex(art->sha256, sizeof(art->sha256), hex);
                printf("%s: %llu bytes, %zu chunks, sha256 %s", manifest_artifact_name((enum manifest_artifact_kind)k),
                       (unsigned long long)art->size, art->n_chunks, hex);
                if (k == MANIFEST_DISK)
                        printf(", %s, raw %llu bytes, %zu extents",
                               art->compression == MANIFEST_COMPRESS_ZSTD ? "zstd" : "uncompressed",
                               (unsigned long long)art->raw_size, art->n_extents);
                if (k == MANIFEST_ROOTFS)
                        printf(", %s", art->fs == MANIFEST_FS_EROFS ? "erofs" : "squashfs");
                putchar('\n');
        }
        manifest_free(&m);
        return EXIT_OK;
}

static int cmd_rm(const struct image_args *a)
{
        char name[IMAGE_MAX_NAME + 1], why[1024];
        struct config *cfg = NULL;
        uint64_t version;
        int r;

        if (!a->target || image_parse_ref(a->target, name, &version) < 0 || !version)
                return cli_usage_error("rm needs NAME:VERSION", a->target);
        if ((r = load_config(a, &cfg)) != 0)
                return r;
        r = image_remove(cfg->state_dir, name, version, why, sizeof(why));
        config_free(cfg);
        if (r < 0)
                return refused(why);
        printf("removed %s:%llu\n", name, (unsigned long long)version);
        return EXIT_OK;
}

int cli_image(int argc, char **argv)
{
        static const struct {
                const char *name;
                int (*fn)(const struct image_args *a);
        } commands[] = {
                { "keygen", cmd_keygen }, { "sign", cmd_sign }, { "verify", cmd_verify }, { "import", cmd_import },
                { "list", cmd_list },     { "show", cmd_show }, { "rm", cmd_rm },
        };
        struct image_args a;
        bool done = false;
        int r;

        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
                fputs(usage_text, stdout);
                return EXIT_OK;
        }
        for (size_t i = 0; argc >= 2 && i < ARRAY_SIZE(commands); i++) {
                if (strcmp(argv[1], commands[i].name) != 0)
                        continue;
                if ((r = parse_args(argc - 1, argv + 1, &a, &done)) != 0 || done)
                        return r;
                return commands[i].fn(&a);
        }
        return cli_usage_error("unknown image command", argc < 2 ? "(none)" : argv[1]);
}
