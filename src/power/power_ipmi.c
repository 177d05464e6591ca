/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ipmi driver runs ipmitool (IPMI 2.0, lanplus) once per operation:
 *   ipmitool -I lanplus -H HOST -p PORT -U USER -f /dev/fd/3 [-C N] chassis power WORD
 * status, on, off, cycle, reset and soft-off are "chassis power" status, on,
 * off, cycle, reset and soft. The password file is opened and checked here and
 * handed to ipmitool as its fd 3, so the password is on no command line and in
 * no environment. No shell is involved; the child runs in a session of its
 * own (no terminal to prompt on), with a fixed environment, and is killed
 * when the operation's time runs out.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "metald/power_wire.h"
#include "metald/util.h"
#include "power_driver.h"

#define CHILD_PASSWORD_FD 3
#define FIRST_PRIVATE_FD  10    /* our ends stay clear of the child's 0..3 while it is set up */

static int pw_fail(char *why, size_t why_len, int r, const char *path, const char *fmt, ...) _printf_(5, 6);
static int pw_fail(char *why, size_t why_len, int r, const char *path, const char *fmt, ...)
{
        char msg[192];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        snprintf(why, why_len, "password file %s: %s", path, msg);
        return r;
}

/* The first line of the file's first bytes, without its line ending: 0, or -errno with why. */
static int check_password(int fd, const char *path, char *why, size_t why_len)
{
        char buf[POWER_MAX_PASSWORD + 3];
        size_t n = 0, line;
        const char *nl;
        int r = read_full(fd, buf, sizeof(buf), &n);

        if (r < 0)
                return pw_fail(why, why_len, r, path, "%s", strerror(-r));
        nl = memchr(buf, '\n', n);
        line = nl ? (size_t)(nl - buf) : n;
        if (line > 0 && buf[line - 1] == '\r')
                line--;
        explicit_bzero(buf, sizeof(buf));
        if (line == 0)
                return pw_fail(why, why_len, -EINVAL, path, "the first line is empty");
        if (line > POWER_MAX_PASSWORD)
                return pw_fail(why, why_len, -EINVAL, path, "the password is longer than %d bytes (the IPMI 2.0 limit)",
                               POWER_MAX_PASSWORD);
        return 0;
}

int power_open_password_file(const char *path, int *ret_fd, char *why, size_t why_len)
{
        struct stat st;
        int fd, r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return pw_fail(why, why_len, -errno, path, "%s", strerror(errno));
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                r = pw_fail(why, why_len, -EINVAL, path, "not a regular file");
        else if (st.st_mode & (S_IWGRP | S_IRWXO))
                r = pw_fail(why, why_len, -EPERM, path, "mode %04o lets others read or change it (chmod 0600, "
                            "or 0640 for a group)", (unsigned)(st.st_mode & 07777));
        else
                r = check_password(fd, path, why, why_len);
        if (r < 0) {
                close(fd);
                return r;
        }
        *ret_fd = fd;
        return 0;
}

/* fd moved to FIRST_PRIVATE_FD or above, still close-on-exec; the original is closed. */
static int fd_raise(int fd)
{
        int nfd;

        if (fd < 0 || fd >= FIRST_PRIVATE_FD)
                return fd;
        nfd = fcntl(fd, F_DUPFD_CLOEXEC, FIRST_PRIVATE_FD);
        close(fd);
        return nfd;
}

struct child {
        pid_t pid;
        int out, err, pw;       /* our ends of stdout and stderr; the password file */
        uint64_t deadline;
        char stdout_buf[POWER_IPMI_MAX_OUTPUT], stderr_buf[POWER_IPMI_MAX_OUTPUT];
        size_t stdout_len, stderr_len;
        bool stdout_over;
};

