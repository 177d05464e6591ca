/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <yaml.h>

#include "metald/limits.h"
#include "metald/util.h"
#include "metald/yaml_tree.h"

struct loader {
        yaml_parser_t parser;
        const char *name;
        char *err;
        size_t errlen;
        size_t n_nodes;
};

static int fail(struct loader *l, unsigned line, const char *what)
{
        snprintf(l->err, l->errlen, "%s:%u: %s", l->name, line, what);
        return -EINVAL;
}

void ynode_free(struct ynode *n)
{
        while (n) {
                struct ynode *next = n->next;

                ynode_free(n->child);
                free(n->key);
                free(n->value);
                free(n);
                n = next;
        }
}

static int next_event(struct loader *l, yaml_event_t *ev)
{
        if (!yaml_parser_parse(&l->parser, ev)) {
                char msg[256];

                snprintf(msg, sizeof(msg), "YAML syntax error: %s%s%s",
                         l->parser.problem ? l->parser.problem : "unknown",
                         l->parser.context ? " " : "", l->parser.context ? l->parser.context : "");
                return fail(l, (unsigned)l->parser.problem_mark.line + 1, msg);
        }
        return 0;
}

static int parse_node(struct loader *l, yaml_event_t *ev, unsigned depth, struct ynode **ret);

