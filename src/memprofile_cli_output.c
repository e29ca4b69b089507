/*
 * Copyright (c) Valkey Contributors
 * All rights reserved.
 * SPDX-License-Identifier: BSD-3-Clause
 */

/* valkey-cli --memprofile and --cluster memprofile: the report as JSON
 * (--json, --quoted-json) and as text, a summary in the style of --bigkeys.
 * A merged cluster report names the node of each top key. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memprofile_cli_internal.h"

/* ------------------------------------------------------------------------
 * Formatting helpers (also used by memprofile_cli.c and _cli_cluster.c,
 * which lie above this file)
 * --------------------------------------------------------------------- */

/* 1234567 -> "1.18M"; exact figures are printed next to it. Not
 * valkey-cli.c's bytesToHuman(): it writes nothing from 1 TiB up. */
const char *mpHuman(long long n, char *buf, size_t len) {
    const char *units = "BKMGTP";
    double d = (double)n;
    int u = 0;
    while (d >= 1024 && u < 5) {
        d /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%lldB", n);
    else
        snprintf(buf, len, "%.2f%c", d, units[u]);
    return buf;
}

double mpPct(long long part, long long whole) {
    return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

/* qsort() of a list that may be empty (and NULL). */
void mpSort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *)) {
    if (n > 1) qsort(base, n, size, cmp);
}

/* ------------------------------------------------------------------------
 * Output: JSON
 * --------------------------------------------------------------------- */

