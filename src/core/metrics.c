/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <sys/resource.h>

#include "metald/metrics.h"

struct metrics metrics;

/* Upper bounds, in microseconds, shared by every histogram. */
static const uint64_t bounds_usec[METRICS_HIST_BUCKETS] = {
        100, 250, 500, 1000, 2500, 5000, 10000, 25000, 100000, 1000000, 10000000, 60000000,
};

void metrics_observe(struct metrics_hist *h, uint64_t usec)
{
        for (size_t i = 0; i < METRICS_HIST_BUCKETS; i++)
                if (usec <= bounds_usec[i])
                        atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&h->sum_usec, usec, memory_order_relaxed);
}

static uint64_t rd(_Atomic uint64_t *v)
{
        return atomic_load_explicit(v, memory_order_relaxed);
}

static int render_hist(struct buf *o, const char *name, const char *help, struct metrics_hist *h)
{
        int r = buf_printf(o, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);

        for (size_t i = 0; r == 0 && i < METRICS_HIST_BUCKETS; i++)
                r = buf_printf(o, "%s_bucket{le=\"%g\"} %llu\n", name, (double)bounds_usec[i] / 1e6,
                               (unsigned long long)rd(&h->bucket[i]));
        if (r == 0)
                r = buf_printf(o, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %g\n%s_count %llu\n", name,
                               (unsigned long long)rd(&h->count), name, (double)rd(&h->sum_usec) / 1e6, name,
                               (unsigned long long)rd(&h->count));
        return r;
}

static int render_counter(struct buf *o, const char *name, const char *help, uint64_t v)
{
        return buf_printf(o, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
                          (unsigned long long)v);
}

static int render_dhcp(struct buf *o)
{
        static const char *const verdicts[] = { "reply", "silent", "drop", "malformed", "store_error" };
        static const char *const types[METRICS_DHCP_TYPES] = {
                "invalid", "DISCOVER", "OFFER", "REQUEST", "DECLINE", "ACK", "NAK", "RELEASE", "INFORM",
        };
        int r = buf_puts(o, "# HELP metald_dhcp_received_total DHCP messages received, by type and verdict\n"
                            "# TYPE metald_dhcp_received_total counter\n");

        for (int t = 0; r == 0 && t < METRICS_DHCP_TYPES; t++)
                for (int v = 0; r == 0 && v < _DHCP_V_MAX; v++) {
                        uint64_t n = rd(&metrics.dhcp_rx[t][v]);

                        if (n)
                                r = buf_printf(o, "metald_dhcp_received_total{type=\"%s\",verdict=\"%s\"} %llu\n",
                                               types[t], verdicts[v],
                                               (unsigned long long)n);
                }
        if (r == 0)
                r = buf_puts(o, "# HELP metald_dhcp_sent_total DHCP replies sent, by type\n"
                                "# TYPE metald_dhcp_sent_total counter\n");
        for (int t = 1; r == 0 && t < METRICS_DHCP_TYPES; t++)
                r = buf_printf(o, "metald_dhcp_sent_total{type=\"%s\"} %llu\n", types[t],
                               (unsigned long long)rd(&metrics.dhcp_tx[t]));
        if (r == 0)
                r = render_counter(o, "metald_dhcp_store_commits_total", "Lease database transactions",
                                   rd(&metrics.dhcp_store_commits));
        if (r == 0)
                r = render_hist(o, "metald_dhcp_reply_seconds", "Time from receiving a request to sending its reply",
                                &metrics.dhcp_latency);
        return r;
}