static int new_node(struct loader *l, yaml_event_t *ev, enum ynode_kind kind, struct ynode **ret)
{
        struct ynode *n;

        if (++l->n_nodes > CONFIG_MAX_NODES)
                return fail(l, (unsigned)ev->start_mark.line + 1, "document has too many nodes");
        n = calloc(1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        n->kind = kind;
        n->line = (unsigned)ev->start_mark.line + 1;
        *ret = n;
        return 0;
}

static bool key_exists(const struct ynode *map, const char *key)
{
        for (const struct ynode *c = map->child; c; c = c->next)
                if (strcmp(c->key, key) == 0)
                        return true;
        return false;
}

/* Reads children until the matching end event; mappings alternate key, value. */
static int parse_children(struct loader *l, struct ynode *parent, unsigned depth)
{
        yaml_event_type_t end = parent->kind == YNODE_MAP ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;
        struct ynode **tail = &parent->child;

        for (;;) {
                yaml_event_t ev;
                struct ynode *child = NULL;
                char *key = NULL;
                int r;

                if ((r = next_event(l, &ev)) < 0)
                        return r;
                if (ev.type == end) {
                        yaml_event_delete(&ev);
                        return 0;
                }
                if (parent->kind == YNODE_MAP) {
                        unsigned line = (unsigned)ev.start_mark.line + 1;

                        if (ev.type != YAML_SCALAR_EVENT) {
                                yaml_event_delete(&ev);
                                return fail(l, line, "mapping keys must be plain scalars");
                        }
                        key = strndup((const char *)ev.data.scalar.value, ev.data.scalar.length);
                        yaml_event_delete(&ev);
                        if (!key)
                                return -ENOMEM;
                        if (key_exists(parent, key)) {
                                char msg[128];

                                snprintf(msg, sizeof(msg), "duplicate key '%.64s'", key);
                                free(key);
                                return fail(l, line, msg);
                        }
                        if ((r = next_event(l, &ev)) < 0) {
                                free(key);
                                return r;
                        }
                }
                r = parse_node(l, &ev, depth + 1, &child);
                yaml_event_delete(&ev);
                if (r < 0) {
                        free(key);
                        return r;
                }
                child->key = key;
                *tail = child;
                tail = &child->next;
                parent->n_children++;
        }
}

static int parse_node(struct loader *l, yaml_event_t *ev, unsigned depth, struct ynode **ret)
{
        unsigned line = (unsigned)ev->start_mark.line + 1;
        struct ynode *n = NULL;
        int r;

        if (depth > CONFIG_MAX_DEPTH)
                return fail(l, line, "nesting is too deep");
        switch (ev->type) {
        case YAML_ALIAS_EVENT:
                return fail(l, line, "anchors and aliases are not supported");
        case YAML_SCALAR_EVENT:
                if (ev->data.scalar.anchor)
                        return fail(l, line, "anchors and aliases are not supported");
                if (ev->data.scalar.length > CONFIG_MAX_SCALAR_BYTES)
                        return fail(l, line, "value is too long");
                if ((r = new_node(l, ev, YNODE_SCALAR, &n)) < 0)
                        return r;
                n->value = strndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
                n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
                if (!n->value) {
                        free(n);
                        return -ENOMEM;
                }
                *ret = n;
                return 0;
        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT:
                if ((ev->type == YAML_MAPPING_START_EVENT && ev->data.mapping_start.anchor) ||
                    (ev->type == YAML_SEQUENCE_START_EVENT && ev->data.sequence_start.anchor))
                        return fail(l, line, "anchors and aliases are not supported");
                r = new_node(l, ev, ev->type == YAML_MAPPING_START_EVENT ? YNODE_MAP : YNODE_SEQ, &n);
                if (r < 0)
                        return r;
                if ((r = parse_children(l, n, depth)) < 0) {
                        ynode_free(n);
                        return r;
                }
                *ret = n;
                return 0;
        default:
                return fail(l, line, "unexpected YAML event");
        }
}

/* Expects stream-start, document-start, one node, document-end, stream-end. */
static int parse_document(struct loader *l, struct ynode **ret)
{
        struct ynode *root = NULL;
        yaml_event_t ev;
        int r;

        for (int i = 0; i < 2; i++) {
                if ((r = next_event(l, &ev)) < 0)
                        return r;
                bool empty = ev.type == YAML_STREAM_END_EVENT;
                yaml_event_delete(&ev);
                if (empty)
                        return fail(l, 1, "configuration is empty");
        }
        if ((r = next_event(l, &ev)) < 0)
                return r;
        r = parse_node(l, &ev, 0, &root);
        yaml_event_delete(&ev);
        if (r < 0)
                return r;
        if ((r = next_event(l, &ev)) < 0) {
                ynode_free(root);
                return r;
        }
        yaml_event_delete(&ev);
        if ((r = next_event(l, &ev)) < 0) {
                ynode_free(root);
                return r;
        }
        bool more = ev.type != YAML_STREAM_END_EVENT;
        unsigned line = (unsigned)ev.start_mark.line + 1;
        yaml_event_delete(&ev);
        if (more) {
                ynode_free(root);
                return fail(l, line, "only one YAML document is allowed");
        }
        *ret = root;
        return 0;
}

int ynode_load_string(const char *text, size_t len, const char *name, struct ynode **ret,
                      char *err, size_t errlen)
{
        struct loader l = { .name = name, .err = err, .errlen = errlen };
        int r;

        if (!yaml_parser_initialize(&l.parser))
                return -ENOMEM;
        yaml_parser_set_input_string(&l.parser, (const unsigned char *)text, len);
        r = parse_document(&l, ret);
        yaml_parser_delete(&l.parser);
        return r;
}

int ynode_load_file(const char *path, struct ynode **ret, char *err, size_t errlen)
{
        _cleanup_free_ char *text = NULL;
        FILE *f = fopen(path, "re");
        size_t n;
        int r;

        if (!f) {
                r = -errno;
                snprintf(err, errlen, "%s: cannot open: %s", path, strerror(-r));
                return r;
        }
        text = malloc(CONFIG_MAX_FILE_BYTES + 1);
        if (!text) {
                fclose(f);
                return -ENOMEM;
        }
        n = fread(text, 1, CONFIG_MAX_FILE_BYTES + 1, f);
        r = ferror(f) ? -EIO : 0;
        fclose(f);
        if (r < 0) {
                snprintf(err, errlen, "%s: cannot read", path);
                return r;
        }
        if (n > CONFIG_MAX_FILE_BYTES) {
                snprintf(err, errlen, "%s: file is larger than %d bytes", path, CONFIG_MAX_FILE_BYTES);
                return -EFBIG;
        }
        return ynode_load_string(text, n, path, ret, err, errlen);
}

struct ynode *ynode_get(struct ynode *map, const char *key)
{
        if (!map || map->kind != YNODE_MAP)
                return NULL;
        for (struct ynode *c = map->child; c; c = c->next)
                if (strcmp(c->key, key) == 0) {
                        c->used = true;
                        return c;
                }
        return NULL;
}

struct ynode *ynode_first_unused(struct ynode *n)
{
        for (struct ynode *c = n ? n->child : NULL; c; c = c->next)
                if (!c->used)
                        return c;
        return NULL;
}

const char *ynode_kind_name(enum ynode_kind k)
{
        return k == YNODE_MAP ? "a mapping" : k == YNODE_SEQ ? "a list" : "a scalar";
}
