/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The qemu driver speaks QMP over QEMU's unix socket (-qmp unix:PATH,server=on,wait=off).
 * What each operation sends:
 *   status    query-status: running (and other states of a live guest) is on;
 *             paused, prelaunch and shutdown are off
 *   on        nothing when on; else system_reset when the guest shut down, then cont
 *   off       stop, then system_reset: the CPUs halt at once and the next cont
 *             starts from the firmware, as after a power button press
 *   cycle     stop, system_reset, cont: a fresh boot from any state
 *   reset     system_reset: running guests reboot, stopped ones stay off
 *   soft-off  system_powerdown (an ACPI power button event; the guest decides)
 * The QEMU process is never ended: run it with -no-shutdown, so that a guest
 * that powers itself off stays there, off, for the next "on".
 */
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "metald/power_wire.h"
#include "metald/util.h"
#include "power_driver.h"

struct qmp {
        int fd;
        const char *path;
        uint64_t deadline;      /* monotonic usec */
        int64_t next_id;
        size_t len;             /* bytes in buf */
        char buf[POWER_QMP_MAX_MESSAGE + 1];
        char *why;
        size_t why_len;
};

static int qmp_fail(struct qmp *q, int r, const char *fmt, ...) _printf_(3, 4);
static int qmp_fail(struct qmp *q, int r, const char *fmt, ...)
{
        char msg[256];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        snprintf(q->why, q->why_len, "qemu %s: %s", q->path, msg);
        return r;
}

/* Milliseconds left before the deadline, at least 1 while any remains; 0 when it has passed. */
static int remaining_ms(const struct qmp *q)
{
        uint64_t now = now_monotonic_usec();

        if (now >= q->deadline)
                return 0;
        return (int)MAX((q->deadline - now) / USEC_PER_MSEC, 1);
}

static int qmp_connect(struct qmp *q)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        if (strlen(q->path) >= sizeof(sa.sun_path))
                return qmp_fail(q, -ENAMETOOLONG, "the socket path is longer than %zu bytes", sizeof(sa.sun_path) - 1);
        memcpy(sa.sun_path, q->path, strlen(q->path) + 1);
        q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (q->fd < 0)
                return qmp_fail(q, -errno, "socket: %s", strerror(errno));
        if (connect(q->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int e = errno;

                /* a unix socket with a full backlog: QEMU serves one QMP client at a time */
                if (e == EAGAIN)
                        return qmp_fail(q, -EBUSY, "the QMP socket is busy (another client holds it)");
                return qmp_fail(q, -e, "cannot connect: %s%s", strerror(e),
                                e == ENOENT || e == ECONNREFUSED ? " (is QEMU running with -qmp?)" : "");
        }
        return 0;
}

/* Waits for fd to be ready for events; 0, or -ETIMEDOUT once the deadline passes. */
static int qmp_wait(struct qmp *q, short events)
{
        for (;;) {
                struct pollfd p = { .fd = q->fd, .events = events };
                int ms = remaining_ms(q), n;

                if (ms == 0)
                        return qmp_fail(q, -ETIMEDOUT, "no answer in time");
                n = poll(&p, 1, ms);
                if (n > 0)
                        return 0;
                if (n < 0 && errno != EINTR)
                        return qmp_fail(q, -errno, "poll: %s", strerror(errno));
        }
}

/* The next message; a line that does not parse ends the session. */
static int qmp_read(struct qmp *q, struct power_qmp_msg *m)
{
        for (;;) {
                char *nl = memchr(q->buf, '\n', q->len);
                ssize_t n;
                int r;

                if (nl) {
                        size_t line = (size_t)(nl - q->buf) + 1;

                        r = power_qmp_parse(q->buf, line, m);
                        memmove(q->buf, q->buf + line, q->len - line);
                        q->len -= line;
                        return r < 0 ? qmp_fail(q, -EBADMSG, "malformed QMP message") : 0;
                }
                if (q->len >= POWER_QMP_MAX_MESSAGE)
                        return qmp_fail(q, -EMSGSIZE, "a QMP message is longer than %d bytes", POWER_QMP_MAX_MESSAGE);
                if ((r = qmp_wait(q, POLLIN)) < 0)
                        return r;
                n = read(q->fd, q->buf + q->len, POWER_QMP_MAX_MESSAGE - q->len);
                if (n == 0)
                        return qmp_fail(q, -ECONNRESET, "QEMU closed the QMP connection");
                if (n < 0 && errno != EAGAIN && errno != EINTR)
                        return qmp_fail(q, -errno, "read: %s", strerror(errno));
                if (n > 0)
                        q->len += (size_t)n;
        }
}

static int qmp_send(struct qmp *q, const char *text)
{
        size_t len = strlen(text);

        for (size_t o = 0; o < len;) {
                ssize_t n = send(q->fd, text + o, len - o, MSG_NOSIGNAL);
                int r;

                if (n > 0) {
                        o += (size_t)n;
                        continue;
                }
                if (n < 0 && errno != EAGAIN && errno != EINTR)
                        return qmp_fail(q, -errno, "send: %s", strerror(errno));
                if ((r = qmp_wait(q, POLLOUT)) < 0)
                        return r;
        }
        return 0;
}

