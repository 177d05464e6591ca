/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <strings.h>

#include "metald/http.h"
#include "metald/util.h"

static void skip_ows(const char **p)
{
        while (**p == ' ' || **p == '\t')
                (*p)++;
}

/* 1*DIGIT, saturating at UINT64_MAX: a position past any file is still "past the end". */
static bool digits(const char **p, uint64_t *ret)
{
        const char *s = *p;
        uint64_t v = 0;

        if (*s < '0' || *s > '9')
                return false;
        for (; *s >= '0' && *s <= '9'; s++) {
                uint64_t d = (uint64_t)(*s - '0');

                v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
        }
        *p = s;
        *ret = v;
        return true;
}

struct byte_range {
        bool suffix;                    /* "-n" */
        bool open;                      /* "a-" */
        uint64_t first, last;           /* last is the suffix length for "-n" */
};

static bool parse_one(const char **p, struct byte_range *r)
{
        *r = (struct byte_range){ 0 };
        if (**p == '-') {
                (*p)++;
                r->suffix = true;
                return digits(p, &r->last);
        }
        if (!digits(p, &r->first) || **p != '-')
                return false;
        (*p)++;
        if (**p < '0' || **p > '9') {
                r->open = true;
                return true;
        }
        return digits(p, &r->last) && r->last >= r->first;
}

static int resolve(const struct byte_range *r, uint64_t size, uint64_t *ret_offset, uint64_t *ret_length)
{
        if (r->suffix) {
                if (r->last == 0 || size == 0)
                        return -ERANGE;
                *ret_length = MIN(r->last, size);
                *ret_offset = size - *ret_length;
                return 0;
        }
        if (r->first >= size)
                return -ERANGE;
        *ret_offset = r->first;
        *ret_length = (r->open ? size - 1 : MIN(r->last, size - 1)) - r->first + 1;
        return 0;
}

int http_range_parse(const char *s, uint64_t size, uint64_t *ret_offset, uint64_t *ret_length)
{
        struct byte_range first = { 0 }, r;
        size_t n = 0;

        if (strncasecmp(s, "bytes", 5) != 0)
                return -EINVAL;
        s += 5;
        skip_ows(&s);
        if (*s++ != '=')
                return -EINVAL;
        for (;;) {
                skip_ows(&s);
                if (*s == ',') {                /* empty list elements are allowed */
                        s++;
                        continue;
                }
                if (!*s)
                        break;
                if (!parse_one(&s, &r))
                        return -EINVAL;
                if (n++ == 0)
                        first = r;
                skip_ows(&s);
                if (*s && *s != ',')
                        return -EINVAL;
        }
        if (n == 0)
                return -EINVAL;
        if (n > 1)
                return -EOPNOTSUPP;
        return resolve(&first, size, ret_offset, ret_length);
}

/* One entity-tag at *p: sets its extent (quotes included) and whether it is weak. */
static bool parse_etag(const char **p, const char **ret_tag, size_t *ret_len, bool *ret_weak)
{
        const char *s = *p;

        *ret_weak = false;
        if (s[0] == 'W' && s[1] == '/') {
                *ret_weak = true;
                s += 2;
        }
        if (*s != '"')
                return false;
        *ret_tag = s++;
        /* etagc = %x21 / %x23-7E / obs-text */
        while (*s && *s != '"' && ((uint8_t)*s == 0x21 || (uint8_t)*s >= 0x23) && *s != 0x7f)
                s++;
        if (*s != '"')
                return false;
        s++;
        *ret_len = (size_t)(s - *ret_tag);
        *p = s;
        return true;
}

bool http_etag_match(const char *list, const char *etag, bool weak)
{
        const char *p = list, *tag;
        size_t len;
        bool is_weak;

        skip_ows(&p);
        if (*p == '*') {
                p++;
                skip_ows(&p);
                return *p == '\0';
        }
        while (*p) {
                if (*p == ',' || *p == ' ' || *p == '\t') {
                        p++;
                        continue;
                }
                if (!parse_etag(&p, &tag, &len, &is_weak))
                        return false;
                if (etag && (weak || !is_weak) && strlen(etag) == len && memcmp(etag, tag, len) == 0)
                        return true;
        }
        return false;
}

static const char *const month_names[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
static const char *const day_names[] = { "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun" };
static const char *const long_day_names[] = { "Monday", "Tuesday", "Wednesday", "Thursday",
                                              "Friday", "Saturday", "Sunday" };

struct civil {
        int64_t year;
        int month, day, hour, min, sec;
};

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
        int64_t era, yoe, doy, doe;

        y -= m <= 2;
        era = (y >= 0 ? y : y - 399) / 400;
        yoe = y - era * 400;
        doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, struct civil *c)
{
        int64_t era, doe, yoe, doy, mp;

        z += 719468;
        era = (z >= 0 ? z : z - 146096) / 146097;
        doe = z - era * 146097;
        yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        mp = (5 * doy + 2) / 153;
        c->day = (int)(doy - (153 * mp + 2) / 5 + 1);
        c->month = (int)(mp < 10 ? mp + 3 : mp - 9);
        c->year = yoe + era * 400 + (c->month <= 2);
}

static bool lit(const char **p, const char *t)
{
        size_t n = strlen(t);

        if (strncmp(*p, t, n) != 0)
                return false;
        *p += n;
        return true;
}