static int spawn(struct child *c, const char *tool, char *const argv[], int out_w, int err_w)
{
        static char *const envp[] = { "LC_ALL=C", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        sigset_t none, all;
        int r;

        sigemptyset(&none);
        sigfillset(&all);
        if (posix_spawn_file_actions_init(&fa) != 0)
                return -ENOMEM;
        if (posix_spawnattr_init(&attr) != 0) {
                posix_spawn_file_actions_destroy(&fa);
                return -ENOMEM;
        }
        r = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        if (r == 0)
                r = posix_spawn_file_actions_adddup2(&fa, out_w, 1);
        if (r == 0)
                r = posix_spawn_file_actions_adddup2(&fa, err_w, 2);
        if (r == 0)
                r = posix_spawn_file_actions_adddup2(&fa, c->pw, CHILD_PASSWORD_FD);
        if (r == 0)
                r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);
        if (r == 0)
                r = posix_spawnattr_setsigmask(&attr, &none);
        if (r == 0)
                r = posix_spawnattr_setsigdefault(&attr, &all);
        if (r == 0)
                r = posix_spawn(&c->pid, tool, &fa, &attr, argv, envp);
        posix_spawnattr_destroy(&attr);
        posix_spawn_file_actions_destroy(&fa);
        return -r;
}

/* Appends what fits; returns false at end of file or on an error. */
static bool drain(int fd, char *buf, size_t *len, bool *over)
{
        char tmp[1024];
        ssize_t n = read(fd, tmp, sizeof(tmp));

        if (n < 0)
                return errno == EINTR || errno == EAGAIN;
        if (n == 0)
                return false;
        if ((size_t)n > POWER_IPMI_MAX_OUTPUT - *len) {
                if (over)
                        *over = true;
                n = (ssize_t)(POWER_IPMI_MAX_OUTPUT - *len);
        }
        memcpy(buf + *len, tmp, (size_t)n);
        *len += (size_t)n;
        return true;
}

static int left_ms(const struct child *c)
{
        uint64_t now = now_monotonic_usec();

        return now >= c->deadline ? 0 : (int)MAX((c->deadline - now) / USEC_PER_MSEC, 1);
}

/* Reads both pipes until ipmitool closes them: 0, or -ETIMEDOUT. */
static int collect(struct child *c)
{
        bool out_open = true, err_open = true;

        while (out_open || err_open) {
                struct pollfd p[2] = { { .fd = out_open ? c->out : -1, .events = POLLIN },
                                       { .fd = err_open ? c->err : -1, .events = POLLIN } };
                int ms = left_ms(c), n;

                if (ms == 0)
                        return -ETIMEDOUT;
                n = poll(p, 2, ms);
                if (n < 0 && errno != EINTR)
                        return -errno;
                if (n > 0 && p[0].revents)
                        out_open = drain(c->out, c->stdout_buf, &c->stdout_len, &c->stdout_over);
                if (n > 0 && p[1].revents)
                        err_open = drain(c->err, c->stderr_buf, &c->stderr_len, NULL);
        }
        return 0;
}

/* The child's wait status once it exits, or -ETIMEDOUT after killing it. */
static int reap(struct child *c, int *ret_status)
{
        for (;;) {
                pid_t p = waitpid(c->pid, ret_status, WNOHANG);

                if (p == c->pid)
                        return 0;
                if (p < 0 && errno != EINTR)
                        return -errno;
                if (left_ms(c) == 0) {
                        kill(c->pid, SIGKILL);
                        while (waitpid(c->pid, ret_status, 0) < 0 && errno == EINTR)
                                ;
                        return -ETIMEDOUT;
                }
                poll(NULL, 0, POWER_WAIT_STEP_MS);
        }
}

