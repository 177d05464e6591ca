/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <json-c/json.h>
#include <stdio.h>

#include "metald/boot_script.h"
#include "metald/image.h"
#include "metald/log.h"
#include "metald/machine_power.h"
#include "metald/syntax.h"
#include "metald/util.h"
#include "registry_private.h"

static int find_locked(struct registry *r, const char *who, struct store_machine *m)
{
        uint8_t mac[6];

        if (store_machine_get(r->store, STORE_BY_NAME, who, m) == 0)
                return 0;
        if (parse_mac(who, mac) == 0 && store_machine_get(r->store, STORE_BY_MAC, mac, m) == 0)
                return 0;
        return -ENOENT;
}

int registry_find(struct registry *r, const char *who, struct store_machine *ret)
{
        int e;

        pthread_mutex_lock(&r->lock);
        e = find_locked(r, who, ret);
        pthread_mutex_unlock(&r->lock);
        return e;
}

static int forget_locked(struct registry *r, struct store_machine *m)
{
        for (int tries = 0; tries < 8; tries++) {
                int e = store_machine_delete(r->store, m->id, m->generation);

                if (e != -ESTALE)
                        return e;
                if (reg_load(r, m->id, m) < 0)
                        return -ENOENT;
        }
        return -ESTALE;
}

static int label_locked(struct registry *r, struct store_machine *m, const char *labels, int64_t now)
{
        const char *tie;
        const struct profile *p;

        if (syntax_labels(labels) < 0 || strlen(labels) >= sizeof(m->labels))
                return -EINVAL;
        str_copy(m->labels, sizeof(m->labels), labels);
        p = reg_profile_of(r, m, &tie);
        str_copy(m->profile, sizeof(m->profile), p && !tie ? p->name : "");
        return reg_note(r, m, "labels", labels, now);
}

/* The machine's own image for a reimage: ref NULL keeps it, "" follows the profile again. */
static int set_image(const struct registry *r, struct store_machine *m, const char *ref, char *err, size_t errlen)
{
        char name[IMAGE_MAX_NAME + 1], why[256];
        struct image_info info;
        uint64_t version;

        if (!ref)
                return 0;
        if (!*ref) {
                m->image[0] = '\0';
                m->image_version = 0;
                return 0;
        }
        if (image_parse_ref(ref, name, &version) < 0) {
                snprintf(err, errlen, "'%.80s' is not an image NAME or NAME:VERSION", ref);
                return -EINVAL;
        }
        if (image_show(r->cfg->state_dir, name, version, &info, NULL, why, sizeof(why)) < 0) {
                snprintf(err, errlen, "cannot reimage %s with %s: %s", m->name, ref, why);
                return -EINVAL;
        }
        str_copy(m->image, sizeof(m->image), name);
        m->image_version = version;
        return 0;
}

static int reimage_locked(struct registry *r, struct store_machine *m, const char *ref, int64_t now, char *err,
                          size_t errlen)
{
        struct fsm_result res;
        char detail[STORE_MAX_TEXT + 1];
        uint64_t v;
        const char *tie, *img;
        int e;

        /* refused before the image is looked at, so that the state is what the operator hears about */
        if (fsm_step((enum machine_state)m->state, ME_REIMAGE, &res) < 0)
                return -EPERM;
        if ((e = set_image(r, m, ref, err, errlen)) < 0)
                return e;
        m->approved = 1;
        img = machine_image(m, reg_profile_of(r, m, &tie), &v);
        if (!*img)
                snprintf(detail, sizeof(detail), "reimage requested by an operator");
        else if (v)
                snprintf(detail, sizeof(detail), "reimage requested by an operator: %s:%llu%s", img,
                         (unsigned long long)v, *m->image ? " (its own)" : "");
        else
                snprintf(detail, sizeof(detail), "reimage requested by an operator: %s%s", img,
                         *m->image ? " (its own)" : "");
        return reg_apply(r, m, &(struct change){ .ev = ME_REIMAGE, .detail = detail }, now, NULL);
}

static int admin_locked(struct registry *r, enum admin_op op, struct store_machine *m, const char *arg, int64_t now,
                        char *err, size_t errlen)
{
        switch (op) {
        case ADMIN_APPROVE:
                m->approved = 1;
                return reg_apply(r, m, &(struct change){ .ev = ME_APPROVE, .detail = "approved by an operator" },
                                 now, NULL);
        case ADMIN_REIMAGE:
                return reimage_locked(r, m, arg, now, err, errlen);
        case ADMIN_RETIRE:
                return reg_apply(r, m, &(struct change){ .ev = ME_RETIRE, .detail = "retired by an operator" }, now,
                                 NULL);
        case ADMIN_FORGET:
                return forget_locked(r, m);
        case ADMIN_LABEL:
                return label_locked(r, m, arg ? arg : "", now);
        }
        return -EINVAL;
}

