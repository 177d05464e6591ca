/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <pthread.h>
#include <ifaddrs.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "metald/daemon.h"
#include "metald/dhcp_server.h"
#include "metald/http_service.h"
#include "metald/initramfs.h"
#include "metald/log.h"
#include "metald/preflight.h"
#include "metald/registry.h"
#include "metald/tftp.h"
#include "metald/util.h"
#include "metald/version.h"

#include "control.h"

#define DAEMON_TICK_USEC (1 * USEC_PER_SEC)
#define DAEMON_SWEEP_USEC (5 * USEC_PER_SEC)

struct daemon {
        struct runtime rt;
        struct dhcp_service *dhcp;
        struct tftp_service *tftp;
        struct http_service *http;
        struct control_service *control;
        uint64_t watchdog_usec;
        uint64_t last_sweep;
};

int daemon_resolve_server_ip(const struct config *cfg, uint32_t *ret)
{
        struct ifaddrs *ifa = NULL;
        int r = -EADDRNOTAVAIL;

        if (cfg->server_address.s_addr) {
                *ret = ntohl(cfg->server_address.s_addr);
                return 0;
        }
        if (!*cfg->interface)
                return -EDESTADDRREQ;
        if (getifaddrs(&ifa) < 0)
                return -errno;
        for (struct ifaddrs *i = ifa; i; i = i->ifa_next)
                if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && strcmp(i->ifa_name, cfg->interface) == 0) {
                        *ret = ntohl(((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr);
                        r = 0;
                        break;
                }
        freeifaddrs(ifa);
        return r;
}

/*
 * Every file the configuration needs, one line each: EXIT_OK, EXIT_USAGE after
 * an error (as for an error in the file itself), EXIT_FAILED when it cannot check.
 */
static int check_files(const struct config *cfg)
{
        struct preflight_report rep;
        int r = preflight_run(cfg, 0, &rep);

        if (r < 0) {
                log_error("cannot check the files %s needs: %s", cfg->path, strerror(-r));
                return EXIT_FAILED;
        }
        for (size_t i = 0; i < rep.n; i++) {
                const struct preflight_finding *f = &rep.findings[i];

                if (f->severity == PREFLIGHT_ERROR)
                        log_error("%s: %s", f->file, f->what);
                else
                        log_warning("%s: %s", f->file, f->what);
        }
        r = rep.n_errors ? EXIT_USAGE : EXIT_OK;
        if (rep.n_errors)
                log_error("%s: %zu of the files it needs %s missing or unusable; not starting", cfg->path,
                          rep.n_errors, rep.n_errors == 1 ? "is" : "are");
        preflight_report_free(&rep);
        return r;
}

static int prepare(struct daemon *d, const struct config *cfg)
{
        char digest[65];
        int r;

        d->rt.cfg = cfg;
        r = daemon_resolve_server_ip(cfg, &d->rt.server_ip);
        if (r == -EDESTADDRREQ)
                return log_error_errno(r, "%s: server.address or server.interface must be set", cfg->path);
        if (r < 0)
                return log_error_errno(r, "%s: server.interface %s has no IPv4 address; set server.address",
                                       cfg->path, cfg->interface);
        if ((r = mkdir_p(cfg->state_dir, 0750)) < 0)
                return log_error_errno(r, "cannot create state_dir %s: %s", cfg->state_dir, strerror(-r));
        if ((size_t)snprintf(d->rt.db_path, sizeof(d->rt.db_path), "%s/metald.db", cfg->state_dir) >=
            sizeof(d->rt.db_path))
                return log_error_errno(-ENAMETOOLONG, "state_dir %s is too long", cfg->state_dir);
        /* built (or found already built) before anything can ask for it */
        if (cfg->boot.enroll.build.enabled &&
            (r = initramfs_ensure(cfg, cfg->state_dir, d->rt.enroll_initrd, sizeof(d->rt.enroll_initrd), digest)) < 0)
                return log_error_errno(r, "cannot build the enrollment initramfs (boot.enroll.build)");
        return 0;
}

static int start_services(struct daemon *d)
{
        const struct config *cfg = d->rt.cfg;
        int64_t now = (int64_t)(now_realtime_usec() / USEC_PER_SEC);
        int r;

        if ((r = registry_open(d->rt.db_path, cfg, &d->rt.registry)) < 0)
                return log_error_errno(r, "cannot open the state database %s: %s", d->rt.db_path, strerror(-r));
        if ((r = registry_recover(d->rt.registry, now)) > 0)
                log_notice("%d machines were in a transient state at restart and failed cleanly", r);
        if ((r = control_service_start(&d->rt, &d->control)) < 0)
                return r;
        if (cfg->dhcp.enabled && (r = dhcp_service_start(&d->rt, &d->dhcp)) < 0)
                return r;
        if (cfg->tftp.enabled && (r = tftp_service_start(&d->rt, &d->tftp)) < 0)
                return r;
        if (cfg->http.enabled && (r = http_service_start(&d->rt, &d->http)) < 0)
                return r;
        return 0;
}

static void stop_services(struct daemon *d)
{
        http_service_stop(d->http);
        tftp_service_stop(d->tftp);
        dhcp_service_stop(d->dhcp);
        control_service_stop(d->control);
        registry_close(d->rt.registry);
        d->http = NULL;
        d->tftp = NULL;
        d->dhcp = NULL;
        d->control = NULL;
        d->rt.registry = NULL;
}

/* Machines whose waiting state ran out of time fail with the reason. */
static void sweep_deadlines(struct daemon *d, uint64_t mono)
{
        int n;

        if (mono - d->last_sweep < DAEMON_SWEEP_USEC)
                return;
        d->last_sweep = mono;
        n = registry_sweep(d->rt.registry, (int64_t)(now_realtime_usec() / USEC_PER_SEC));
        if (n > 0)
                log_info("%d machines passed their deadline", n);
}

/* The watchdog is only fed while every service thread is still turning its loop. */
static bool services_alive(const struct daemon *d, uint64_t now)
{
        uint64_t limit = d->watchdog_usec ? d->watchdog_usec : 30 * USEC_PER_SEC;

        if (d->dhcp && now - dhcp_service_heartbeat(d->dhcp) > limit)
                return false;
        if (d->tftp && now - tftp_service_heartbeat(d->tftp) > limit)
                return false;
        if (d->http && now - http_service_heartbeat(d->http) > limit)
                return false;
        return true;
}

static int wait_for_signal(struct daemon *d, const sigset_t *set)
{
        uint64_t tick = DAEMON_TICK_USEC;

        if (d->watchdog_usec)
                tick = MIN(tick, d->watchdog_usec / 2);
        for (;;) {
                struct timespec ts = { (time_t)(tick / USEC_PER_SEC), (long)(tick % USEC_PER_SEC) * 1000 };
                int sig = sigtimedwait(set, NULL, &ts);

                if (sig == SIGTERM || sig == SIGINT)
                        return sig;
                if (sig == SIGHUP)
                        log_notice("SIGHUP: configuration is read at start; restart metald to apply changes");
                sweep_deadlines(d, now_monotonic_usec());
                if (d->watchdog_usec && services_alive(d, now_monotonic_usec()))
                        sd_notify(0, "WATCHDOG=1");
        }
}

int daemon_run(const struct config *cfg)
{
        struct daemon d = { 0 };
        char ip[16];
        sigset_t set;
        int sig, r;

        log_set_level(cfg->log_level);
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGHUP);
        /* blocked before any thread starts, so only the main thread receives them */
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        signal(SIGPIPE, SIG_IGN);
        if ((r = check_files(cfg)) != EXIT_OK)
                return r;
        if (prepare(&d, cfg) < 0)
                return 1;
        if (sd_watchdog_enabled(0, &d.watchdog_usec) <= 0)
                d.watchdog_usec = 0;
        if (start_services(&d) < 0) {
                stop_services(&d);
                return 1;
        }
        format_ipv4(ip, (struct in_addr){ htonl(d.rt.server_ip) });
        log_info("metald %s ready on %s (dhcp %s, tftp %s, http %s)", METALD_VERSION, ip,
                 cfg->dhcp.enabled ? dhcp_mode_name(cfg->dhcp.mode) : "off", cfg->tftp.enabled ? "on" : "off",
                 cfg->http.enabled ? "on" : "off");
        sd_notifyf(0, "READY=1\nSTATUS=serving on %s", ip);
        sig = wait_for_signal(&d, &set);
        log_info("received %s, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        sd_notify(0, "STOPPING=1\nSTATUS=stopping");
        stop_services(&d);
        return 0;
}
