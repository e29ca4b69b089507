/*
 * Copyright (c) Valkey Contributors
 * All rights reserved.
 * SPDX-License-Identifier: BSD-3-Clause
 */

/* Key groups: memory-profile-groups names key-name prefixes,
 *
 *   memory-profile-groups "sessions app:session: users app:user:"
 *
 * and every profile counts, exactly, the keys and bytes of each group: a
 * key counts in every group whose prefix its name starts with (groups may
 * nest or overlap). The value is split as a config file line is, so a
 * prefix can hold any byte inside double quotes ("\x00\xff", "a b"). The
 * names are labels for INFO and the exporter ([a-z0-9_], 1 to 32 bytes);
 * the prefixes are key bytes, shown only by CONFIG GET.
 *
 * The parent parses the config when it maps a profile's report region
 * (memprofile_transport.c): the child counts with that parse, and the
 * parent reads the report against it, so the names the counts belong to
 * are the ones the child ran with, whatever CONFIG SET did meanwhile. */

#include "memprofile_internal.h"

#include <ctype.h>

void memprofGroupsFree(memprofGroups *g) {
    if (!g) return;
    for (int i = 0; i < g->n; i++) {
        sdsfree(g->names[i]);
        sdsfree(g->prefixes[i]);
    }
    zfree(g);
}

int memprofGroupNameValid(const char *s, size_t len) {
    if (len < 1 || len > MEMPROF_GROUP_NAME_MAX) return 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_')) return 0;
    }
    return 1;
}

memprofGroups *memprofGroupsParse(const char *value, size_t len, const char **err) {
    *err = NULL;
    if (value == NULL || len == 0) return NULL;
    if (strlen(value) != len) {
        *err = "a NUL byte is written \"\\x00\" inside double quotes";
        return NULL;
    }
    int argc;
    sds *argv = sdssplitargs(value, &argc);
    if (argv == NULL) {
        *err = "unbalanced quotes";
        return NULL;
    }
    memprofGroups *g = NULL;
    if (argc == 0) goto done;
    if (argc % 2) {
        *err = "expected pairs of a group name and a key prefix";
        goto done;
    }
    if (argc / 2 > MEMPROF_GROUPS_MAX) {
        *err = "at most 32 groups";
        goto done;
    }
    for (int i = 0; i < argc; i += 2) {
        if (!memprofGroupNameValid(argv[i], sdslen(argv[i]))) {
            *err = "a group name is 1 to 32 bytes of a-z, 0-9 and _";
            goto done;
        }
        if (sdslen(argv[i + 1]) > MEMPROF_KEY_NAME_MAX) {
            *err = "a group prefix is at most 1024 bytes";
            goto done;
        }
        for (int j = 0; j < i; j += 2) {
            if (!strcmp(argv[i], argv[j])) {
                *err = "a group name appears twice";
                goto done;
            }
        }
    }
    g = zcalloc(sizeof(*g));
    for (int i = 0; i < argc; i += 2) {
        int k = g->n++;
        g->names[k] = argv[i];
        g->prefixes[k] = argv[i + 1];
        argv[i] = argv[i + 1] = NULL;
        uint32_t bit = 1u << k;
        const char *p = g->prefixes[k];
        size_t plen = sdslen(p);
        g->len[k] = (uint32_t)plen;
        g->head[k] = memprofGroupsWord(p, plen);
        g->mask[k] = plen >= 8 ? UINT64_MAX : (1ULL << (8 * plen)) - 1;
        if (plen == 0) {
            g->any |= bit;
        } else if (plen == 1) {
            g->first[(unsigned char)p[0]] |= bit;
        } else {
            g->pair[MEMPROF_GROUP_PAIR(p[0], p[1])] |= bit;
        }
    }
done:
    sdsfreesplitres(argv, argc);
    return g;
}

/* The config's validation (CONFIG SET and the config file). */
int memprofGroupsValidate(sds value, const char **err) {
    memprofGroups *g = memprofGroupsParse(value, value ? sdslen(value) : 0, err);
    memprofGroupsFree(g);
    return *err == NULL;
}

/* The value quoted for a config file line, as sdscatrepr() quotes, with
 * quotes and backslashes escaped too (8.1's CONFIG REWRITE; 9.1's
 * sdscatrepr() escapes them itself). */
sds memprofGroupsConfigRepr(sds s, const char *p, size_t len) {
    s = sdscatlen(s, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch == '\\' || ch == '"') {
            s = sdscatprintf(s, "\\%c", ch);
        } else if (isprint(ch)) {
            s = sdscatlen(s, (const char *)&ch, 1);
        } else {
            s = sdscatprintf(s, "\\x%02x", ch);
        }
    }
    return sdscatlen(s, "\"", 1);
}