int registry_admin(struct registry *r, enum admin_op op, const char *who, const char *arg, int64_t now,
                   struct store_machine *ret, char *err, size_t errlen)
{
        static const char *const verbs[] = { "approve", "reimage", "retire", "forget", "label" };
        int e;

        err[0] = '\0';
        pthread_mutex_lock(&r->lock);
        e = find_locked(r, who, ret);
        if (e == 0)
                e = admin_locked(r, op, ret, arg, now, err, errlen);
        if (e < 0 && *err)
                ;       /* the operation said why */
        else if (e == -EPERM)
                snprintf(err, errlen, "cannot %s %s: it is %s", verbs[op], ret->name,
                         machine_state_name((enum machine_state)ret->state));
        else if (e == -ENOENT)
                snprintf(err, errlen, "no machine is named or has the MAC address %.64s", who);
        else if (e == -EINVAL)
                snprintf(err, errlen, "labels must be key=value pairs separated by commas");
        else if (e < 0)
                snprintf(err, errlen, "cannot %s %s: %s", verbs[op], who, strerror(-e));
        else if (op == ADMIN_FORGET)
                log_info("machine %s: forgotten by an operator", ret->name);
        pthread_mutex_unlock(&r->lock);
        return e;
}

/* --- power after a reimage --- */

/* On when it is off, else a power cycle: either way it starts again from its firmware, which boots the network. */
static int power_for_enrollment(struct power_target *t, const char **ret_op, char *why, size_t why_len)
{
        uint64_t end = now_monotonic_usec() + (uint64_t)REGISTRY_REIMAGE_POWER_MS * USEC_PER_MSEC, now;
        enum power_state st = POWER_STATE_UNKNOWN;
        int e;

        *ret_op = "status";
        t->timeout_ms = REGISTRY_REIMAGE_POWER_MS / 2;
        if ((e = power_status(t, &st, why, why_len)) < 0)
                return e;
        now = now_monotonic_usec();
        t->timeout_ms = now < end ? (uint32_t)MAX((end - now) / USEC_PER_MSEC, (uint64_t)1) : 1;
        *ret_op = st == POWER_STATE_OFF ? "on" : "cycle";
        return st == POWER_STATE_OFF ? power_on(t, why, why_len) : power_cycle(t, why, why_len);
}

/* Notes the outcome in the timeline; reason (may be NULL) stays while the machine waits in approved. */
static void record_power(struct registry *r, struct store_machine *m, const char *what, const char *reason,
                         int64_t now)
{
        struct store_machine cur;

        pthread_mutex_lock(&r->lock);
        if (reg_load(r, m->id, &cur) == 0) {
                if (reason && cur.state == MS_APPROVED)
                        str_copy(cur.reason, sizeof(cur.reason), reason);
                if (reg_note(r, &cur, "power", what, now) == 0)
                        *m = cur;
        }
        pthread_mutex_unlock(&r->lock);
}

int registry_reimage_power(struct registry *r, struct store_machine *m, int64_t now, char *what, size_t what_len)
{
        static const struct profile_power manual = { .driver = PROFILE_POWER_MANUAL };
        struct log_field f[1] = { { "MACHINE", m->name } };
        const char *tie, *op = "cycle";
        const struct profile *p = reg_profile_of(r, m, &tie);
        char why[256] = "", reason[STORE_MAX_TEXT + 1];
        struct power_target t = { .driver = POWER_DRIVER_MANUAL };
        int e;

        e = machine_power_target(p && !tie ? &p->power : &manual, m->mac, m->name, &t, why, sizeof(why));
        if (e < 0)
                op = NULL;      /* no target to run anything on */
        else if (t.driver == POWER_DRIVER_MANUAL)
                e = -EOPNOTSUPP;
        else
                e = power_for_enrollment(&t, &op, why, sizeof(why));
        snprintf(reason, sizeof(reason), "waiting for an operator to power-cycle %s", m->name);
        if (e == 0) {
                snprintf(what, what_len, "%s through %s", strcmp(op, "on") == 0 ? "powered on" : "power-cycled",
                         power_driver_name(t.driver));
                log_fields(LOG_INFO, f, 1, "machine %s: reimage: %s", m->name, what);
                record_power(r, m, what, NULL, now);
        } else if (e == -EOPNOTSUPP) {
                snprintf(what, what_len, "%s (power driver manual)", reason);
                log_fields(LOG_INFO, f, 1, "machine %s: reimage: %s", m->name, what);
                record_power(r, m, what, reason, now);
        } else {
                if (op)
                        snprintf(what, what_len, "power %s through %s failed: %s", op, power_driver_name(t.driver),
                                 why);
                else
                        snprintf(what, what_len, "no power target: %s", why);
                snprintf(reason + strlen(reason), sizeof(reason) - strlen(reason), " (%s)", what);
                log_fields(LOG_WARNING, f, 1, "machine %s: reimage: %s", m->name, what);
                record_power(r, m, what, reason, now);
        }
        return e;
}

