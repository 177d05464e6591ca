/* SPDX-License-Identifier: Apache-2.0 */
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>

#include "metald/agent.h"
#include "metald/log.h"
#include "metald/util.h"

#define INSTALL_UNAVAILABLE "image installation is not available in this agent version"

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
                log_warning("Cannot install %s to %s: " INSTALL_UNAVAILABLE, in->image.url, in->image.disk);
                l->status = INSTALL_UNAVAILABLE;
                queue_event(l, AGENT_EVENT_INSTALL_FAILED, INSTALL_UNAVAILABLE, AGENT_ACTION_WAIT);
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
        }
        if (call == AGENT_CALL_INSTRUCTION)
                l->resync = false;
        follow(l, &reply->instruction);
        *ret_delay = l->event_pending ? 0 : agent_heartbeat_delay_usec(l->heartbeat_s, random_u32());
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

/* One call to metald: 0 to go on after *ret_delay, 1 when done, or -errno. */
static int loop_step(struct agent_loop *l, uint64_t *ret_delay)
{
        struct agent_response reply = { 0 };
        struct agent_result res;
        enum agent_call call;
        int r;

        if (l->reboot_now)
                return run_action(l, AGENT_ACTION_REBOOT);
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
                r = agent_heartbeat(l->client, -1, l->status, &reply, &res);
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
                if (sleep_or_stop(&l->stop, delay)) {
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
                .after_event = AGENT_ACTION_WAIT,
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
        sigprocmask(SIG_SETMASK, &old, NULL);
        agent_client_free(l.client);
        return r;
}
