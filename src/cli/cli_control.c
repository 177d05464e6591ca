/* SPDX-License-Identifier: Apache-2.0 */
#include <curl/curl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <time.h>

#include "metald/buf.h"
#include "metald/cli.h"
#include "metald/limits.h"
#include "metald/util.h"

#define CONTROL_DEFAULT_SOCKET "/run/metald/control.sock"
#define CONTROL_TIMEOUT_S      30
#define REIMAGE_WAIT_DEFAULT   "30m"
#define REIMAGE_WAIT_POLL_S    1

struct ctl {
        const char *socket;
        bool json, watch;
        const char *image;              /* machine reimage --image */
        bool wait;                      /* machine reimage --wait */
        const char *timeout;            /* its --timeout, as given */
        uint64_t timeout_us;
};

static size_t collect(char *p, size_t size, size_t n, void *u)
{
        return buf_append(u, p, size * n) < 0 ? 0 : size * n;
}

/* One request to the daemon: the HTTP status, or -1 when it cannot be reached. */
static long call(const struct ctl *c, const char *method, const char *path, const char *body, struct buf *out)
{
        CURL *h = curl_easy_init();
        struct curl_slist *hdr = NULL;
        char url[512];
        long status = -1;

        if (!h)
                return -1;
        snprintf(url, sizeof(url), "http://localhost%s", path);
        hdr = curl_slist_append(hdr, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, c->socket);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)CONTROL_TIMEOUT_S);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
        if (body)
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        if (curl_easy_perform(h) == CURLE_OK)
                curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        curl_slist_free_all(hdr);
        curl_easy_cleanup(h);
        return status;
}

static const char *str(json_object *o, const char *key)
{
        json_object *v;

        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
                       ? json_object_get_string(v) : "";
}

