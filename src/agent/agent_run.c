/* SPDX-License-Identifier: Apache-2.0 */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>

#include "metald/agent.h"
#include "metald/agent_install.h"
#include "metald/log.h"
#include "metald/util.h"

#define INSTALL_POLL_USEC       (500 * 1000ULL) /* how soon the loop sees that an install ended */
#define INSTALL_REPORT_USEC     USEC_PER_SEC    /* how fresh the progress the loop reports is */
#define TARGET_MAX              160     /* bytes of dev_dir/NAME */
#define NO_KEYS                 "no trusted image keys in the enrollment environment"

static bool cmdline_space(char c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\0';
}

int agent_cmdline_parse(const char *text, size_t len, struct agent_cmdline *ret)
{
        static const char key_url[] = "metald.url=", key_mac[] = "metald.mac=", key_nonce[] = "metald.nonce=";
        struct agent_cmdline c = { 0 };
        size_t i = 0;
        char *w;

        /* each token is copied without its quotes and NUL-terminated: at most len + 1 bytes */
        c.text = malloc(len + 1);
        if (!c.text)
                return -ENOMEM;
        w = c.text;
        while (i < len) {
                bool quoted = false;
                char *tok = w;

                if (cmdline_space(text[i])) {
                        i++;
                        continue;
                }
                for (; i < len && text[i] && (quoted || !cmdline_space(text[i])); i++) {
                        if (text[i] == '"')
                                quoted = !quoted;
                        else
                                *w++ = text[i];
                }
                *w++ = '\0';
                if (str_has_prefix(tok, key_url))
                        c.url = tok + strlen(key_url);
                else if (str_has_prefix(tok, key_mac))
                        c.mac = tok + strlen(key_mac);
                else if (str_has_prefix(tok, key_nonce))
                        c.nonce = tok + strlen(key_nonce);
        }
        *ret = c;
        return 0;
}

void agent_cmdline_free(struct agent_cmdline *c)
{
        if (c->nonce)
                explicit_bzero((char *)c->nonce, strlen(c->nonce));
        free(c->text);
        *c = (struct agent_cmdline){ 0 };
}

static bool host_char(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

/* Length of the host at s (a name, IPv4 address or [IPv6]); 0 when there is none. */
static size_t url_host_len(const char *s, size_t n)
{
        size_t i = 0;

        if (n > 0 && s[0] == '[') {
                for (i = 1; i < n && s[i] != ']'; i++)
                        if (!strchr("0123456789abcdefABCDEF:.", s[i]))
                                return 0;
                return i < n && i > 2 ? i + 1 : 0;
        }
        while (i < n && host_char(s[i]))
                i++;
        if (i == 0 || s[0] == '.' || s[0] == '-' || s[i - 1] == '-')
                return 0;
        return i;
}

int agent_url_check(const char *s, char *ret, size_t cap)
{
        static const char scheme[] = "http://";
        size_t len = strlen(s), n, host;
        const char *p;
        char port[8];
        uint64_t v;

        if (len > AGENT_MAX_URL || !str_has_prefix(s, scheme))
                return -EINVAL;
        p = s + strlen(scheme);
        if (len > strlen(scheme) && s[len - 1] == '/')
                len--;
        n = len - strlen(scheme);
        host = url_host_len(p, n);
        if (host == 0)
                return -EINVAL;
        if (host < n) {
                if (p[host] != ':' || n - host - 1 == 0 || n - host - 1 >= sizeof(port))
                        return -EINVAL;
                memcpy(port, p + host + 1, n - host - 1);
                port[n - host - 1] = '\0';
                if (parse_u64(port, 1, 65535, &v) < 0)
                        return -EINVAL;
        }
        if (len >= cap)
                return -ENAMETOOLONG;
        memcpy(ret, s, len);
        ret[len] = '\0';
        return 0;
}

int agent_nonce_check(const char *s)
{
        size_t n = strlen(s);

        if (n != AGENT_NONCE_CHARS)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
                      s[i] == '-' || s[i] == '_'))
                        return -EINVAL;
        return 0;
}

