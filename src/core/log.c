/* SPDX-License-Identifier: Apache-2.0 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>

#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include "metald/limits.h"
#include "metald/log.h"

static int max_level = LOG_INFO;
static bool use_journal;
static char log_ident[32] = "metald";

static const char *const level_names[] = {
        [LOG_EMERG] = "emerg", [LOG_ALERT] = "alert", [LOG_CRIT] = "crit",
        [LOG_ERR] = "error", [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
        [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

static bool stderr_is_journal(void)
{
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return st.st_dev == dev && st.st_ino == ino;
}

void log_setup(const char *ident)
{
        if (ident)
                str_copy(log_ident, sizeof(log_ident), ident);
        use_journal = stderr_is_journal();
}

void log_set_level(int prio) { max_level = prio; }
int log_get_level(void) { return max_level; }
bool log_to_journal(void) { return use_journal; }

int log_level_from_string(const char *s)
{
        for (size_t i = 0; i < ARRAY_SIZE(level_names); i++)
                if (level_names[i] && strcmp(level_names[i], s) == 0)
                        return (int)i;
        return -EINVAL;
}

const char *log_level_to_string(int prio)
{
        if (prio < 0 || (size_t)prio >= ARRAY_SIZE(level_names))
                return "?";
        return level_names[prio];
}

char *log_escape(char *dst, size_t cap, const void *src, size_t len)
{
        const uint8_t *s = src;
        size_t o = 0;

        if (cap == 0)
                return dst;
        for (size_t i = 0; i < len; i++) {
                char tmp[5];
                size_t n;

                if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\' && s[i] != '"') {
                        tmp[0] = (char)s[i];
                        n = 1;
                } else {
                        n = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02x", s[i]);
                }
                if (o + n >= cap) {
                        /* mark truncation with "..." when there is room */
                        if (cap > 4)
                                memcpy(dst + MIN(o, cap - 4), "...", 3), o = MIN(o, cap - 4) + 3;
                        break;
                }
                memcpy(dst + o, tmp, n);
                o += n;
        }
        dst[MIN(o, cap - 1)] = '\0';
        return dst;
}

static void emit_journal(int prio, const struct log_field *f, size_t n, const char *msg)
{
        struct iovec iov[3 + 16];
        char bufs[3 + 16][LOG_MAX_FIELD + 32];
        size_t k = 0;

        snprintf(bufs[k], sizeof(bufs[k]), "PRIORITY=%d", prio);
        iov[k].iov_base = bufs[k], iov[k].iov_len = strlen(bufs[k]), k++;
        snprintf(bufs[k], sizeof(bufs[k]), "SYSLOG_IDENTIFIER=%s", log_ident);
        iov[k].iov_base = bufs[k], iov[k].iov_len = strlen(bufs[k]), k++;
        for (size_t i = 0; i < n && i < 16; i++) {
                char esc[LOG_MAX_FIELD];

                log_escape(esc, sizeof(esc), f[i].value, strlen(f[i].value));
                snprintf(bufs[k], sizeof(bufs[k]), "%s=%s", f[i].key, esc);
                iov[k].iov_base = bufs[k], iov[k].iov_len = strlen(bufs[k]), k++;
        }
        /* MESSAGE may be long; it is not copied into the fixed buffers. */
        char *m = NULL;
        if (asprintf(&m, "MESSAGE=%s", msg) < 0)
                return;
        iov[k].iov_base = m, iov[k].iov_len = strlen(m), k++;
        sd_journal_sendv(iov, (int)k);
        free(m);
}

/* Plain lines: the structured fields are for the journal, the message says it all. */
static void emit_stderr(int prio, const char *msg)
{
        char line[LOG_MAX_LINE], stamp[32];
        struct timespec ts;
        struct tm tm;
        int n;

        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
        n = snprintf(line, sizeof(line), "%s.%03ldZ %s[%d]: %s: %s\n", stamp, ts.tv_nsec / 1000000, log_ident,
                     (int)getpid(), log_level_to_string(prio), msg);
        if (n < 0)
                return;
        if ((size_t)n >= sizeof(line)) {
                n = sizeof(line) - 1;
                line[n - 1] = '\n';
        }
        /* one write per record so concurrent threads never interleave */
        if (write(STDERR_FILENO, line, (size_t)n) < 0)
                return;
}

void log_fields(int prio, const struct log_field *fields, size_t n_fields, const char *fmt, ...)
{
        char msg[LOG_MAX_LINE];
        int saved = errno;
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (use_journal)
                emit_journal(prio, fields, n_fields, msg);
        else
                emit_stderr(prio, msg);
        errno = saved;
}

struct rl_slot {
        uint64_t hash;
        uint64_t window_start;
        unsigned count;
        unsigned suppressed;
};

static struct rl_slot rl_slots[LOG_RATELIMIT_SLOTS];
static pthread_mutex_t rl_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t fnv1a(const void *key, size_t len)
{
        const uint8_t *p = key;
        uint64_t h = 1469598103934665603ULL;

        for (size_t i = 0; i < len; i++)
                h = (h ^ p[i]) * 1099511628211ULL;
        return h | 1;
}

bool log_ratelimit_ok(const void *key, size_t len)
{
        uint64_t h = fnv1a(key, len), now = now_monotonic_usec();
        struct rl_slot *s = &rl_slots[h % LOG_RATELIMIT_SLOTS];
        unsigned suppressed = 0;
        bool ok;

        pthread_mutex_lock(&rl_lock);
        if (s->hash != h || now - s->window_start > LOG_RATELIMIT_INTERVAL_USEC) {
                suppressed = s->hash == h ? s->suppressed : 0;
                *s = (struct rl_slot){ .hash = h, .window_start = now };
        }
        ok = s->count < LOG_RATELIMIT_BURST;
        if (ok)
                s->count++;
        else
                s->suppressed++;
        pthread_mutex_unlock(&rl_lock);
        if (suppressed > 0)
                log_warning("suppressed %u messages from one peer in the last window", suppressed);
        return ok;
}