/* --- JSON views --- */

static void add_str(json_object *o, const char *k, const char *v)
{
        json_object_object_add(o, k, json_object_new_string(v ? v : ""));
}

static void add_int(json_object *o, const char *k, int64_t v)
{
        json_object_object_add(o, k, json_object_new_int64(v));
}

/* The install a machine has going, as its agent last reported it. */
static json_object *install_json(const struct reg_install *g)
{
        json_object *o = json_object_new_object();

        add_str(o, "image", g->name);
        add_int(o, "version", (int64_t)g->version);
        add_str(o, "state", g->started ? "installing" : "told to install");
        add_str(o, "detail", g->progress.detail);
        if (g->progress.known) {
                add_int(o, "done_bytes", (int64_t)g->progress.done_bytes);
                add_int(o, "total_bytes", (int64_t)g->progress.total_bytes);
                add_int(o, "rate_bytes_per_s", (int64_t)g->progress.rate_bytes_per_s);
                add_int(o, "eta_s", g->progress.eta_s == UINT64_MAX ? -1 : (int64_t)g->progress.eta_s);
        }
        return o;
}

/* What its next network boot gets; signed is false when that boots files no signature covers. */
static void boot_json(json_object *o, const struct store_machine *m, const struct profile *p)
{
        static const char *const kinds[] = {
                [BOOT_KIND_ENROLL] = "enroll", [BOOT_KIND_LOCAL] = "local", [BOOT_KIND_RETIRED] = "none",
                [BOOT_KIND_NETBOOT] = "netboot",
        };
        enum boot_kind k = machine_boot_kind_for(m, p);
        json_object *nb;

        add_str(o, "boot", kinds[k]);
        json_object_object_add(o, "signed", json_object_new_boolean(k != BOOT_KIND_NETBOOT));
        if (k != BOOT_KIND_NETBOOT)
                return;
        nb = json_object_new_object();
        add_str(nb, "profile", p->name);
        add_str(nb, "kernel", p->netboot.kernel);
        add_str(nb, "initrd", p->netboot.initrd);
        add_str(nb, "cmdline", p->netboot.cmdline);
        json_object_object_add(o, "netboot", nb);
}

/* ins: what the machine is told (reg_instruction, lock held); install: a copy of its install, or NULL. */
static json_object *machine_json(const struct registry *r, const struct store_machine *m,
                                 const struct instruction *ins, const struct reg_install *install)
{
        json_object *o = json_object_new_object();
        const char *tie;
        const struct profile *p = reg_profile_of(r, m, &tie);
        char mac[18], ip[16];
        const char *img;
        uint64_t img_version;

        format_mac(mac, m->mac);
        format_ipv4(ip, (struct in_addr){ htonl(m->ip) });
        add_str(o, "name", m->name);
        add_str(o, "mac", mac);
        add_str(o, "ip", m->ip ? ip : "");
        add_str(o, "state", machine_state_name((enum machine_state)m->state));
        add_str(o, "reason", m->reason);
        add_str(o, "profile", p && !tie ? p->name : "");
        img = machine_image(m, p && !tie ? p : NULL, &img_version);
        add_str(o, "image", img);
        add_int(o, "image_version", (int64_t)img_version);      /* 0: the newest imported */
        add_str(o, "image_source", *m->image ? "machine" : *img ? "profile" : "");
        boot_json(o, m, p && !tie ? p : NULL);
        add_int(o, "progress", m->progress);
        add_int(o, "since", m->state_since);
        add_int(o, "deadline", m->deadline);
        add_int(o, "last_seen", m->last_seen);
        add_str(o, "last_event", m->last_event);
        add_str(o, "uuid", uuid_is_identity(m->uuid) ? m->uuid : "");   /* all zero, all FF: none, as in the DHCP log */
        add_str(o, "serial", m->serial);
        add_str(o, "labels", m->labels);
        add_str(o, "waiting_for", ins->reason);
        if (install && *install->name)
                json_object_object_add(o, "install", install_json(install));
        return o;
}