struct agent_loop {
        const struct agent_options *o;
        struct agent_client *client;
        const struct agent_inventory *inv;
        sigset_t stop;
        bool registered;
        bool resync;                    /* fetch the instruction before the next heartbeat */
        bool reboot_now;                /* metald no longer knows this boot */
        bool warned_trim;
        unsigned heartbeat_s;
        unsigned failures;              /* calls in a row that failed */
        char state[AGENT_MAX_STATE_NAME + 1];
        const char *status;             /* the heartbeat's one line */
        bool have_instruction;
        struct agent_instruction instruction;
        /* one event waits to be sent before the next heartbeat */
        bool event_pending;
        enum agent_event event;
        char event_detail[AGENT_MAX_STRING + 1];
        unsigned event_attempts;
        enum agent_action after_event;  /* reboot or poweroff once the event is out; wait for none */
        bool event_starts_install;      /* the pending event is install-started: install once metald took it */
        /* the install, run by a worker thread while this loop heartbeats */
        bool install_pending;           /* metald took install-started; the install is to begin */
        struct agent_image install_image;       /* what install-started announced: later instructions say "wait" */
        unsigned install_fetch_failures;
        struct install_job *job;
        int progress;                   /* the heartbeat's percent, -1 for none */
        char status_line[AGENT_MAX_STRING + 1];
};

struct install_job {
        pthread_t thread;
        pthread_mutex_t lock;
        struct agent_install_progress progress;         /* the latest report, under lock */
        bool have_progress;                             /* under lock */
        atomic_bool done, cancel;
        int r;                                          /* agent_install's, set before done */
        struct agent_install_setup setup;
        struct agent_install_options o;
        struct agent_install_result res;
        struct buf manifest, sig;
        char target[TARGET_MAX + 1];
        uint64_t next_event_usec;
};

/* Progress lines for the console; tests and operators watch for them. */
_printf_(1, 2) static void say(const char *fmt, ...)
{
        char msg[LOG_MAX_LINE], line[LOG_MAX_LINE + 32];
        va_list ap;
        int n;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (log_to_journal()) {
                log_notice("%s", msg);
                return;
        }
        n = snprintf(line, sizeof(line), "metald-agent: %s\n", msg);
        if (n > 0 && write(STDERR_FILENO, line, MIN((size_t)n, sizeof(line) - 1)) < 0)
                return;
}

/* Sleeps for usec; true when a termination signal arrived first. */
static bool sleep_or_stop(const sigset_t *stop, uint64_t usec)
{
        uint64_t end = now_monotonic_usec() + usec;

        for (;;) {
                uint64_t now = now_monotonic_usec(), left = end > now ? end - now : 0;
                struct timespec ts = { .tv_sec = (time_t)(left / USEC_PER_SEC),
                                       .tv_nsec = (long)(left % USEC_PER_SEC) * 1000 };

                if (sigtimedwait(stop, NULL, &ts) > 0)
                        return true;
                if (errno == EAGAIN)
                        return false;
        }
}

/* Runs cmd with /bin/sh -c and waits for it: 0, or -errno; *ret_status is the wait status. */
static int run_command(const char *cmd, int *ret_status)
{
        char *argv[] = { "sh", "-c", (char *)cmd, NULL };
        posix_spawnattr_t attr;
        sigset_t none, defaults;
        pid_t pid;
        int r, status;

        sigemptyset(&none);
        sigemptyset(&defaults);
        sigaddset(&defaults, SIGTERM);
        sigaddset(&defaults, SIGINT);
        sigaddset(&defaults, SIGPIPE);
        r = posix_spawnattr_init(&attr);
        if (r != 0)
                return -r;
        r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        if (r == 0)
                r = posix_spawnattr_setsigmask(&attr, &none);
        if (r == 0)
                r = posix_spawnattr_setsigdefault(&attr, &defaults);
        if (r == 0)
                r = posix_spawn(&pid, "/bin/sh", NULL, &attr, argv, environ);
        posix_spawnattr_destroy(&attr);
        if (r != 0)
                return -r;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        *ret_status = status;
        return 0;
}