static int64_t num(json_object *o, const char *key)
{
        json_object *v;

        return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

static void ago(int64_t then, int64_t now, char *buf, size_t cap)
{
        int64_t d = now - then;

        if (then <= 0)
                snprintf(buf, cap, "-");
        else if (d < 120)
                snprintf(buf, cap, "%llds ago", (long long)MAX(d, (int64_t)0));
        else if (d < 7200)
                snprintf(buf, cap, "%lldm ago", (long long)(d / 60));
        else if (d < 172800)
                snprintf(buf, cap, "%lldh ago", (long long)(d / 3600));
        else
                snprintf(buf, cap, "%lldd ago", (long long)(d / 86400));
}

/* Prints the daemon's error sentence and returns the exit code for it. */
static int failed(long status, const struct buf *body, const struct ctl *c)
{
        json_object *o;

        if (status < 0) {
                fprintf(stderr, "metald: cannot reach the daemon at %s (is metald running? --socket PATH)\n", c->socket);
                return EXIT_FAILED;
        }
        o = json_tokener_parse(body->data ? body->data : "");
        fprintf(stderr, "metald: %s\n", o && *str(o, "error") ? str(o, "error") : "the daemon refused the request");
        json_object_put(o);
        return EXIT_FAILED;
}

static void print_status(json_object *o)
{
        static const char *const order[] = { "discovered", "registered", "approved", "imaging", "imaged",
                                             "joining", "ready", "failed", "retired" };
        json_object *counts = json_object_object_get(o, "counts"), *list = json_object_object_get(o, "machines");
        int64_t now = num(o, "now");

        printf("%lld machines:", (long long)num(o, "total"));
        for (size_t i = 0; i < ARRAY_SIZE(order); i++)
                printf(" %lld %s%s", (long long)num(counts, order[i]), order[i], i + 1 < ARRAY_SIZE(order) ? "," : "\n");
        if (!list || json_object_array_length(list) == 0)
                return;
        printf("\n%-22s %-17s %-15s %-10s %-14s %-14s %-8s %-9s %s\n", "NAME", "MAC", "IP", "STATE", "PROFILE",
               "IMAGE", "PROGRESS", "SINCE", "LAST EVENT");
        for (size_t i = 0; i < json_object_array_length(list); i++) {
                json_object *m = json_object_array_get_idx(list, i);
                bool netboot = strcmp(str(m, "boot"), "netboot") == 0;
                char since[32], progress[8];
                int64_t p = num(m, "progress");

                ago(num(m, "since"), now, since, sizeof(since));
                snprintf(progress, sizeof(progress), p >= 0 ? "%lld%%" : "-", (long long)p);
                printf("%-22s %-17s %-15s %-10s %-14s %-14s %-8s %-9s %s\n", str(m, "name"), str(m, "mac"),
                       *str(m, "ip") ? str(m, "ip") : "-", str(m, "state"), *str(m, "profile") ? str(m, "profile") : "-",
                       netboot ? "netboot" : *str(m, "image") ? str(m, "image") : "-", progress, since,
                       str(m, "last_event"));
                /* what it boots instead of a signed image; what an approved or imaging machine waits for */
                if (netboot)
                        printf("%-22s netboot %s (unsigned)\n", "", str(json_object_object_get(m, "netboot"), "profile"));
                else if (strcmp(str(m, "state"), "approved") == 0 || strcmp(str(m, "state"), "imaging") == 0)
                        printf("%-22s %s\n", "", str(m, "waiting_for"));
        }
}

static int cmd_status(const struct ctl *c)
{
        for (;;) {
                struct buf body = BUF_INIT(API_MAX_RESPONSE);
                long st = call(c, "GET", "/v1/admin/status", NULL, &body);
                json_object *o;

                if (st != 200) {
                        int r = failed(st, &body, c);
                        buf_free(&body);
                        return r;
                }
                if (c->json) {
                        printf("%s\n", body.data);
                } else if ((o = json_tokener_parse(body.data))) {
                        if (c->watch)
                                printf("\033[H\033[2J");
                        print_status(o);
                        json_object_put(o);
                }
                buf_free(&body);
                fflush(stdout);
                if (!c->watch)
                        return EXIT_OK;
                sleep(2);
        }
}

static void fmt_time(int64_t t, char *buf, size_t cap)
{
        time_t tt = (time_t)t;
        struct tm tm;

        gmtime_r(&tt, &tm);
        strftime(buf, cap, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static void print_inventory(json_object *inv)
{
        json_object *sys = json_object_object_get(inv, "system"), *cpu = json_object_object_get(inv, "cpu");
        json_object *nics = json_object_object_get(inv, "nics"), *disks = json_object_object_get(inv, "disks");

        if (!sys)
                return;
        printf("system:      %s %s (serial %s)\n", str(sys, "vendor"), str(sys, "product"), str(sys, "serial"));
        printf("cpu:         %lld x %s\n", (long long)num(cpu, "count"), str(cpu, "model"));
        printf("memory:      %lld MiB\n", (long long)(num(inv, "memory_bytes") >> 20));
        for (size_t i = 0; nics && i < json_object_array_length(nics); i++) {
                json_object *n = json_object_array_get_idx(nics, i);

                printf("nic:         %-8s %s link %s %lld Mb/s\n", str(n, "name"), str(n, "mac"),
                       json_object_get_boolean(json_object_object_get(n, "link")) ? "up" : "down",
                       (long long)num(n, "speed_mbps"));
        }
        for (size_t i = 0; disks && i < json_object_array_length(disks); i++) {
                json_object *d = json_object_array_get_idx(disks, i);

                printf("disk:        %-8s %.1f GiB %s serial %s%s%s\n", str(d, "name"),
                       (double)num(d, "size_bytes") / (1 << 30), str(d, "model"), str(d, "serial"),
                       json_object_get_boolean(json_object_object_get(d, "rotational")) ? ", rotational" : "",
                       json_object_get_boolean(json_object_object_get(d, "removable")) ? ", removable" : "");
        }
}

static void print_machine(json_object *m)
{
        json_object *tl = json_object_object_get(m, "timeline");
        char t[40];

        fmt_time(num(m, "since"), t, sizeof(t));
        printf("name:        %s\nmac:         %s\nip:          %s\n", str(m, "name"), str(m, "mac"),
               *str(m, "ip") ? str(m, "ip") : "-");
        printf("state:       %s since %s%s%s\n", str(m, "state"), t, *str(m, "reason") ? ": " : "", str(m, "reason"));
        char image[128];

        snprintf(image, sizeof(image), num(m, "image_version") > 0 ? "%s:%lld%s" : "%s%.0lld%s",
                 *str(m, "image") ? str(m, "image") : "-", (long long)num(m, "image_version"),
                 strcmp(str(m, "image_source"), "machine") == 0 ? " (its own, not its profile's)" : "");
        printf("profile:     %s\nimage:       %s\nlabels:      %s\nwaiting for: %s\nuuid:        %s\n",
               *str(m, "profile") ? str(m, "profile") : "-", image,
               *str(m, "labels") ? str(m, "labels") : "-", str(m, "waiting_for"),
               *str(m, "uuid") ? str(m, "uuid") : "-");
        if (strcmp(str(m, "boot"), "netboot") == 0) {
                json_object *nb = json_object_object_get(m, "netboot");

                printf("boot:        netboot %s (unsigned): kernel %s, initrd %s, cmdline %s\n", str(nb, "profile"),
                       str(nb, "kernel"), *str(nb, "initrd") ? str(nb, "initrd") : "-",
                       *str(nb, "cmdline") ? str(nb, "cmdline") : "-");
        }
        /* what its next enrollment boot hands the kernel; the nonce is masked */
        printf("cmdline:     %s\n", *str(m, "enroll_cmdline") ? str(m, "enroll_cmdline") : "-");
        if (*str(m, "enroll_cmdline_efi"))
                printf("cmdline efi: %s\n", str(m, "enroll_cmdline_efi"));
        print_inventory(json_object_object_get(m, "inventory"));
        printf("timeline:\n");
        for (size_t i = 0; tl && i < json_object_array_length(tl); i++) {
                json_object *e = json_object_array_get_idx(tl, i);

                fmt_time(num(e, "ts"), t, sizeof(t));
                printf("  %s  %-18s %-11s %s\n", t, str(e, "event"), *str(e, "to") ? str(e, "to") : "",
                       str(e, "detail"));
        }
}

static int machine_call(const struct ctl *c, const char *method, const char *path, const char *body, bool show)
{
        struct buf out = BUF_INIT(API_MAX_RESPONSE);
        long st = call(c, method, path, body, &out);
        json_object *o;
        int r = EXIT_OK;

        if (st != 200) {
                r = failed(st, &out, c);
        } else if (c->json || !(o = json_tokener_parse(out.data))) {
                printf("%s\n", out.data ? out.data : "");
        } else {
                if (show)
                        print_machine(o);
                else
                        printf("%s\n", str(o, "result"));
                json_object_put(o);
        }
        buf_free(&out);
        return r;
}

/* who becomes one path segment: names and MACs only, anything else is refused here. */
static int machine_path(const char *who, const char *suffix, char *buf, size_t cap)
{
        if (!*who || strlen(who) > STORE_MAX_NAME || strspn(who, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                                 "0123456789-_.:") != strlen(who))
                return -EINVAL;
        snprintf(buf, cap, "/v1/admin/machines/%s%s", who, suffix);
        return 0;
}

static int cmd_reimage(const struct ctl *c, const char *who);

/* --image, --wait and --timeout belong to machine reimage, --timeout with --wait. */
static int reimage_options(struct ctl *c, int argc, char **argv)
{
        bool reimage = argc > 0 && strcmp(argv[0], "reimage") == 0;

        if (!reimage && (c->image || c->wait || c->timeout))
                return fprintf(stderr, "metald: --image, --wait and --timeout are options of machine reimage\n"),
                       EXIT_USAGE;
        if (c->timeout && !c->wait)
                return fprintf(stderr, "metald: --timeout needs --wait\n"), EXIT_USAGE;
        if (!c->timeout)
                c->timeout = REIMAGE_WAIT_DEFAULT;
        if (parse_duration_usec(c->timeout, &c->timeout_us) < 0 || c->timeout_us == 0)
                return fprintf(stderr, "metald: --timeout '%s' is not a duration (30m, 90s, 2h)\n", c->timeout),
                       EXIT_USAGE;
        return EXIT_OK;
}

static int cmd_machine(const struct ctl *c, int argc, char **argv)
{
        static const char *const verbs[] = { "approve", "retire" };
        char path[256], body[STORE_MAX_TEXT + 32];
        const char *op = argc > 0 ? argv[0] : "list";

        if (strcmp(op, "list") == 0)
                return cmd_status(c);
        if (argc < 2)
                return fprintf(stderr, "metald: machine %s needs a machine name or MAC\n", op), EXIT_USAGE;
        if (machine_path(argv[1], "", path, sizeof(path)) < 0)
                return fprintf(stderr, "metald: '%s' is not a machine name or MAC\n", argv[1]), EXIT_USAGE;
        if (strcmp(op, "show") == 0)
                return machine_call(c, "GET", path, NULL, true);
        if (strcmp(op, "forget") == 0)
                return machine_call(c, "DELETE", path, NULL, false);
        if (strcmp(op, "label") == 0) {
                json_object *o = json_object_new_object();

                json_object_object_add(o, "labels", json_object_new_string(argc > 2 ? argv[2] : ""));
                snprintf(body, sizeof(body), "%s", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
                json_object_put(o);
                machine_path(argv[1], "/labels", path, sizeof(path));
                return machine_call(c, "POST", path, body, false);
        }
        if (strcmp(op, "reimage") == 0)
                return cmd_reimage(c, argv[1]);
        for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
                if (strcmp(op, verbs[i]) == 0) {
                        snprintf(body, sizeof(body), "/%s", verbs[i]);
                        machine_path(argv[1], body, path, sizeof(path));
                        return machine_call(c, "POST", path, "{}", false);
                }
        fprintf(stderr, "metald: unknown machine command '%s'\n", op);
        return EXIT_USAGE;
}

/* --- machine reimage --wait --- */

static void fmt_secs(int64_t s, char *buf, size_t cap)
{
        if (s >= 3600)
                snprintf(buf, cap, "%lldh%02lldm%02llds", (long long)(s / 3600), (long long)(s / 60 % 60),
                         (long long)(s % 60));
        else if (s >= 60)
                snprintf(buf, cap, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
        else
                snprintf(buf, cap, "%llds", (long long)MAX(s, (int64_t)0));
}

/* The index in tl of the reimage event at ts (the last one when several), or -1. */
static int reimage_index(json_object *tl, int64_t ts)
{
        for (int i = tl ? (int)json_object_array_length(tl) - 1 : -1; i >= 0; i--) {
                json_object *e = json_object_array_get_idx(tl, (size_t)i);

                if (strcmp(str(e, "event"), "reimage") == 0 && (ts < 0 || num(e, "ts") == ts))
                        return i;
        }
        return -1;
}

static void print_event(json_object *e, int64_t t0)
{
        char t[24];

        fmt_secs(num(e, "ts") - t0, t, sizeof(t));
        printf("  +%-8s %-18s %-11s %s\n", t, str(e, "event"), str(e, "to"), str(e, "detail"));
}

struct waiting {
        int64_t t0;                     /* the daemon's time of the reimage event */
        int printed;                    /* events after it already printed */
        int64_t progress;
};

/* Prints what happened since the last look: new timeline events and install progress. */
static void wait_report(const struct ctl *c, struct waiting *w, json_object *m)
{
        json_object *tl = json_object_object_get(m, "timeline");
        int at = reimage_index(tl, w->t0), n = tl ? (int)json_object_array_length(tl) : 0;

        for (int i = at < 0 ? n : at + 1 + w->printed; i < n; i++, w->printed++)
                if (!c->json)
                        print_event(json_object_array_get_idx(tl, (size_t)i), w->t0);
        if (strcmp(str(m, "state"), "imaging") == 0 && num(m, "progress") >= 0 && num(m, "progress") != w->progress) {
                w->progress = num(m, "progress");
                if (!c->json)
                        printf("  %s: imaging %lld%%\n", str(m, "name"), (long long)w->progress);
        }
        fflush(stdout);
}

/* 0 ready, 1 failed or gone, -1 still on its way. */
static int wait_verdict(const struct ctl *c, const struct waiting *w, json_object *m)
{
        const char *state = str(m, "state");
        json_object *tl = json_object_object_get(m, "timeline");
        char d[24];
        int at;

        if (strcmp(state, "ready") != 0 && strcmp(state, "failed") != 0 && strcmp(state, "retired") != 0)
                return -1;
        if (c->json) {
                printf("%s\n", json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN));
        } else if (strcmp(state, "ready") == 0) {
                fmt_secs(num(m, "since") - w->t0, d, sizeof(d));
                printf("%s is ready, %s after the reimage; its timeline since then:\n", str(m, "name"), d);
                at = reimage_index(tl, w->t0);
                for (int i = MAX(at, 0); tl && i < (int)json_object_array_length(tl); i++)
                        print_event(json_object_array_get_idx(tl, (size_t)i), w->t0);
        }
        if (strcmp(state, "ready") == 0)
                return EXIT_OK;
        fprintf(stderr, "metald: %s is %s%s%s\n", str(m, "name"), state, *str(m, "reason") ? ": " : "",
                str(m, "reason"));
        return EXIT_FAILED;
}

/* Polls the machine until it is ready (0), failed (1) or the time is up (1). */
static int reimage_wait(const struct ctl *c, const char *who, const char *path)
{
        uint64_t end = now_monotonic_usec() + c->timeout_us;
        struct waiting w = { .t0 = -1, .progress = -1 };
        char state[32] = "approved";

        for (;;) {
                struct buf out = BUF_INIT(API_MAX_RESPONSE);
                long st = call(c, "GET", path, NULL, &out);
                json_object *m = st == 200 ? json_tokener_parse(out.data ? out.data : "") : NULL;
                int r = -1;

                if (st == 404 || (st >= 0 && st != 200))
                        r = failed(st, &out, c);
                buf_free(&out);
                if (m) {
                        if (w.t0 < 0) {
                                int at = reimage_index(json_object_object_get(m, "timeline"), -1);

                                w.t0 = at < 0 ? num(m, "since")
                                              : num(json_object_array_get_idx(json_object_object_get(m, "timeline"),
                                                                              (size_t)at), "ts");
                        }
                        str_copy(state, sizeof(state), str(m, "state"));
                        wait_report(c, &w, m);
                        r = wait_verdict(c, &w, m);
                        json_object_put(m);
                }
                if (r >= 0)
                        return r;
                if (now_monotonic_usec() >= end) {
                        fprintf(stderr, "metald: %s timed out in %s after %s%s\n", who, state, c->timeout,
                                st < 0 ? " (the daemon cannot be reached)" : "");
                        return EXIT_FAILED;
                }
                sleep(REIMAGE_WAIT_POLL_S);
        }
}

static int cmd_reimage(const struct ctl *c, const char *who)
{
        json_object *o = json_object_new_object();
        char path[256], show[256], body[STORE_MAX_TEXT + 32];
        struct buf out = BUF_INIT(API_MAX_RESPONSE);
        json_object *res;
        long st;

        if (c->image)
                json_object_object_add(o, "image", json_object_new_string(c->image));
        snprintf(body, sizeof(body), "%s", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        machine_path(who, "/reimage", path, sizeof(path));
        if (!c->wait)
                return machine_call(c, "POST", path, body, false);
        st = call(c, "POST", path, body, &out);
        if (st != 200) {
                int r = failed(st, &out, c);

                buf_free(&out);
                return r;
        }
        if (!c->json && (res = json_tokener_parse(out.data ? out.data : ""))) {
                printf("%s\n", str(res, "result"));
                json_object_put(res);
        }
        buf_free(&out);
        fflush(stdout);
        machine_path(who, "", show, sizeof(show));
        return reimage_wait(c, who, show);
}

/* `metald status ...` and `metald machine ...`: options, then the command's own arguments. */
int cli_control(int argc, char **argv)
{
        static const struct option opts[] = {
                { "socket", required_argument, NULL, 's' },
                { "json", no_argument, NULL, 'j' },
                { "watch", no_argument, NULL, 'w' },
                { "image", required_argument, NULL, 'I' },
                { "wait", no_argument, NULL, 'W' },
                { "timeout", required_argument, NULL, 'T' },
                {},
        };
        struct ctl c = { .socket = CONTROL_DEFAULT_SOCKET };
        int o, r;

        optind = 1;
        opterr = 0;
        while ((o = getopt_long(argc, argv, "s:jw", opts, NULL)) >= 0) {
                if (o == 's')
                        c.socket = optarg;
                else if (o == 'j')
                        c.json = true;
                else if (o == 'w')
                        c.watch = true;
                else if (o == 'I')
                        c.image = optarg;
                else if (o == 'W')
                        c.wait = true;
                else if (o == 'T')
                        c.timeout = optarg;
                else
                        return fprintf(stderr, "metald: unknown option %s\n", argv[optind - 1]), EXIT_USAGE;
        }
        if ((r = reimage_options(&c, argc - optind, argv + optind)) != EXIT_OK)
                return r;
        curl_global_init(CURL_GLOBAL_DEFAULT);
        if (strcmp(argv[0], "status") == 0)
                r = optind < argc ? (fprintf(stderr, "metald: status takes no arguments\n"), EXIT_USAGE) : cmd_status(&c);
        else
                r = cmd_machine(&c, argc - optind, argv + optind);
        curl_global_cleanup();
        return r;
}