/* Length of a valid UTF-8 sequence at p (at most len bytes), 0 if invalid. */
static size_t mpUtf8Len(const unsigned char *p, size_t len) {
    size_t n;
    unsigned int cp;
    if (p[0] < 0x80) return 1;
    if ((p[0] & 0xE0) == 0xC0)
        n = 2, cp = p[0] & 0x1F;
    else if ((p[0] & 0xF0) == 0xE0)
        n = 3, cp = p[0] & 0x0F;
    else if ((p[0] & 0xF8) == 0xF0)
        n = 4, cp = p[0] & 0x07;
    else
        return 0;
    if (n > len) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* A JSON string of any bytes. Control characters, quotes and backslashes
 * are escaped. With --json, valid UTF-8 passes through and any other byte
 * is written as \u00XX; with --quoted-json every byte from 0x80 up is
 * written as \u00XX, so the output is ASCII and decoding each code point as
 * one byte (Latin-1) gives back the exact name. (cli_common.c's
 * escapeJsonString() passes every byte from 0x80 up through, valid or not.) */
sds mpJsonStr(sds s, const char *str, size_t len, int output) {
    const unsigned char *p = (const unsigned char *)str;
    s = sdscatlen(s, "\"", 1);
    for (size_t i = 0; i < len;) {
        unsigned char ch = p[i];
        size_t n = 1;
        if (ch == '"' || ch == '\\') {
            s = sdscatprintf(s, "\\%c", ch);
        } else if (ch == '\n') {
            s = sdscatlen(s, "\\n", 2);
        } else if (ch == '\r') {
            s = sdscatlen(s, "\\r", 2);
        } else if (ch == '\t') {
            s = sdscatlen(s, "\\t", 2);
        } else if (ch < 0x20 || ch == 0x7f) {
            s = sdscatprintf(s, "\\u%04x", ch);
        } else if (ch < 0x80) {
            s = sdscatlen(s, (const char *)p + i, 1);
        } else if (output == MEMPROF_CLI_JSON && (n = mpUtf8Len(p + i, len - i)) > 0) {
            s = sdscatlen(s, (const char *)p + i, n);
        } else {
            n = 1;
            s = sdscatprintf(s, "\\u%04x", ch);
        }
        i += n;
    }
    return sdscatlen(s, "\"", 1);
}

static sds mpJsonCounts(sds s, const char *name, const mpCounts *c, int value_only, int output) {
    s = mpJsonStr(s, name, strlen(name), output);
    s = sdscat(s, ": {");
    for (size_t i = 0; i < c->n; i++) {
        if (i) s = sdscat(s, ", ");
        s = mpJsonStr(s, c->v[i].name, sdslen(c->v[i].name), output);
        if (value_only)
            s = sdscatprintf(s, ": %lld", c->v[i].bytes);
        else
            s = sdscatprintf(s, ": {\"keys\": %lld, \"bytes\": %lld}", c->v[i].keys, c->v[i].bytes);
    }
    return sdscat(s, "}");
}

/* The report's fields, without the enclosing braces. node_names is given
 * for a merged cluster report (top keys name their node). */
sds mpJsonReport(sds s, const mpReport *r, long count, char **node_names, int output) {
    s = sdscat(s, "\"status\": ");
    s = mpJsonStr(s, r->status, sdslen(r->status), output);
    s = sdscat(s, ", \"source\": ");
    s = mpJsonStr(s, r->source, sdslen(r->source), output);
    s = sdscatprintf(s, ", \"time\": %lld, \"duration_ms\": %lld, \"used_memory\": %lld, \"keys\": %lld, "
                        "\"bytes\": %lld,\n ",
                     r->time, r->duration_ms, r->used_memory, r->keys, r->bytes);
    s = mpJsonCounts(s, "types", &r->types, 0, output);
    s = sdscat(s, ",\n ");
    s = mpJsonCounts(s, "encodings", &r->encodings, 0, output);
    s = sdscat(s, ",\n ");
    s = mpJsonCounts(s, "dbs", &r->dbs, 0, output);
    s = sdscat(s, ",\n ");
    s = mpJsonCounts(s, "groups", &r->groups, 0, output);
    s = sdscat(s, ",\n ");
    s = mpJsonCounts(s, "ttl", &r->ttl, 0, output);
    s = sdscat(s, ",\n \"histograms\": {");
    for (size_t i = 0; i < r->nhist; i++) {
        const mpHistRow *h = &r->hist[i];
        int first = i == 0 || strcmp(h->type, r->hist[i - 1].type);
        if (first) {
            if (i) s = sdscat(s, "], ");
            s = mpJsonStr(s, h->type, sdslen(h->type), output);
            s = sdscat(s, ": [");
        } else {
            s = sdscat(s, ", ");
        }
        s = sdscatprintf(s, "{\"le\": %lld, \"keys\": %lld, \"bytes\": %lld}", h->le, h->keys, h->bytes);
    }
    s = sdscat(s, r->nhist ? "]}" : "}");
    s = sdscat(s, ",\n \"topkeys\": [");
    for (size_t i = 0; i < r->ntopkeys && (count == 0 || (long)i < count); i++) {
        const mpTopKey *k = &r->topkeys[i];
        s = sdscat(s, i ? ",\n  {\"key\": " : "\n  {\"key\": ");
        s = mpJsonStr(s, k->key, sdslen(k->key), output);
        if (k->key_len != (long long)sdslen(k->key)) s = sdscatprintf(s, ", \"key_len\": %lld", k->key_len);
        s = sdscatprintf(s, ", \"db\": %lld, \"type\": ", k->db);
        s = mpJsonStr(s, k->type, sdslen(k->type), output);
        s = sdscat(s, ", \"encoding\": ");
        s = mpJsonStr(s, k->encoding, sdslen(k->encoding), output);
        s = sdscatprintf(s, ", \"bytes\": %lld, \"elements\": %lld, \"ttl_ms\": %lld", k->bytes, k->elements,
                         k->ttl_ms);
        if (node_names) {
            s = sdscat(s, ", \"node\": ");
            s = mpJsonStr(s, node_names[k->node], strlen(node_names[k->node]), output);
        }
        s = sdscat(s, "}");
    }
    s = sdscat(s, "],\n \"prefixes\": [");
    long in_depth = 0;
    int first = 1;
    for (size_t i = 0; i < r->nprefixes; i++) {
        const mpPrefix *p = &r->prefixes[i];
        if (i == 0 || p->depth != r->prefixes[i - 1].depth) in_depth = 0;
        if (count && in_depth++ >= count) continue;
        s = sdscat(s, first ? "\n  {\"prefix\": " : ",\n  {\"prefix\": ");
        first = 0;
        s = mpJsonStr(s, p->prefix, sdslen(p->prefix), output);
        s = sdscatprintf(s, ", \"depth\": %lld, \"keys\": %lld, \"bytes\": %lld, \"error_bytes\": %lld}", p->depth,
                         p->keys, p->bytes, p->error_bytes);
    }
    s = sdscat(s, "]");
    if (r->has_slots) {
        s = sdscat(s, ",\n \"slots\": [");
        for (size_t i = 0; i < r->nslots && (count == 0 || (long)i < count); i++) {
            s = sdscatprintf(s, "%s{\"slot\": %lld, \"keys\": %lld, \"bytes\": %lld}", i ? ", " : "",
                             r->slots[i].slot, r->slots[i].keys, r->slots[i].bytes);
        }
        s = sdscat(s, "]");
    }
    s = sdscat(s, ",\n ");
    s = mpJsonCounts(s, "breakdown", &r->breakdown, 1, output);
    return s;
}

/* ------------------------------------------------------------------------
 * Output: text, in the style of --bigkeys
 * --------------------------------------------------------------------- */

static void mpPrintKeyName(const char *name, size_t len, long long whole) {
    sds q = sdscatrepr(sdsempty(), name, len);
    printf("%s", q);
    if (whole != (long long)len) printf(" (cut, %lld bytes long)", whole);
    sdsfree(q);
}

static const char *mpTtlText(long long ttl_ms, char *buf, size_t len) {
    if (ttl_ms < 0)
        snprintf(buf, len, "no ttl");
    else if (ttl_ms == 0)
        snprintf(buf, len, "expired");
    else if (ttl_ms < 3600000)
        snprintf(buf, len, "ttl %llds", ttl_ms / 1000);
    else if (ttl_ms < 86400000)
        snprintf(buf, len, "ttl %.1fh", ttl_ms / 3600000.0);
    else
        snprintf(buf, len, "ttl %.1fd", ttl_ms / 86400000.0);
    return buf;
}

/* "hash" -> "hashes", as people write it (--bigkeys writes "hashs"). */
static const char *mpPlural(const char *type) {
    static char buf[64];
    int es = !strcmp(type, "hash");
    snprintf(buf, sizeof(buf), "%s%s", type, es ? "es" : "s");
    return buf;
}

static int mpCmpCountBytes(const void *a, const void *b) {
    const mpCount *x = a, *y = b;
    return (y->bytes > x->bytes) - (y->bytes < x->bytes);
}

/* The largest key of a type: in r's top keys, or else in extra's. */
const mpTopKey *mpBiggestOfType(const mpReport *r, const mpReport *extra, const char *type) {
    for (size_t i = 0; i < r->ntopkeys; i++)
        if (!strcmp(r->topkeys[i].type, type)) return &r->topkeys[i];
    for (size_t i = 0; extra && i < extra->ntopkeys; i++)
        if (!strcmp(extra->topkeys[i].type, type)) return &extra->topkeys[i];
    return NULL;
}

/* The summary, and the biggest key of each type as --bigkeys prints it. */
static void mpPrintSummary(const mpReport *r, const mpReport *extra, char **node_names) {
    char h1[32], h2[32];
    printf("\n-------- summary -------\n\n");
    printf("Profiled %lld keys in the keyspace, holding %lld bytes (%s) of user data\n", r->keys, r->bytes,
           mpHuman(r->bytes, h1, sizeof(h1)));
    printf("used_memory at the fork: %lld (%s)%s; %swalk took %lld ms\n\n", r->used_memory,
           mpHuman(r->used_memory, h2, sizeof(h2)), node_names ? ", all nodes" : "",
           node_names ? "the longest " : "", r->duration_ms);

    /* Biggest key of each type, as --bigkeys. Top keys are largest first. */
    for (size_t t = 0; t < r->types.n; t++) {
        const mpTopKey *k = mpBiggestOfType(r, extra, r->types.v[t].name);
        if (!k) continue;
        printf("Biggest %6s found ", k->type);
        mpPrintKeyName(k->key, sdslen(k->key), k->key_len);
        printf(" has %lld bytes\n", k->bytes);
    }
    printf("\n");
    for (size_t t = 0; t < r->types.n; t++) {
        const mpCount *c = &r->types.v[t];
        if (!c->keys) continue;
        printf("%lld %s with %lld bytes (%05.2f%% of keys, %05.2f%% of bytes, avg size %.2f)\n", c->keys, mpPlural(c->name),
               c->bytes, mpPct(c->keys, r->keys), mpPct(c->bytes, r->bytes), (double)c->bytes / (double)c->keys);
    }
}

static void mpPrintEncodings(const mpReport *r) {
    printf("\n-------- by encoding -------\n\n");
    mpCount *enc = zmalloc(sizeof(mpCount) * (r->encodings.n + 1));
    if (r->encodings.n) memcpy(enc, r->encodings.v, sizeof(mpCount) * r->encodings.n);
    mpSort(enc, r->encodings.n, sizeof(mpCount), mpCmpCountBytes);
    for (size_t i = 0; i < r->encodings.n; i++) {
        if (!enc[i].keys) continue;
        printf("%-16s %10lld keys %14lld bytes %6.2f%%\n", enc[i].name, enc[i].keys, enc[i].bytes,
               mpPct(enc[i].bytes, r->bytes));
    }
    zfree(enc);
}

static void mpPrintTopKeys(const mpReport *r, long count, char **node_names) {
    char h1[32], tb[32];
    printf("\n-------- biggest keys -------\n\n");
    for (size_t i = 0; i < r->ntopkeys && (count == 0 || (long)i < count); i++) {
        const mpTopKey *k = &r->topkeys[i];
        printf("%3zu. ", i + 1);
        mpPrintKeyName(k->key, sdslen(k->key), k->key_len);
        printf(" %s %s, %lld bytes (%s), %s %lld, db %lld, %s", k->type, k->encoding, k->bytes,
               mpHuman(k->bytes, h1, sizeof(h1)), strcmp(k->type, "string") ? "elements" : "length", k->elements,
               k->db, mpTtlText(k->ttl_ms, tb, sizeof(tb)));
        if (node_names) printf(", %s", node_names[k->node]);
        printf("\n");
    }
    if (!r->ntopkeys) printf("(none)\n");
}

static void mpPrintPrefixes(const mpReport *r, long count) {
    char h1[32];
    printf("\n-------- biggest prefixes -------\n");
    long in_depth = 0;
    for (size_t i = 0; i < r->nprefixes; i++) {
        const mpPrefix *p = &r->prefixes[i];
        if (i == 0 || p->depth != r->prefixes[i - 1].depth) {
            in_depth = 0;
            printf("\ndepth %lld:\n", p->depth);
        }
        if (count && in_depth++ >= count) continue;
        printf("  ");
        mpPrintKeyName(p->prefix, sdslen(p->prefix), (long long)sdslen(p->prefix));
        printf(" %lld keys, %lld bytes (%s, %05.2f%%)", p->keys, p->bytes, mpHuman(p->bytes, h1, sizeof(h1)),
               mpPct(p->bytes, r->bytes));
        if (p->error_bytes) printf(", overestimated by at most %lld bytes", p->error_bytes);
        printf("\n");
    }
    if (!r->nprefixes) printf("\n(none: memory-profile-prefix-depth is 0 or no keys)\n");
}

/* The key groups (memory-profile-groups), in the server's order. */
static void mpPrintGroups(const mpReport *r) {
    char h1[32];
    if (!r->groups.n) return;
    printf("\n-------- key groups -------\n\n");
    for (size_t i = 0; i < r->groups.n; i++) {
        const mpCount *c = &r->groups.v[i];
        printf("%-24s %10lld keys %14lld bytes (%s, %05.2f%%)\n", c->name, c->keys, c->bytes,
               mpHuman(c->bytes, h1, sizeof(h1)), mpPct(c->bytes, r->bytes));
    }
}

static void mpPrintTtl(const mpReport *r) {
    static const struct {
        const char *name, *label;
    } labels[] = {{"none", "no TTL"}, {"expired", "expired, not reclaimed"}, {"1h", "within 1 hour"}, {"1d", "1 hour to 1 day"}, {"7d", "1 to 7 days"}, {"later", "after 7 days"}};
    printf("\n-------- TTL horizon -------\n\n");
    for (size_t i = 0; i < r->ttl.n; i++) {
        const mpCount *c = &r->ttl.v[i];
        const char *label = c->name;
        for (size_t j = 0; j < sizeof(labels) / sizeof(labels[0]); j++)
            if (!strcmp(label, labels[j].name)) label = labels[j].label;
        printf("%-24s %10lld keys %14lld bytes %6.2f%%\n", label, c->keys, c->bytes, mpPct(c->bytes, r->bytes));
    }
}

static void mpPrintCategories(const mpReport *r) {
    char h1[32];
    printf("\n-------- largest memory categories -------\n\n");
    mpCount *cat = zmalloc(sizeof(mpCount) * (r->breakdown.n + 1));
    size_t ncat = 0;
    for (size_t i = 0; i < r->breakdown.n; i++) {
        /* The waterfall's lines, which add up to RSS: not RSS itself, nor
         * the allocator's retained bytes (address space, not resident). */
        const char *n = r->breakdown.v[i].name;
        if (!strcmp(n, "mem_rss") || !strcmp(n, "mem_allocator_retained")) continue;
        cat[ncat++] = r->breakdown.v[i];
    }
    mpSort(cat, ncat, sizeof(mpCount), mpCmpCountBytes);
    long long rss = 0;
    for (size_t i = 0; i < r->breakdown.n; i++)
        if (!strcmp(r->breakdown.v[i].name, "mem_rss")) rss = r->breakdown.v[i].bytes;
    for (size_t i = 0; i < ncat; i++) {
        if (!cat[i].bytes) break;
        printf("%-24s %14lld bytes (%s)", cat[i].name, cat[i].bytes, mpHuman(cat[i].bytes, h1, sizeof(h1)));
        if (rss) printf(" %6.2f%% of RSS", mpPct(cat[i].bytes, rss));
        printf("\n");
    }
    zfree(cat);
}

/* The report as text, in the --bigkeys layout. extra, when given, holds the
 * largest key of types missing from r's top keys (cut by
 * --memprofile-count). */
void mpPrintReport(const mpReport *r, const mpReport *extra, long count, char **node_names) {
    mpPrintSummary(r, extra, node_names);
    mpPrintEncodings(r);
    mpPrintTopKeys(r, count, node_names);
    mpPrintPrefixes(r, count);
    mpPrintGroups(r);
    mpPrintTtl(r);
    mpPrintCategories(r);
}
