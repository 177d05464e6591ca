/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/*
 * A YAML document loaded into a small tree that remembers line numbers, so
 * configuration errors can name file, line, key and value. Anchors, aliases
 * and duplicate keys are refused.
 */
enum ynode_kind { YNODE_SCALAR, YNODE_MAP, YNODE_SEQ };

struct ynode {
        enum ynode_kind kind;
        unsigned line;
        char *key;              /* set when the node is a mapping value */
        char *value;            /* scalars only */
        bool plain;             /* unquoted scalar (so "~" and "" may mean null) */
        bool used;              /* consumed by the binder; leftovers are unknown keys */
        size_t n_children;
        struct ynode *child;    /* first child */
        struct ynode *next;     /* next sibling */
};

/* On failure fills err with "file:line: reason" and returns a negative errno. */
int ynode_load_file(const char *path, struct ynode **ret, char *err, size_t errlen);
int ynode_load_string(const char *text, size_t len, const char *name, struct ynode **ret,
                      char *err, size_t errlen);
void ynode_free(struct ynode *n);

/* Child of a mapping by key, marking it used; NULL if absent. */
struct ynode *ynode_get(struct ynode *map, const char *key);
/* First child of n not marked used, or NULL. */
struct ynode *ynode_first_unused(struct ynode *n);
const char *ynode_kind_name(enum ynode_kind k);
