/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "metald/buf.h"

/*
 * Process-wide counters and histograms, updated lock-free by every thread and
 * rendered in Prometheus text format by the HTTP /metrics route.
 */
#define METRICS_HIST_BUCKETS 12
/* DHCP message types by option 53's value: 0 (none or invalid), DISCOVER (1) to INFORM (8). */
#define METRICS_DHCP_TYPES 9

struct metrics_hist {
        _Atomic uint64_t bucket[METRICS_HIST_BUCKETS];  /* cumulative upper bounds in metrics.c */
        _Atomic uint64_t count;
        _Atomic uint64_t sum_usec;
};

enum dhcp_verdict_kind { DHCP_V_REPLY, DHCP_V_SILENT, DHCP_V_DROP, DHCP_V_MALFORMED, DHCP_V_STORE_ERROR,
                         _DHCP_V_MAX };

enum tftp_error_metric { TFTP_ERR_NOT_FOUND, TFTP_ERR_ACCESS, TFTP_ERR_ILLEGAL, TFTP_ERR_OPTION,
                         TFTP_ERR_TIMEOUT, TFTP_ERR_BUSY, TFTP_ERR_OTHER, _TFTP_ERR_MAX };

enum http_route_metric { HTTP_ROUTE_STATIC, HTTP_ROUTE_SCRIPT, HTTP_ROUTE_METRICS, HTTP_ROUTE_HEALTHZ,
                         HTTP_ROUTE_OTHER, HTTP_ROUTE_AGENT, HTTP_ROUTE_ADMIN, _HTTP_ROUTE_MAX };
#define HTTP_STATUS_CLASSES 5   /* 1xx to 5xx */

struct metrics {
        _Atomic uint64_t dhcp_rx[METRICS_DHCP_TYPES][_DHCP_V_MAX];   /* by message type and verdict */
        _Atomic uint64_t dhcp_tx[METRICS_DHCP_TYPES];
        _Atomic uint64_t dhcp_store_commits;
        struct metrics_hist dhcp_latency;                       /* receive to send */
        _Atomic uint64_t tftp_started, tftp_completed, tftp_failed;
        _Atomic uint64_t tftp_reclaimed;                        /* stalled, ended for a new request; also failed */
        _Atomic uint64_t tftp_bytes, tftp_retransmits;
        _Atomic uint64_t tftp_errors[_TFTP_ERR_MAX];
        _Atomic int64_t tftp_active;
        struct metrics_hist tftp_duration;
        _Atomic uint64_t http_requests[_HTTP_ROUTE_MAX][HTTP_STATUS_CLASSES];  /* by route and status class */
        _Atomic uint64_t http_connections[2];                   /* handed to the pool [0], a stream thread [1] */
        _Atomic uint64_t http_refused_connections;              /* over a connection limit */
        _Atomic uint64_t http_bytes;                            /* body bytes of completed responses */
        struct metrics_hist http_duration;                      /* request line to last byte */
};

extern struct metrics metrics;

#define METRIC_ADD(field, n) atomic_fetch_add_explicit(&metrics.field, (n), memory_order_relaxed)
#define METRIC_INC(field) METRIC_ADD(field, 1)

void metrics_observe(struct metrics_hist *h, uint64_t usec);
/* Appends all metrics in Prometheus text exposition format. */
int metrics_render(struct buf *out);