/* Reboots or powers off: 1 when the command ran (and returned), -EIO when it failed. */
static int run_action(struct agent_loop *l, enum agent_action a)
{
        const char *cmd = a == AGENT_ACTION_POWEROFF ? l->o->poweroff_cmd : l->o->reboot_cmd;
        int status = 0, r;

        say("%s: running %s", a == AGENT_ACTION_POWEROFF ? "powering off" : "rebooting", cmd);
        r = run_command(cmd, &status);
        if (r < 0) {
                log_error("Failed to run %s: %s", cmd, strerror(-r));
                return -EIO;
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                log_error("The %s command \"%s\" failed (%s %d)", agent_action_name(a), cmd,
                          WIFEXITED(status) ? "exit status" : "signal",
                          WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
                return -EIO;
        }
        return 1;
}

static void queue_event(struct agent_loop *l, enum agent_event ev, const char *detail, enum agent_action then)
{
        l->event_pending = true;
        l->event = ev;
        str_copy(l->event_detail, sizeof(l->event_detail), detail);
        l->event_attempts = 0;
        l->after_event = then;
        l->event_starts_install = false;
}

/* Acts on an instruction the first time it arrives; repeats of it change nothing. */
static void follow(struct agent_loop *l, const struct agent_instruction *in)
{
        char reason[AGENT_MAX_REASON * 4 + 1], line[AGENT_MAX_REASON + 64], detail[AGENT_MAX_STRING + 1];

        if (l->have_instruction && agent_instruction_equal(&l->instruction, in))
                return;
        l->instruction = *in;
        l->have_instruction = true;
        log_escape(reason, sizeof(reason), in->reason, strlen(in->reason));
        say("instruction %s: %s", agent_action_name(in->action), in->reason[0] ? reason : "(no reason given)");
        switch (in->action) {
        case AGENT_ACTION_WAIT:
                l->status = "waiting";
                break;
        case AGENT_ACTION_INSTALL:
                if (l->job || l->install_pending) {
                        log_warning("Already installing; the new install instruction waits for the install to end");
                        break;
                }
                snprintf(line, sizeof(line), "installing %s version %" PRIu64 ", disk rule \"%s\"", in->image.name,
                         in->image.version, in->image.disk);
                agent_text_clean(detail, sizeof(detail), line, strlen(line));
                l->status = "installing";
                queue_event(l, AGENT_EVENT_INSTALL_STARTED, detail, AGENT_ACTION_WAIT);
                l->event_starts_install = true;
                l->install_image = in->image;
                break;
        case AGENT_ACTION_REBOOT:
        case AGENT_ACTION_POWEROFF:
                snprintf(line, sizeof(line), "%s as instructed%s%s",
                         in->action == AGENT_ACTION_REBOOT ? "rebooting" : "powering off", in->reason[0] ? ": " : "",
                         in->reason);
                agent_text_clean(detail, sizeof(detail), line, strlen(line));   /* cut at a character */
                l->status = in->action == AGENT_ACTION_REBOOT ? "rebooting" : "powering off";
                queue_event(l, AGENT_EVENT_LOG, detail, in->action);
                break;
        case _AGENT_ACTION_MAX:
                break;
        }
}

static int on_reply(struct agent_loop *l, enum agent_call call, struct agent_response *reply, uint64_t *ret_delay)
{
        int r;

        l->failures = 0;
        if (reply->heartbeat_seconds)
                l->heartbeat_s = reply->heartbeat_seconds;
        if (call == AGENT_CALL_REGISTER) {
                r = agent_client_set_session(l->client, reply->session);
                agent_response_wipe(reply);
                if (r < 0)
                        return r;
                l->registered = true;
                say("registered as %s (state %s)", reply->machine, reply->state);
        } else if (strcmp(l->state, reply->state) != 0) {
                say("state %s", reply->state);
        }
        str_copy(l->state, sizeof(l->state), reply->state);
        if (call == AGENT_CALL_EVENT) {
                l->event_pending = false;
                if (l->after_event != AGENT_ACTION_WAIT)
                        return run_action(l, l->after_event);
                if (l->event_starts_install) {
                        l->event_starts_install = false;
                        l->install_pending = true;
                        l->install_fetch_failures = 0;
                }
        }
        if (call == AGENT_CALL_INSTRUCTION)
                l->resync = false;
        follow(l, &reply->instruction);
        *ret_delay = l->event_pending || l->install_pending ? 0 : agent_heartbeat_delay_usec(l->heartbeat_s, random_u32());
        return 0;
}

static int on_unauthorized(struct agent_loop *l, enum agent_call call, const struct agent_result *res,
                           uint64_t *ret_delay)
{
        if (call == AGENT_CALL_EVENT && l->after_event != AGENT_ACTION_WAIT) {
                log_warning("%s; going ahead without the event", res->why);
                return run_action(l, l->after_event);
        }
        log_error("%s: metald no longer accepts this %s; rebooting in %u s for a new boot nonce", res->why,
                  call == AGENT_CALL_REGISTER ? "boot nonce" : "session", l->heartbeat_s);
        l->reboot_now = true;
        *ret_delay = l->heartbeat_s * USEC_PER_SEC;
        return 0;
}

static int on_failure(struct agent_loop *l, enum agent_call call, const struct agent_result *res,
                      uint64_t *ret_delay)
{
        if (res->verdict == AGENT_UNAUTHORIZED)
                return on_unauthorized(l, call, res, ret_delay);
        if (res->verdict == AGENT_REFUSED) {
                log_warning("%s; dropping the %s event", res->why, agent_event_name(l->event));
                l->event_pending = false;
                l->event_starts_install = false;
                if (l->after_event != AGENT_ACTION_WAIT)
                        return run_action(l, l->after_event);
                l->resync = true;
                *ret_delay = 0;
                return 0;
        }
        l->failures++;
        /* an event never holds up a reboot for long, nor heartbeats for ever when metald keeps refusing it */
        if (call == AGENT_CALL_EVENT && ++l->event_attempts >= AGENT_EVENT_ATTEMPTS &&
            (l->after_event != AGENT_ACTION_WAIT || res->verdict == AGENT_RETRY_SLOW)) {
                l->event_pending = false;
                l->event_starts_install = false;
                if (l->after_event != AGENT_ACTION_WAIT) {
                        log_warning("%s; going ahead without the event", res->why);
                        return run_action(l, l->after_event);
                }
                log_warning("%s; dropping the %s event", res->why, agent_event_name(l->event));
        }
        if (l->o->max_attempts && l->failures >= l->o->max_attempts) {
                log_error("%s; giving up after %u attempts", res->why, l->failures);
                return -ETIMEDOUT;
        }
        *ret_delay = agent_retry_delay_usec(res->verdict, l->failures, res->retry_after_usec, random_u32());
        log_warning("%s%s; retrying in %.1f s", res->why,
                    call == AGENT_CALL_REGISTER && res->status == 409 ? " (an operator must resolve the conflict)" : "",
                    (double)*ret_delay / USEC_PER_SEC);
        return 0;
}

/* The install */

static void install_progress(void *userdata, const struct agent_install_progress *p)
{
        struct install_job *job = userdata;

        pthread_mutex_lock(&job->lock);
        job->progress = *p;
        job->have_progress = true;
        pthread_mutex_unlock(&job->lock);
}

static void *install_main(void *userdata)
{
        struct install_job *job = userdata;

        job->r = agent_install(&job->o, &job->res);
        atomic_store(&job->done, true);
        return NULL;
}

static void job_free(struct install_job *job)
{
        if (!job)
                return;
        agent_install_setup_free(&job->setup);
        buf_free(&job->manifest);
        buf_free(&job->sig);
        pthread_mutex_destroy(&job->lock);
        free(job);
}

/* install-failed: the disk does not boot, and the agent heartbeats until metald says what next. */
static void install_failed(struct agent_loop *l, const char *why)
{
        char detail[AGENT_MAX_STRING + 1];

        log_error("Install failed: %s", why);
        agent_text_clean(detail, sizeof(detail), why, strlen(why));
        l->status = "install failed";
        l->progress = -1;
        queue_event(l, AGENT_EVENT_INSTALL_FAILED, detail, AGENT_ACTION_WAIT);
}

/* The device the image's disk rule picks: dev_dir/NAME. */
static int install_target(struct agent_loop *l, const struct agent_image *img, char *target, size_t cap, char *why,
                          size_t why_cap)
{
        _cleanup_free_ struct agent_disk_use *use = calloc(MAX(l->inv->n_disks, (size_t)1), sizeof(*use));
        char resolved[AGENT_DISK_NAME_MAX + 1];
        struct agent_disk_rule rule;
        size_t i;
        int r;

        if (!use)
                return snprintf(why, why_cap, "out of memory"), -ENOMEM;
        if (agent_disk_rule_parse(img->disk, strlen(img->disk), &rule) < 0)
                return snprintf(why, why_cap, "disk rule \"%s\" is not one this agent knows", img->disk), -EINVAL;
        if (rule.kind == AGENT_DISK_PATH && (r = agent_disk_path_resolve(l->o->dev_dir, rule.value, resolved)) < 0)
                return snprintf(why, why_cap, "disk rule \"path=%s\": %s", rule.value,
                                r == -EXDEV ? "the link does not name a disk" : strerror(-r)), r;
        r = agent_disk_use_collect(l->o->sysroot, l->inv, use);
        if (r < 0)
                return snprintf(why, why_cap, "cannot tell which disks are in use (the mounts below %s): %s",
                                l->o->sysroot, strerror(-r)), r;
        r = agent_disk_choose(&rule, img->allow_removable, rule.kind == AGENT_DISK_PATH ? resolved : NULL, l->inv,
                              use, &i, why, why_cap);
        if (r < 0)
                return r;
        if ((size_t)snprintf(target, cap, "%s/%s", l->o->dev_dir, l->inv->disks[i].name) >= cap)
                return snprintf(why, why_cap, "the device path is too long"), -ENAMETOOLONG;
        return 0;
}

static int start_job(struct agent_loop *l, struct install_job *job, char *why, size_t why_cap)
{
        const struct agent_image *img = &l->install_image;
        unsigned every = l->o->progress_s ? l->o->progress_s : AGENT_INSTALL_PROGRESS_S;
        int r;

        agent_install_setup_apply(&job->setup, &job->o);
        job->o.manifest = (const uint8_t *)job->manifest.data;
        job->o.manifest_len = job->manifest.len;
        job->o.sig = (const uint8_t *)job->sig.data;
        job->o.sig_len = job->sig.len;
        job->o.target = job->target;
        job->o.config_from_manifest = true;
        job->o.now = (int64_t)time(NULL);
        job->o.progress = install_progress;
        job->o.progress_userdata = job;
        job->o.progress_interval_usec = INSTALL_REPORT_USEC;
        job->o.state_file = l->o->state_file;
        job->o.cancel = &job->cancel;
        job->next_event_usec = now_monotonic_usec() + every * USEC_PER_SEC;
        /* the thread inherits the blocked termination signals: they stay with this loop */
        r = pthread_create(&job->thread, NULL, install_main, job);
        if (r != 0)
                return snprintf(why, why_cap, "cannot start the install: %s", strerror(r)), -r;
        say("installing %s version %" PRIu64 " from %s/disk to %s", img->name, img->version, img->url, job->target);
        l->progress = 0;
        snprintf(l->status_line, sizeof(l->status_line), "installing to %s", job->target);
        l->status = l->status_line;
        return 0;
}

/* Once metald took install-started: the target, the keys, the signed manifest, then the worker thread. */
static int begin_install(struct agent_loop *l, uint64_t *ret_delay)
{
        const struct agent_image *img = &l->install_image;
        struct install_job *job = calloc(1, sizeof(*job));
        char why[AGENT_MAX_REASON + 1] = "";
        struct agent_result res;
        int r;

        *ret_delay = 0;
        if (!job) {
                l->install_pending = false;
                install_failed(l, "out of memory");
                return 0;
        }
        pthread_mutex_init(&job->lock, NULL);
        r = install_target(l, img, job->target, sizeof(job->target), why, sizeof(why));
        if (r == 0) {
                r = agent_install_setup(&job->setup, l->o->keys_dir, img->url, img->hostname, why, sizeof(why));
                if (r == -ENOKEY || r == -ENOENT)
                        snprintf(why, sizeof(why), NO_KEYS " (%s)", l->o->keys_dir);
        }
        if (r == 0 && (r = agent_sha256_from_hex(img->sha256, job->o.manifest_sha256)) < 0)
                snprintf(why, sizeof(why), "the announced manifest digest is not hex");
        if (r == 0 && (r = agent_fetch_image_manifest(l->client, &job->manifest, &job->sig, &res)) < 0) {
                job_free(job);
                if (res.verdict == AGENT_UNAUTHORIZED) {
                        l->install_pending = false;
                        return on_unauthorized(l, AGENT_CALL_INSTRUCTION, &res, ret_delay);
                }
                if (res.verdict == AGENT_RETRY && ++l->install_fetch_failures < AGENT_INSTALL_FETCH_ATTEMPTS) {
                        *ret_delay = agent_retry_delay_usec(res.verdict, l->install_fetch_failures,
                                                            res.retry_after_usec, random_u32());
                        log_warning("%s; fetching the manifest again in %.1f s", res.why,
                                    (double)*ret_delay / USEC_PER_SEC);
                        return 0;
                }
                l->install_pending = false;
                snprintf(why, sizeof(why), "fetching the image manifest: %s", res.why);
                install_failed(l, why);
                return 0;
        }
        l->install_pending = false;
        if (r == 0)
                r = start_job(l, job, why, sizeof(why));
        if (r < 0) {
                job_free(job);
                install_failed(l, why);
                return 0;
        }
        l->job = job;
        return 0;
}

/* "412 MiB of 1.2 GiB, 38 MiB/s, ETA 21 s"; returns the percent done. */
static int progress_text(const struct agent_install_progress *p, char *ret, size_t cap)
{
        char done[32], total[32], rate[32], eta[32] = "";

        agent_bytes_text(p->done_bytes, done, sizeof(done));
        agent_bytes_text(p->total_bytes, total, sizeof(total));
        agent_bytes_text(p->rate_bytes_per_s, rate, sizeof(rate));
        if (p->eta_s != UINT64_MAX)
                snprintf(eta, sizeof(eta), ", ETA %" PRIu64 " s", p->eta_s);
        snprintf(ret, cap, "%s of %s, %s/s%s", done, total, rate, eta);
        return p->total_bytes ? (int)(MIN(p->done_bytes, p->total_bytes) * 100 / p->total_bytes) : 100;
}

/* An install-progress event; a lost one is not sent again (the next comes soon). */
static void send_progress(struct agent_loop *l)
{
        struct install_job *job = l->job;
        unsigned every = l->o->progress_s ? l->o->progress_s : AGENT_INSTALL_PROGRESS_S;
        struct agent_response reply = { 0 };
        struct agent_install_progress p;
        char detail[AGENT_MAX_STRING + 1];
        struct agent_result res;
        bool have;
        int pct;

        job->next_event_usec = now_monotonic_usec() + every * USEC_PER_SEC;
        pthread_mutex_lock(&job->lock);
        p = job->progress;
        have = job->have_progress;
        pthread_mutex_unlock(&job->lock);
        if (!have)
                return;
        pct = progress_text(&p, detail, sizeof(detail));
        l->progress = pct;
        snprintf(l->status_line, sizeof(l->status_line), "installing to %s: %d%%", job->target, pct);
        say("install: %d%%, %s", pct, detail);
        if (agent_send_event(l->client, AGENT_EVENT_INSTALL_PROGRESS, detail, pct, &reply, &res) < 0)
                log_warning("%s; dropping this progress report", res.why);
        agent_response_wipe(&reply);
}

static void finish_install(struct agent_loop *l)
{
        struct install_job *job = l->job;
        const struct agent_image *img = &l->install_image;
        char line[AGENT_MAX_STRING + TARGET_MAX + 1], detail[AGENT_MAX_STRING + 1];

        pthread_join(job->thread, NULL);
        l->job = NULL;
        if (job->r < 0) {
                install_failed(l, job->res.why);
        } else {
                snprintf(line, sizeof(line), "installed %s version %" PRIu64 " to %s: %zu chunks written, %u retries",
                         img->name, img->version, job->target, job->res.chunks_written, job->res.retries);
                say("%s", line);
                agent_text_clean(detail, sizeof(detail), line, strlen(line));
                l->status = "installed";
                l->progress = 100;
                queue_event(l, AGENT_EVENT_INSTALL_SUCCEEDED, detail, AGENT_ACTION_WAIT);
        }
        job_free(job);
}

/* Stops a running install at its next chunk and waits for it; the target does not boot. */
static void stop_install(struct agent_loop *l)
{
        if (!l->job)
                return;
        say("stopping the install at its next chunk");
        atomic_store(&l->job->cancel, true);
        pthread_join(l->job->thread, NULL);
        job_free(l->job);
        l->job = NULL;
}

/* Like sleep_or_stop while an install runs: wakes when it ends and sends its progress on time. */
static bool install_sleep(struct agent_loop *l, uint64_t usec)
{
        uint64_t end = now_monotonic_usec() + usec;

        for (;;) {
                uint64_t now = now_monotonic_usec(), slice;

                if (atomic_load(&l->job->done) || now >= end)
                        return false;
                if (now >= l->job->next_event_usec) {
                        send_progress(l);
                        continue;
                }
                slice = MIN(MIN(end - now, l->job->next_event_usec - now), INSTALL_POLL_USEC);
                if (sleep_or_stop(&l->stop, slice))
                        return true;
        }
}

/* One call to metald: 0 to go on after *ret_delay, 1 when done, or -errno. */
static int loop_step(struct agent_loop *l, uint64_t *ret_delay)
{
        struct agent_response reply = { 0 };
        struct agent_result res;
        enum agent_call call;
        int r;

        if (l->reboot_now)
                return run_action(l, AGENT_ACTION_REBOOT);
        if (l->job && atomic_load(&l->job->done))
                finish_install(l);
        if (l->registered && !l->event_pending && l->install_pending)
                return begin_install(l, ret_delay);
        if (!l->registered) {
                call = AGENT_CALL_REGISTER;
                r = agent_register(l->client, l->o->nonce, l->o->boot_mac, l->inv, &reply, &res);
        } else if (l->event_pending) {
                call = AGENT_CALL_EVENT;
                r = agent_send_event(l->client, l->event, l->event_detail, -1, &reply, &res);
        } else if (l->resync) {
                call = AGENT_CALL_INSTRUCTION;
                r = agent_fetch_instruction(l->client, &reply, &res);
        } else {
                call = AGENT_CALL_HEARTBEAT;
                r = agent_heartbeat(l->client, l->progress, l->status, &reply, &res);
        }
        if (res.trimmed && !l->warned_trim) {
                log_warning("Left %zu NICs and disks out of the registration to fit %d bytes", res.trimmed,
                            AGENT_MAX_BODY_BYTES);
                l->warned_trim = true;
        }
        r = r == 0 ? on_reply(l, call, &reply, ret_delay) : on_failure(l, call, &res, ret_delay);
        agent_response_wipe(&reply);
        return r;
}

static int loop(struct agent_loop *l)
{
        for (;;) {
                uint64_t delay = 0;
                int r = loop_step(l, &delay);

                if (r != 0)
                        return r < 0 ? r : 0;
                if (l->job ? install_sleep(l, delay) : sleep_or_stop(&l->stop, delay)) {
                        say("stopping on a termination signal");
                        return 0;
                }
        }
}

int agent_run(const struct agent_options *o)
{
        _cleanup_free_ struct agent_inventory *inv = calloc(1, sizeof(*inv));
        struct agent_loop l = {
                .o = o, .inv = inv, .heartbeat_s = AGENT_DEFAULT_HEARTBEAT_S, .status = "registered",
                .after_event = AGENT_ACTION_WAIT, .progress = -1,
        };
        sigset_t old;
        int r;

        if (!inv)
                return log_error_errno(-ENOMEM, "Out of memory");
        r = agent_inventory_collect(o->sysroot, inv);
        if (r < 0)
                return log_error_errno(r, "Failed to read the inventory below %s: %s", o->sysroot, strerror(-r));
        say("inventory: %" PRIu32 " CPUs, %" PRIu64 " MiB, %zu NICs, %zu disks", inv->cpu_count,
            inv->memory_bytes >> 20, inv->n_nics, inv->n_disks);
        r = agent_client_new(o->url, &l.client);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the HTTP client: %s", strerror(-r));
        sigemptyset(&l.stop);
        sigaddset(&l.stop, SIGTERM);
        sigaddset(&l.stop, SIGINT);
        sigprocmask(SIG_BLOCK, &l.stop, &old);
        say("registering with %s as %s", o->url, o->boot_mac);
        r = loop(&l);
        stop_install(&l);
        sigprocmask(SIG_SETMASK, &old, NULL);
        agent_client_free(l.client);
        return r;
}