/*
 * Runs one command: 0 once its reply arrived and, with wait_event, that event
 * too (QEMU reports a reset done with RESET). Other events are skipped.
 */
static int qmp_execute(struct qmp *q, const char *cmd, const char *wait_event, char *ret_status, size_t cap)
{
        int64_t id = q->next_id++;
        bool replied = false, seen = !wait_event;
        char text[128];
        int r;

        snprintf(text, sizeof(text), "{\"execute\":\"%s\",\"id\":%lld}\r\n", cmd, (long long)id);
        if ((r = qmp_send(q, text)) < 0)
                return r;
        for (int i = 0; i < POWER_QMP_MAX_MESSAGES && !(replied && seen); i++) {
                struct power_qmp_msg m;

                if ((r = qmp_read(q, &m)) < 0)
                        return r;
                if (m.kind == POWER_QMP_EVENT) {
                        seen = seen || strcmp(m.event, wait_event) == 0;
                        continue;
                }
                if (m.kind == POWER_QMP_GREETING)
                        return qmp_fail(q, -EPROTO, "%s: a second greeting instead of a reply", cmd);
                if (!m.has_id || m.id != id)
                        continue;       /* a reply to someone else's command */
                if (m.kind == POWER_QMP_ERROR)
                        return qmp_fail(q, -EIO, "%s: %s", cmd, m.error);
                if (ret_status && str_copy(ret_status, cap, m.status) < 0)
                        return qmp_fail(q, -EBADMSG, "%s: the status is too long", cmd);
                replied = true;
        }
        if (!(replied && seen))
                return qmp_fail(q, -EPROTO, "%s: no %s within %d messages", cmd, replied ? wait_event : "reply",
                                POWER_QMP_MAX_MESSAGES);
        return 0;
}

static int qmp_open(struct qmp *q)
{
        struct power_qmp_msg m;
        int r;

        if ((r = qmp_connect(q)) < 0 || (r = qmp_read(q, &m)) < 0)
                return r;
        if (m.kind != POWER_QMP_GREETING)
                return qmp_fail(q, -EPROTO, "no QMP greeting");
        return qmp_execute(q, "qmp_capabilities", NULL, NULL, 0);
}

static int qmp_state(struct qmp *q, enum power_state *ret, char status[POWER_QMP_MAX_STATUS + 1])
{
        int r = qmp_execute(q, "query-status", NULL, status, POWER_QMP_MAX_STATUS + 1);

        if (r < 0)
                return r;
        if (!*status)
                return qmp_fail(q, -EBADMSG, "query-status: no status in the reply");
        if (power_qmp_state(status, ret) < 0)
                *ret = POWER_STATE_UNKNOWN;     /* migrating, restoring: neither on nor off */
        return 0;
}

static int qmp_op(struct qmp *q, enum power_op op, enum power_state *ret_state)
{
        char status[POWER_QMP_MAX_STATUS + 1] = "";
        enum power_state st;
        int r;

        switch (op) {
        case POWER_OP_STATUS:
                if ((r = qmp_state(q, &st, status)) < 0)
                        return r;
                if (st == POWER_STATE_UNKNOWN)
                        qmp_fail(q, 0, "QEMU reports status \"%s\"", status);
                if (ret_state)
                        *ret_state = st;
                return 0;
        case POWER_OP_ON:
                if ((r = qmp_state(q, &st, status)) < 0 || st == POWER_STATE_ON)
                        return r;
                /* a guest that shut down must be reset before it may run again */
                if (strcmp(status, "shutdown") == 0 && (r = qmp_execute(q, "system_reset", "RESET", NULL, 0)) < 0)
                        return r;
                return qmp_execute(q, "cont", NULL, NULL, 0);
        case POWER_OP_OFF:
        case POWER_OP_CYCLE:
                if ((r = qmp_execute(q, "stop", NULL, NULL, 0)) < 0 ||
                    (r = qmp_execute(q, "system_reset", "RESET", NULL, 0)) < 0)
                        return r;
                return op == POWER_OP_CYCLE ? qmp_execute(q, "cont", NULL, NULL, 0) : 0;
        case POWER_OP_RESET:
                return qmp_execute(q, "system_reset", "RESET", NULL, 0);
        case POWER_OP_SOFT_OFF:
                return qmp_execute(q, "system_powerdown", NULL, NULL, 0);
        }
        return qmp_fail(q, -EINVAL, "unknown operation %d", (int)op);
}

int power_qemu_run(const struct power_target *t, enum power_op op, enum power_state *ret_state,
                   char *why, size_t why_len)
{
        struct qmp *q = calloc(1, sizeof(*q));
        int r;

        if (!q)
                return -ENOMEM;
        q->fd = -1;
        q->path = t->socket;
        q->next_id = 1;
        q->why = why;
        q->why_len = why_len;
        q->deadline = now_monotonic_usec() +
                      (uint64_t)(t->timeout_ms ? t->timeout_ms : POWER_DEFAULT_TIMEOUT_MS) * USEC_PER_MSEC;
        r = qmp_open(q);
        if (r == 0)
                r = qmp_op(q, op, ret_state);
        if (q->fd >= 0)
                close(q->fd);
        free(q);
        return r;
}