static int emit(json_object *o, struct buf *out)
{
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        int e = buf_puts(out, s);

        json_object_put(o);
        return e;
}

struct status_ctx {
        struct registry *r;
        const struct reg_queue *q;
        int64_t now;
        json_object *list;
        int64_t counts[_MS_MAX];
};

static int status_one(const struct store_machine *m, void *u)
{
        struct status_ctx *c = u;
        struct instruction ins;

        if (m->state >= 0 && m->state < _MS_MAX)
                c->counts[m->state]++;
        reg_instruction(c->r, m, c->now, false, c->q, &ins);
        json_object_array_add(c->list, machine_json(c->r, m, &ins, reg_install_of(c->r, m->id)));
        return 0;
}

int registry_status_json(struct registry *r, int64_t now, struct buf *out)
{
        struct status_ctx c = { .r = r, .now = now, .list = json_object_new_array() };
        json_object *o = json_object_new_object(), *counts = json_object_new_object();
        struct reg_queue q;
        int e;

        pthread_mutex_lock(&r->lock);
        /* the queue is read first: the store lists one thing at a time */
        e = reg_queue_build(r, now, &q);
        if (e == 0) {
                c.q = &q;
                e = store_machine_foreach(r->store, status_one, &c);
                reg_queue_free(&q);
        }
        pthread_mutex_unlock(&r->lock);
        for (int s = 0; s < _MS_MAX; s++)
                add_int(counts, machine_state_name((enum machine_state)s), c.counts[s]);
        json_object_object_add(o, "counts", counts);
        add_int(o, "total", (int64_t)json_object_array_length(c.list));
        add_int(o, "now", now);
        json_object_object_add(o, "machines", c.list);
        if (e < 0) {
                json_object_put(o);
                return e;
        }
        return emit(o, out);
}

static int timeline_one(const struct store_event *ev, void *u)
{
        json_object *e = json_object_new_object();

        add_int(e, "ts", ev->ts);
        add_str(e, "event", ev->event);
        add_str(e, "from", ev->from >= 0 ? machine_state_name((enum machine_state)ev->from) : "");
        add_str(e, "to", ev->to >= 0 ? machine_state_name((enum machine_state)ev->to) : "");
        add_str(e, "detail", ev->detail);
        json_object_array_add(u, e);
        return 0;
}

/*
 * The kernel command line of m's next enrollment boot on BIOS and on UEFI,
 * the nonce masked; empty when its next network boot is no enrollment boot or
 * no boot scripts are served. Lock held.
 */
static int enroll_cmdlines(const struct registry *r, const struct store_machine *m, struct buf *bios,
                           struct buf *efi)
{
        const struct boot_enroll *be = &r->cfg->boot.enroll;
        struct boot_view v = { .base_url = r->boot_base_url, .script_url = "", .kernel = be->kernel,
                               .initrd = r->boot_initrd, .cmdline = be->cmdline };
        struct boot_identity id = { .platform = "pcbios" };
        int e;

        if (!*r->boot_base_url || !*be->kernel || !*r->boot_initrd || reg_boot_kind(r, m) != BOOT_KIND_ENROLL)
                return 0;
        memcpy(id.mac, m->mac, 6);
        if ((e = boot_cmdline_shown(&v, &id, bios)) < 0)
                return e;
        str_copy(id.platform, sizeof(id.platform), "efi");
        return boot_cmdline_shown(&v, &id, efi);
}

int registry_show_json(struct registry *r, const char *who, struct buf *out)
{
        json_object *o, *timeline = json_object_new_array(), *inv = NULL;
        struct buf bios = BUF_INIT(BOOT_MAX_SCRIPT_BYTES), efi = BUF_INIT(BOOT_MAX_SCRIPT_BYTES);
        struct reg_install install = { 0 };
        const struct reg_install *g;
        struct instruction ins;
        struct store_machine m;
        char *inventory = NULL;
        int e;

        pthread_mutex_lock(&r->lock);
        e = find_locked(r, who, &m);
        if (e == 0) {
                reg_instruction(r, &m, r->last_now, false, NULL, &ins);
                if ((g = reg_install_of(r, m.id)))
                        install = *g;
                e = store_event_foreach(r->store, m.id, timeline_one, timeline);
        }
        if (e == 0)
                e = enroll_cmdlines(r, &m, &bios, &efi);
        if (e == 0 && store_inventory_get(r->store, m.id, &inventory) == 0)
                inv = json_tokener_parse(inventory);
        pthread_mutex_unlock(&r->lock);
        free(inventory);
        if (e < 0) {
                json_object_put(timeline);
                buf_free(&bios);
                buf_free(&efi);
                return e;
        }
        o = machine_json(r, &m, &ins, &install);
        add_str(o, "enroll_cmdline", bios.data);
        add_str(o, "enroll_cmdline_efi", efi.data);
        buf_free(&bios);
        buf_free(&efi);
        json_object_object_add(o, "inventory", inv ? inv : json_object_new_object());
        json_object_object_add(o, "timeline", timeline);
        return emit(o, out);
}

