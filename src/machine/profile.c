/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <fnmatch.h>
#include <stdio.h>

#include "metald/profile.h"
#include "metald/util.h"

/* Exact identifiers beat patterns, which beat product and vendor. */
#define SCORE_EXACT   100
#define SCORE_GLOB    20
#define SCORE_PRODUCT 10
#define SCORE_LABEL   10
#define SCORE_VENDOR  5

static bool is_glob(const char *s)
{
        return strpbrk(s, "*?[") != NULL;
}

static unsigned list_score(const char (*v)[PROFILE_MAX_WORD + 1], size_t n)
{
        unsigned best = 0;

        for (size_t i = 0; i < n; i++)
                best = MAX(best, (unsigned)(is_glob(v[i]) ? SCORE_GLOB : SCORE_EXACT));
        return best;
}

unsigned profile_specificity(const struct profile_match *m)
{
        return list_score(m->mac, m->n_mac) + list_score(m->uuid, m->n_uuid) + list_score(m->serial, m->n_serial) +
               (*m->product ? SCORE_PRODUCT : 0) + (*m->vendor ? SCORE_VENDOR : 0) +
               (unsigned)m->n_labels * SCORE_LABEL;
}

static bool any_matches(const char (*v)[PROFILE_MAX_WORD + 1], size_t n, const char *value)
{
        if (n == 0)
                return true;
        if (!value || !*value)
                return false;
        for (size_t i = 0; i < n; i++)
                if (fnmatch(v[i], value, FNM_CASEFOLD) == 0)
                        return true;
        return false;
}

static bool has_label(const char *labels, const struct profile_label *l)
{
        size_t kl = strlen(l->key), vl = strlen(l->value);

        for (const char *p = labels ? labels : ""; *p;) {
                const char *end = strchr(p, ',');
                size_t len = end ? (size_t)(end - p) : strlen(p);

                if (len == kl + 1 + vl && strncmp(p, l->key, kl) == 0 && p[kl] == '=' &&
                    strncmp(p + kl + 1, l->value, vl) == 0)
                        return true;
                p += len + (end ? 1 : 0);
        }
        return false;
}

/* The machine's UUID, or NULL when it has none that identifies it (all zero, all FF). */
static const char *identity_uuid(const struct profile_facts *f)
{
        return f->uuid && uuid_is_identity(f->uuid) ? f->uuid : NULL;
}

bool profile_matches(const struct profile_match *m, const struct profile_facts *f)
{
        char mac[18];

        format_mac(mac, f->mac);
        if (!any_matches(m->mac, m->n_mac, mac) || !any_matches(m->uuid, m->n_uuid, identity_uuid(f)) ||
            !any_matches(m->serial, m->n_serial, f->serial))
                return false;
        if (*m->vendor && (!f->vendor || fnmatch(m->vendor, f->vendor, FNM_CASEFOLD) != 0))
                return false;
        if (*m->product && (!f->product || fnmatch(m->product, f->product, FNM_CASEFOLD) != 0))
                return false;
        for (size_t i = 0; i < m->n_labels; i++)
                if (!has_label(f->labels, &m->labels[i]))
                        return false;
        return true;
}

enum profile_choice profile_choose(const struct profile *p, size_t n, const struct profile_facts *f,
                                   const struct profile **ret, const struct profile **ret_other)
{
        const struct profile *best = NULL, *tied = NULL;
        unsigned best_score = 0;

        for (size_t i = 0; i < n; i++) {
                unsigned score = profile_specificity(&p[i].match);

                if (!profile_matches(&p[i].match, f))
                        continue;
                if (!best || score > best_score) {
                        best = &p[i];
                        best_score = score;
                        tied = NULL;
                } else if (score == best_score) {
                        tied = &p[i];
                }
        }
        *ret = best;
        *ret_other = tied;
        return !best ? PROFILE_NONE : tied ? PROFILE_TIE : PROFILE_ONE;
}

/* Appends value as DNS-label characters: letters and digits lower-cased, anything else '-'. */
static size_t append_label(char *buf, size_t cap, size_t o, const char *value)
{
        for (const char *v = value ? value : ""; *v && o + 1 < cap; v++) {
                unsigned char c = (unsigned char)*v;

                buf[o++] = isalnum(c) ? (char)tolower(c) : '-';
        }
        buf[o] = '\0';
        return o;
}

void profile_machine_name(const struct profile *p, const struct profile_facts *f, char *buf, size_t cap)
{
        const char *tmpl = p && *p->hostname ? p->hostname : "m-{mac}";
        char mac[13];
        size_t o = 0;

        snprintf(mac, sizeof(mac), "%02x%02x%02x%02x%02x%02x", f->mac[0], f->mac[1], f->mac[2], f->mac[3],
                 f->mac[4], f->mac[5]);
        buf[0] = '\0';
        for (const char *t = tmpl; *t && o + 1 < cap;) {
                static const struct { const char *key; int which; } keys[] = {
                        { "{mac}", 0 }, { "{serial}", 1 }, { "{uuid}", 2 },
                };
                bool done = false;

                for (size_t i = 0; i < ARRAY_SIZE(keys) && !done; i++)
                        if (str_has_prefix(t, keys[i].key)) {
                                const char *uuid = identity_uuid(f);
                                const char *v = keys[i].which == 0 ? mac : keys[i].which == 1 ? f->serial : uuid;

                                /* an empty serial or UUID falls back to the MAC, names must be unique */
                                o = append_label(buf, cap, o, v && *v ? v : mac);
                                t += strlen(keys[i].key);
                                done = true;
                        }
                if (!done) {
                        o = append_label(buf, cap, o, (char[2]){ *t, 0 });
                        t++;
                }
        }
        while (o > 0 && buf[o - 1] == '-')
                buf[--o] = '\0';
        if (o == 0)
                snprintf(buf, cap, "m-%s", mac);
}