static int render_tftp(struct buf *o)
{
        static const char *const kinds[] = { "not_found", "access", "illegal", "option", "timeout", "busy", "other" };
        int r = 0;

        r |= render_counter(o, "metald_tftp_transfers_started_total", "TFTP transfers started", rd(&metrics.tftp_started));
        r |= render_counter(o, "metald_tftp_transfers_completed_total", "TFTP transfers completed",
                            rd(&metrics.tftp_completed));
        r |= render_counter(o, "metald_tftp_transfers_failed_total", "TFTP transfers failed", rd(&metrics.tftp_failed));
        r |= render_counter(o, "metald_tftp_transfers_reclaimed_total",
                            "Stalled TFTP transfers ended to make room for a new request (also counted as failed)",
                            rd(&metrics.tftp_reclaimed));
        r |= render_counter(o, "metald_tftp_bytes_total", "TFTP payload bytes sent", rd(&metrics.tftp_bytes));
        r |= render_counter(o, "metald_tftp_retransmits_total", "TFTP blocks sent again", rd(&metrics.tftp_retransmits));
        r |= buf_puts(o, "# HELP metald_tftp_errors_total TFTP errors sent, by kind\n"
                         "# TYPE metald_tftp_errors_total counter\n");
        for (int k = 0; r == 0 && k < _TFTP_ERR_MAX; k++)
                r = buf_printf(o, "metald_tftp_errors_total{kind=\"%s\"} %llu\n", kinds[k],
                               (unsigned long long)rd(&metrics.tftp_errors[k]));
        r |= buf_printf(o, "# HELP metald_tftp_active_transfers TFTP transfers in progress\n"
                           "# TYPE metald_tftp_active_transfers gauge\nmetald_tftp_active_transfers %lld\n",
                        (long long)atomic_load(&metrics.tftp_active));
        r |= render_hist(o, "metald_tftp_transfer_seconds", "Duration of completed TFTP transfers",
                         &metrics.tftp_duration);
        return r < 0 ? -E2BIG : 0;
}

static int render_http(struct buf *o)
{
        static const char *const routes[] = { "static", "script", "metrics", "healthz", "other", "agent", "admin" };
        int r = buf_puts(o, "# HELP metald_http_requests_total HTTP requests answered, by route and status class\n"
                            "# TYPE metald_http_requests_total counter\n");

        for (int t = 0; r == 0 && t < _HTTP_ROUTE_MAX; t++)
                for (int c = 0; r == 0 && c < HTTP_STATUS_CLASSES; c++) {
                        uint64_t n = rd(&metrics.http_requests[t][c]);

                        if (n || c == 1)
                                r = buf_printf(o, "metald_http_requests_total{route=\"%s\",status=\"%dxx\"} %llu\n",
                                               routes[t], c + 1, (unsigned long long)n);
                }
        if (r == 0)
                r = buf_printf(o, "# HELP metald_http_connections_total HTTP connections served, by daemon: the "
                                  "thread pool, or a thread of their own for a large file\n"
                                  "# TYPE metald_http_connections_total counter\n"
                                  "metald_http_connections_total{mode=\"pool\"} %llu\n"
                                  "metald_http_connections_total{mode=\"stream\"} %llu\n",
                               (unsigned long long)rd(&metrics.http_connections[0]),
                               (unsigned long long)rd(&metrics.http_connections[1]));
        if (r == 0)
                r = render_counter(o, "metald_http_refused_connections_total",
                                   "HTTP connections closed at once: over the total or per-client limit",
                                   rd(&metrics.http_refused_connections));
        if (r == 0)
                r = render_counter(o, "metald_http_sent_bytes_total", "HTTP body bytes of completed responses",
                                   rd(&metrics.http_bytes));
        if (r == 0)
                r = render_hist(o, "metald_http_request_seconds", "Time from the request line to the response's last byte",
                                &metrics.http_duration);
        return r;
}

static int render_process(struct buf *o)
{
        struct rusage ru;

        if (getrusage(RUSAGE_SELF, &ru) < 0)
                return 0;
        return buf_printf(o, "# HELP process_cpu_seconds_total CPU time used\n# TYPE process_cpu_seconds_total counter\n"
                             "process_cpu_seconds_total %.3f\n"
                             "# HELP process_max_resident_memory_bytes Peak resident memory\n"
                             "# TYPE process_max_resident_memory_bytes gauge\nprocess_max_resident_memory_bytes %ld\n",
                          (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
                                  ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6,
                          ru.ru_maxrss * 1024L);
}

int metrics_render(struct buf *out)
{
        int r;

        if ((r = render_dhcp(out)) < 0 || (r = render_tftp(out)) < 0 || (r = render_http(out)) < 0 ||
            (r = render_process(out)) < 0)
                return r;
        return 0;
}