/* --- time --- */

struct id_list {
        int64_t *ids;
        size_t n, cap;
        int64_t now;
        bool (*want)(const struct store_machine *m, int64_t now);
};

static int collect(const struct store_machine *m, void *u)
{
        struct id_list *l = u;

        if (!l->want(m, l->now))
                return 0;
        if (l->n == l->cap) {
                size_t cap = l->cap ? 2 * l->cap : 64;
                int64_t *p = realloc(l->ids, cap * sizeof(*p));

                if (!p)
                        return -ENOMEM;
                l->ids = p;
                l->cap = cap;
        }
        l->ids[l->n++] = m->id;
        return 0;
}

static bool expired(const struct store_machine *m, int64_t now)
{
        return m->deadline > 0 && m->deadline <= now;
}

static bool transient(const struct store_machine *m, int64_t now)
{
        (void)now;
        return fsm_wait((enum machine_state)m->state) == MW_METALD;
}

static const char *deadline_reason(enum machine_state s)
{
        switch (fsm_wait(s)) {
        case MW_ENROLL:  return "did not register within the enrollment timeout";
        case MW_AGENT:   return "agent stopped responding";
        case MW_IMAGING: return "imaging did not finish in time, or its agent stopped responding";
        case MW_METALD:  return "the next step did not happen in time";
        case MW_JOIN:    return "the node did not join the cluster in time";
        default:         return "deadline passed";
        }
}

/* Applies ev to every machine the filter selects; returns how many changed. */
static int for_each_selected(struct registry *r, int64_t now, bool (*want)(const struct store_machine *, int64_t),
                             enum machine_event ev)
{
        struct id_list l = { .now = now, .want = want };
        int changed = 0;

        pthread_mutex_lock(&r->lock);
        r->last_now = MAX(r->last_now, now);    /* what `machine show` takes as now */
        if (store_machine_foreach(r->store, collect, &l) == 0) {
                for (size_t i = 0; i < l.n; i++) {
                        struct store_machine m;
                        const char *why;

                        if (reg_load(r, l.ids[i], &m) < 0 || !want(&m, now))
                                continue;       /* moved on meanwhile */
                        /* a deadline set before its profile named a netboot: nothing calls in to defer it */
                        if (ev == ME_DEADLINE && reg_boot_kind(r, &m) == BOOT_KIND_NETBOOT)
                                continue;
                        why = ev == ME_DEADLINE ? deadline_reason((enum machine_state)m.state)
                                                : "metald restarted before the next step; reimage to retry";
                        if (reg_apply(r, &m, &(struct change){ .ev = ev, .detail = why }, now, NULL) == 0)
                                changed++;
                }
        }
        pthread_mutex_unlock(&r->lock);
        free(l.ids);
        return changed;
}

int registry_sweep(struct registry *r, int64_t now)
{
        return for_each_selected(r, now, expired, ME_DEADLINE);
}

static bool registered_or_imaged(const struct store_machine *m, int64_t now)
{
        (void)now;
        return m->state == MS_REGISTERED || m->state == MS_IMAGED;
}

int registry_recover(struct registry *r, int64_t now)
{
        struct id_list l = { .now = now, .want = registered_or_imaged };

        /* an approval policy, or the step past imaged, whose commit a crash cut off is applied now */
        pthread_mutex_lock(&r->lock);
        if (store_machine_foreach(r->store, collect, &l) == 0)
                for (size_t i = 0; i < l.n; i++) {
                        struct store_machine m;

                        if (reg_load(r, l.ids[i], &m) < 0)
                                continue;
                        if (m.state == MS_REGISTERED)
                                reg_auto_approve(r, &m, now);
                        else if (m.state == MS_IMAGED)
                                reg_after_imaged(r, &m, now);
                }
        pthread_mutex_unlock(&r->lock);
        free(l.ids);
        return for_each_selected(r, now, transient, ME_RESTART);
}