static int run_child(struct child *c, const char *tool, char *const argv[], int *ret_status)
{
        int o[2], e[2], r, k;

        if (pipe2(o, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(e, O_CLOEXEC) < 0) {
                r = -errno;
                close(o[0]), close(o[1]);
                return r;
        }
        c->out = fd_raise(o[0]), o[1] = fd_raise(o[1]);
        c->err = fd_raise(e[0]), e[1] = fd_raise(e[1]);
        r = c->out < 0 || o[1] < 0 || c->err < 0 || e[1] < 0 ? -EMFILE : spawn(c, tool, argv, o[1], e[1]);
        if (o[1] >= 0)
                close(o[1]);
        if (e[1] >= 0)
                close(e[1]);
        if (r == 0) {
                fd_set_nonblock(c->out);
                fd_set_nonblock(c->err);
                r = collect(c);
                if (r < 0)
                        kill(c->pid, SIGKILL);
                k = reap(c, ret_status);
                if (r == 0)
                        r = k;
        }
        if (c->out >= 0)
                close(c->out);
        if (c->err >= 0)
                close(c->err);
        return r;
}

static int interpret(const struct power_target *t, const struct child *c, int status, enum power_op op,
                     enum power_state *ret_state, char *why, size_t why_len)
{
        char err[512];
        enum power_state st;
        int r;

        power_summarize(c->stderr_buf, c->stderr_len, err, sizeof(err));
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                char how[32];

                if (WIFEXITED(status))
                        snprintf(how, sizeof(how), "exited with status %d", WEXITSTATUS(status));
                else
                        snprintf(how, sizeof(how), "was killed by signal %d", WTERMSIG(status));
                snprintf(why, why_len, "ipmi %s: ipmitool %s%s%s", t->host, how, *err ? ": " : "", err);
                return -EIO;
        }
        if (c->stdout_over) {
                snprintf(why, why_len, "ipmi %s: ipmitool printed more than %d bytes", t->host, POWER_IPMI_MAX_OUTPUT);
                return -EMSGSIZE;
        }
        r = op == POWER_OP_STATUS ? power_ipmi_parse_status(c->stdout_buf, c->stdout_len, &st)
                                  : power_ipmi_parse_control(c->stdout_buf, c->stdout_len, op);
        if (r < 0) {
                char out[256];

                power_summarize(c->stdout_buf, c->stdout_len, out, sizeof(out));
                snprintf(why, why_len, "ipmi %s: unexpected answer from ipmitool: \"%s\"", t->host, out);
                return -EBADMSG;
        }
        if (op == POWER_OP_STATUS && ret_state)
                *ret_state = st;
        return 0;
}

/* argv of one ipmitool run; the strings stay the caller's. */
static void build_argv(const struct power_target *t, const char *tool, enum power_op op, char *port,
                       char *cipher, char *pwpath, char *argv[24])
{
        char *fixed[] = { (char *)tool, "-I", "lanplus", "-H", (char *)t->host, "-p", port,
                          "-U", (char *)t->user, "-f", pwpath };
        size_t n = 0;

        for (size_t i = 0; i < ARRAY_SIZE(fixed); i++)
                argv[n++] = fixed[i];
        if (t->cipher_suite) {
                argv[n++] = "-C";
                argv[n++] = cipher;
        }
        argv[n++] = "chassis";
        argv[n++] = "power";
        argv[n++] = (char *)power_ipmi_word(op);
        argv[n] = NULL;
}

int power_ipmi_run(const struct power_target *t, enum power_op op, enum power_state *ret_state,
                   char *why, size_t why_len)
{
        const char *tool = *t->ipmitool ? t->ipmitool : POWER_IPMITOOL_PATH;
        char port[8], cipher[8], pwpath[16];
        char *argv[24];
        struct child *c;
        int r, status = 0;

        if (access(tool, X_OK) < 0) {
                snprintf(why, why_len, "ipmi %s: cannot run %s: %s (install ipmitool)", t->host, tool, strerror(errno));
                return -ENOENT;
        }
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->out = c->err = -1;
        if ((r = power_open_password_file(t->password_file, &c->pw, why, why_len)) < 0) {
                free(c);
                return r;
        }
        c->pw = fd_raise(c->pw);
        snprintf(port, sizeof(port), "%u", t->port ? t->port : POWER_IPMI_DEFAULT_PORT);
        snprintf(cipher, sizeof(cipher), "%u", t->cipher_suite);
        snprintf(pwpath, sizeof(pwpath), "/dev/fd/%d", CHILD_PASSWORD_FD);
        build_argv(t, tool, op, port, cipher, pwpath, argv);
        c->deadline = now_monotonic_usec() + (uint64_t)(t->timeout_ms ? t->timeout_ms : POWER_DEFAULT_TIMEOUT_MS) *
                                                     USEC_PER_MSEC;
        r = c->pw < 0 ? -EMFILE : run_child(c, tool, argv, &status);
        if (r == -ETIMEDOUT)
                snprintf(why, why_len, "ipmi %s: ipmitool did not finish within %u ms (killed)", t->host,
                         t->timeout_ms ? t->timeout_ms : POWER_DEFAULT_TIMEOUT_MS);
        else if (r < 0)
                snprintf(why, why_len, "ipmi %s: cannot run %s: %s", t->host, tool, strerror(-r));
        else
                r = interpret(t, c, status, op, ret_state, why, why_len);
        if (c->pw >= 0)
                close(c->pw);
        free(c);
        return r;
}