/* Exactly n digits; a leading space counts as a zero digit when pad is set (asctime days). */
static bool num(const char **p, int n, bool pad, int *ret)
{
        int v = 0;

        for (int i = 0; i < n; i++) {
                char c = (*p)[i];

                if (pad && i == 0 && c == ' ')
                        continue;
                if (c < '0' || c > '9')
                        return false;
                v = v * 10 + (c - '0');
        }
        *p += n;
        *ret = v;
        return true;
}

static bool month(const char **p, int *ret)
{
        for (int i = 0; i < 12; i++)
                if (lit(p, month_names[i])) {
                        *ret = i + 1;
                        return true;
                }
        return false;
}

static bool weekday(const char **p, const char *const *names)
{
        for (int i = 0; i < 7; i++)
                if (lit(p, names[i]))
                        return true;
        return false;
}

static bool time_of_day(const char **p, struct civil *c)
{
        return num(p, 2, false, &c->hour) && lit(p, ":") && num(p, 2, false, &c->min) && lit(p, ":") &&
               num(p, 2, false, &c->sec);
}

static bool civil_valid(const struct civil *c)
{
        static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        bool leap = (c->year % 4 == 0 && c->year % 100 != 0) || c->year % 400 == 0;

        if (c->month < 1 || c->month > 12 || c->day < 1 || c->day > mdays[c->month - 1])
                return false;
        if (c->month == 2 && c->day == 29 && !leap)
                return false;
        /* 60: a leap second, which HTTP-date allows */
        return c->hour <= 23 && c->min <= 59 && c->sec <= 60;
}

int http_date_parse(const char *s, int64_t *ret)
{
        const char *p = s;
        struct civil c = { 0 };
        int y = 0;
        bool ok;

        if (weekday(&p, day_names) && lit(&p, ", "))    /* Sun, 06 Nov 1994 08:49:37 GMT */
                ok = num(&p, 2, false, &c.day) && lit(&p, " ") && month(&p, &c.month) && lit(&p, " ") &&
                     num(&p, 4, false, &y) && lit(&p, " ") && time_of_day(&p, &c) && lit(&p, " GMT");
        else if ((p = s, weekday(&p, long_day_names)) && lit(&p, ", ")) {      /* Sunday, 06-Nov-94 ... GMT */
                ok = num(&p, 2, false, &c.day) && lit(&p, "-") && month(&p, &c.month) && lit(&p, "-") &&
                     num(&p, 2, false, &y) && lit(&p, " ") && time_of_day(&p, &c) && lit(&p, " GMT");
                y += y < 70 ? 2000 : 1900;
        } else if ((p = s, weekday(&p, day_names)) && lit(&p, " "))    /* Sun Nov  6 08:49:37 1994 */
                ok = month(&p, &c.month) && lit(&p, " ") && num(&p, 2, true, &c.day) && lit(&p, " ") &&
                     time_of_day(&p, &c) && lit(&p, " ") && num(&p, 4, false, &y);
        else
                return -EINVAL;
        c.year = y;
        if (!ok || *p || !civil_valid(&c))
                return -EINVAL;
        *ret = days_from_civil(c.year, c.month, c.day) * 86400 + c.hour * 3600 + c.min * 60 + MIN(c.sec, 59);
        return 0;
}

void http_date_format(int64_t t, char buf[HTTP_DATE_BYTES])
{
        int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
        int64_t secs = t - days * 86400;
        struct civil c;
        int wday = (int)(((days % 7) + 7 + 3) % 7);     /* 1970-01-01 was a Thursday */

        civil_from_days(days, &c);
        if (c.year < 0 || c.year > 9999) {
                /* not representable in four digits: the epoch says "unknown" honestly */
                http_date_format(0, buf);
                return;
        }
        snprintf(buf, HTTP_DATE_BYTES, "%s, %02d %s %04d %02d:%02d:%02d GMT", day_names[wday], c.day,
                 month_names[c.month - 1], (int)c.year, (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60));
}

/* If-Range: an entity-tag must match strongly; a date must equal a strong Last-Modified. */
static bool if_range_matches(const char *v, const struct http_validators *val, int64_t now)
{
        int64_t t;

        if (v[0] == '"' || (v[0] == 'W' && v[1] == '/'))
                return val->etag && http_etag_match(v, val->etag, false);
        if (http_date_parse(v, &t) < 0)
                return false;
        /* RFC 9110 §8.8.2.2: a modification time is strong only once a second has passed */
        return t == val->mtime && val->mtime < now;
}

void http_decide(const struct http_validators *v, const struct http_preconditions *p, bool is_get, int64_t now,
                 struct http_decision *ret)
{
        uint64_t off, len;
        int64_t t;
        int r;

        *ret = (struct http_decision){ .status = 200, .offset = 0, .length = v->size };
        if (p->if_match) {
                if (!http_etag_match(p->if_match, v->etag, false)) {
                        ret->status = 412;
                        return;
                }
        } else if (p->if_unmodified_since && http_date_parse(p->if_unmodified_since, &t) == 0 && v->mtime > t) {
                ret->status = 412;
                return;
        }
        if (p->if_none_match) {
                if (http_etag_match(p->if_none_match, v->etag, true)) {
                        ret->status = 304;
                        return;
                }
        } else if (p->if_modified_since && http_date_parse(p->if_modified_since, &t) == 0 && v->mtime <= t) {
                ret->status = 304;
                return;
        }
        if (!is_get || !p->range || (p->if_range && !if_range_matches(p->if_range, v, now)))
                return;
        r = http_range_parse(p->range, v->size, &off, &len);
        if (r == 0)
                *ret = (struct http_decision){ .status = 206, .offset = off, .length = len };
        else if (r == -ERANGE)
                *ret = (struct http_decision){ .status = 416 };
}
