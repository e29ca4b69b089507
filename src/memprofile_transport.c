/*
 * Copyright (c) Valkey Contributors
 * All rights reserved.
 * SPDX-License-Identifier: BSD-3-Clause
 */

/* The report from the save child to the parent.
 *
 * A deep profile holds up to megabytes (top keys with names of up to 1 KB,
 * thousands of prefixes, 16384 slots): more than the childinfo pipe holds,
 * and the parent drains that pipe only once a second while a child runs.
 * So the parent maps a shared anonymous region just before the fork, sized
 * to the largest report the current configs allow (pages never written cost
 * nothing); the child writes the report there and announces its length with
 * one childinfo record; the parent decodes it after reaping the child, and
 * unmaps the region whatever the outcome. The region belongs to the profile
 * in flight (memprofile_run.c), which maps and unmaps it through here.
 *
 * The report is binary (key names hold any byte), versioned and checked:
 *
 *   header   magic "MEMPROF\0", version, sizeof(memprofFigures), body length,
 *            CRC-64 of the body, and the count of each list
 *   body     memprofFigures, then the dbs, top keys, prefixes, slots and key
 *            groups as fixed-size records, each name followed by its bytes
 *            (a group's name is not sent: the parent knows the groups the
 *            child counted, it parsed them for the region)
 *
 * The parent trusts nothing in it: every length and count is bounded by the
 * region and the limits of the configs at the fork (those the region was
 * sized for), before anything is allocated for it; every index (db, slot,
 * encoding, depth) is range-checked, and the totals must agree with each
 * other. A report that fails any check is not published. */

#include "memprofile_internal.h"
#include "cluster.h"
#include "crc64.h"

#include <sys/mman.h>

#define MEMPROF_MAGIC "MEMPROF"
/* 3: the figures gained the volatile sets, importing keys and 9.1's buffers.
 * 4: key groups. */
#define MEMPROF_VERSION 4

typedef struct reportHeader {
    char magic[8];
    uint32_t version;
    uint32_t figures_size;
    uint64_t body_len;
    uint64_t checksum;
    uint32_t ndbs, ntopkeys, nprefixes, nslots;
    uint32_t ngroups, reserved;
} reportHeader;

typedef struct indexedRecord {
    uint32_t index;
    uint64_t keys, bytes;
} __attribute__((packed)) indexedRecord;

typedef struct topKeyRecord {
    uint32_t name_len; /* Bytes of the name that follow. */
    uint64_t full_len;
    uint32_t db, encoding;
    uint64_t bytes, elements;
    int64_t ttl_ms;
} __attribute__((packed)) topKeyRecord;

typedef struct countRecord {
    uint64_t keys, bytes;
} __attribute__((packed)) countRecord;

typedef struct prefixRecord {
    uint32_t len; /* Bytes of the prefix that follow. */
    uint32_t depth;
    uint64_t keys, bytes, error_bytes;
} __attribute__((packed)) prefixRecord;

static void memprofCurrentLimits(memprofReportLimits *l) {
    l->dbs = server.dbnum;
    l->topkeys = server.memory_profile_top_keys;
    l->depth = server.memory_profile_prefix_depth;
    l->prefixes = server.memory_profile_prefix_capacity;
    l->slots = server.cluster_enabled ? CLUSTER_SLOTS : 0;
    l->groups = 0;
}

/* The largest report these limits allow. */
size_t memprofReportBound(const memprofReportLimits *l) {
    size_t bound = sizeof(reportHeader) + sizeof(memprofFigures);
    bound += l->dbs * sizeof(indexedRecord);
    bound += MEMPROF_TYPE_COUNT * l->topkeys * (sizeof(topKeyRecord) + MEMPROF_KEY_NAME_MAX);
    bound += l->depth * l->prefixes * (sizeof(prefixRecord) + MEMPROF_PREFIX_MAX);
    bound += l->slots * sizeof(indexedRecord);
    bound += l->groups * sizeof(countRecord);
    return bound;
}

void memprofRegionUnmap(memprofRegion *r) {
    if (r->base) munmap(r->base, r->size);
    r->base = NULL;
    r->size = 0;
    memprofGroupsFree(r->groups);
    r->groups = NULL;
}

sds memprofRegionMap(memprofRegion *r) {
    memprofReportLimits limits;
    memprofCurrentLimits(&limits);
    /* The groups the child will count: the config was validated when set. */
    const char *err;
    sds value = server.memory_profile_groups;
    memprofGroups *groups = memprofGroupsParse(value, value ? sdslen(value) : 0, &err);
    limits.groups = groups ? (size_t)groups->n : 0;
    size_t size = memprofReportBound(&limits);
    void *p;
    if (server.memory_profile_report_fault == MEMPROF_FAULT_MAP) {
        errno = ENOMEM;
        p = MAP_FAILED;
    } else {
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    }
    if (p == MAP_FAILED) {
        memprofGroupsFree(groups);
        return sdscatprintf(sdsempty(), "its report region of %zu bytes could not be mapped: %s", size,
                            strerror(errno));
    }
    r->base = p;
    r->size = size;
    r->limits = limits;
    r->groups = groups;
    return NULL;
}

/* ------------------------------------------------------------------------
 * Child: encoding
 * --------------------------------------------------------------------- */

/* A cursor writing the report into the region; 'overflow' once it did not fit. */
typedef struct reportEncoder {
    char *p, *end;
    int overflow;
} reportEncoder;

static void encodeBytes(reportEncoder *w, const void *src, size_t len) {
    if (w->overflow || (size_t)(w->end - w->p) < len) {
        w->overflow = 1;
        return;
    }
    memcpy(w->p, src, len);
    w->p += len;
}

static int cmpIndexedBytesDesc(const void *a, const void *b) {
    const memprofIndexed *x = a, *y = b;
    if (x->bytes != y->bytes) return x->bytes < y->bytes ? 1 : -1;
    return x->index - y->index;
}

/* The child's slot list being sorted (by cmpSlotOrder(): the child is
 * single-threaded). */
static const memprofIndexed *sorting_slots;

static int cmpSlotOrder(const void *a, const void *b) {
    return cmpIndexedBytesDesc(&sorting_slots[*(const uint16_t *)a], &sorting_slots[*(const uint16_t *)b]);
}

static int cmpTopKeys(const void *a, const void *b) {
    const memprofTopKey *x = *(const memprofTopKey *const *)a, *y = *(const memprofTopKey *const *)b;
    if (x->bytes != y->bytes) return x->bytes < y->bytes ? 1 : -1;
    return 0;
}

typedef struct prefixRef {
    const memprofPrefixes *s;
    size_t i;
    unsigned long long bytes;
} prefixRef;

static int cmpPrefixRefs(const void *a, const void *b) {
    const prefixRef *x = a, *y = b;
    if (x->bytes != y->bytes) return x->bytes < y->bytes ? 1 : -1;
    return 0;
}

size_t memprofTransportWrite(const memprofRegion *region, const memprofFigures *f, const memprofIndexed *dbs, size_t ndbs, memprofTopKeys **topkeys, memprofPrefixes **prefixes, int depth, const memprofIndexed *slots, size_t nslots, const memprofCount *groups) {
    if (!region->base) return 0;
    reportEncoder w = {region->base + sizeof(reportHeader), region->base + region->size, 0};
    reportHeader h = {.version = MEMPROF_VERSION, .figures_size = sizeof(memprofFigures)};
    memcpy(h.magic, MEMPROF_MAGIC, sizeof(MEMPROF_MAGIC));

    encodeBytes(&w, f, sizeof(*f));

    for (size_t i = 0; i < ndbs; i++) {
        indexedRecord r = {dbs[i].index, dbs[i].keys, dbs[i].bytes};
        encodeBytes(&w, &r, sizeof(r));
    }
    h.ndbs = ndbs;

    /* Top keys: all types merged, largest first. */
    size_t n = 0;
    for (int t = 0; t < MEMPROF_TYPE_COUNT; t++) n += memprofTopKeysCount(topkeys[t]);
    const memprofTopKey **keys = zmalloc(sizeof(*keys) * (n ? n : 1));
    n = 0;
    for (int t = 0; t < MEMPROF_TYPE_COUNT; t++) {
        for (size_t i = 0; i < memprofTopKeysCount(topkeys[t]); i++) keys[n++] = memprofTopKeysGet(topkeys[t], i);
    }
    qsort(keys, n, sizeof(*keys), cmpTopKeys);
    for (size_t i = 0; i < n; i++) {
        const memprofTopKey *k = keys[i];
        topKeyRecord r = {sdslen(k->name), k->name_len, k->db, k->encoding, k->bytes, k->elements, k->ttl_ms};
        encodeBytes(&w, &r, sizeof(r));
        encodeBytes(&w, k->name, sdslen(k->name));
    }
    zfree(keys);
    h.ntopkeys = n;

    /* Prefixes: depth ascending, largest first within a depth. */
    h.nprefixes = 0;
    for (int d = 0; d < depth; d++) {
        size_t count = memprofPrefixesCount(prefixes[d]);
        prefixRef *refs = zmalloc(sizeof(*refs) * (count ? count : 1));
        for (size_t i = 0; i < count; i++) {
            const char *name;
            size_t len;
            unsigned long long k, b, e;
            memprofPrefixesGet(prefixes[d], i, &name, &len, &k, &b, &e);
            refs[i] = (prefixRef){prefixes[d], i, b};
        }
        qsort(refs, count, sizeof(*refs), cmpPrefixRefs);
        for (size_t i = 0; i < count; i++) {
            const char *name;
            size_t len;
            unsigned long long k, b, e;
            memprofPrefixesGet(refs[i].s, refs[i].i, &name, &len, &k, &b, &e);
            prefixRecord r = {len, d + 1, k, b, e};
            encodeBytes(&w, &r, sizeof(r));
            encodeBytes(&w, name, len);
        }
        h.nprefixes += count;
        zfree(refs);
    }

    /* Slots: largest first. What is sorted is their positions in the list,
     * two bytes each, not the list's records (a few hundred KB to copy). */
    uint16_t *order = zmalloc(sizeof(*order) * (nslots ? nslots : 1));
    for (size_t i = 0; i < nslots; i++) order[i] = i;
    sorting_slots = slots;
    if (nslots) qsort(order, nslots, sizeof(*order), cmpSlotOrder);
    for (size_t i = 0; i < nslots; i++) {
        const memprofIndexed *x = &slots[order[i]];
        indexedRecord r = {x->index, x->keys, x->bytes};
        encodeBytes(&w, &r, sizeof(r));
    }
    zfree(order);
    h.nslots = nslots;

    for (size_t i = 0; i < region->limits.groups; i++) {
        countRecord r = {groups[i].keys, groups[i].bytes};
        encodeBytes(&w, &r, sizeof(r));
    }
    h.ngroups = region->limits.groups;

    if (w.overflow) return 0;
    h.body_len = w.p - (region->base + sizeof(reportHeader));
    h.checksum = crc64(0, (unsigned char *)region->base + sizeof(reportHeader), h.body_len);
    memcpy(region->base, &h, sizeof(h));
    return sizeof(reportHeader) + h.body_len;
}

/* Tests only (the hidden config memory-profile-report-fault): damage the
 * written report as a buggy or hostile child could, to check that the
 * parent refuses it. Returns the length to announce. */
size_t memprofTransportDamage(const memprofRegion *region, size_t len, int fault) {
    reportHeader *h = (reportHeader *)region->base;
    char *body = region->base + sizeof(*h);
    char *dbs = body + sizeof(memprofFigures);
    switch (fault) {
    case 1: body[h->body_len / 2] ^= 0x55; return len; /* Checksum mismatch. */
    case 2: h->ntopkeys = UINT32_MAX; return len;      /* Count past any limit. */
    case 3: return region->size + 1;                   /* Length past the region. */
    case 4: h->version++; return len;                  /* Another version. */
    case 5:                                            /* A db out of range. */
        if (h->ndbs) ((indexedRecord *)dbs)->index = server.dbnum;
        break;
    case 6: /* A name running past the end of the report. */
        if (h->ntopkeys) ((topKeyRecord *)(dbs + h->ndbs * sizeof(indexedRecord)))->name_len = MEMPROF_KEY_NAME_MAX;
        h->ntopkeys = 1;
        break;
    case 7: ((memprofFigures *)body)->ttl[MEMPROF_TTL_NONE].keys += 1; break;                  /* Totals disagree. */
    case 8: h->nprefixes = MEMPROF_PREFIX_DEPTH_MAX * MEMPROF_PREFIX_CAPACITY_MAX; return len; /* Past the configs. */
    default: return len;
    }
    /* Damage inside the body comes with a valid checksum: only the checks
     * of the records themselves can catch it. */
    memprofTransportSeal(region, len);
    return len;
}

/* Set the header's body length and checksum to match a report of 'len'
 * bytes (damage that only the record checks can catch; the fuzz target). */
void memprofTransportSeal(const memprofRegion *region, size_t len) {
    if (!region->base || len < sizeof(reportHeader) || len > region->size) return;
    reportHeader *h = (reportHeader *)region->base;
    h->body_len = len - sizeof(*h);
    h->checksum = crc64(0, (unsigned char *)region->base + sizeof(*h), h->body_len);
}

/* memory-profile-report-fault 12 (tests): the parent writes each report it
 * is about to read to memprof-report-<pid>-<n>.fuzz in its working
 * directory, in the input format of the report's fuzz target
 * (tests/fuzz/fuzz_report.c): flags (0), the limits the region was mapped
 * for (the key groups by their count), the announced length, then the
 * report. Seeds for the fuzzer, taken
 * from real profiles. A write that fails is logged, nothing more. */
void memprofTransportKeep(const memprofRegion *region, size_t len) {
    static unsigned long long n = 0;
    const memprofReportLimits *l = &region->limits;
    unsigned char head[16] = {0};
    /* Each limit in its byte(s), saturated rather than wrapped (the target
     * clamps them lower still). */
    size_t prefixes = l->prefixes > 0xffff ? 0xffff : l->prefixes;
    head[1] = (unsigned char)(l->dbs > 0xff ? 0xff : l->dbs);
    head[2] = (unsigned char)(l->topkeys > 0xff ? 0xff : l->topkeys);
    head[3] = (unsigned char)l->depth;
    head[4] = (unsigned char)(prefixes & 0xff);
    head[5] = (unsigned char)(prefixes >> 8);
    head[6] = l->slots ? 1 : 0;
    head[7] = (unsigned char)l->groups;
    uint64_t announced = len;
    memcpy(head + 8, &announced, sizeof(announced));
    char name[64];
    snprintf(name, sizeof(name), "memprof-report-%d-%llu.fuzz", (int)getpid(), ++n);
    FILE *fp = fopen(name, "w");
    size_t body = region->base && len <= region->size ? len : 0;
    int ok = fp && fwrite(head, sizeof(head), 1, fp) == 1 && (!body || fwrite(region->base, body, 1, fp) == 1);
    if (fp && fclose(fp) != 0) ok = 0;
    if (!ok) serverLog(LL_WARNING, "Memory profile: could not keep the report in %s: %s", name, strerror(errno));
}

/* ------------------------------------------------------------------------
 * Parent: decoding and validation
 * --------------------------------------------------------------------- */

/* A cursor reading the report back, never past its announced length. */
typedef struct reportDecoder {
    const char *p, *end;
} reportDecoder;

static int decodeBytes(reportDecoder *r, void *dst, size_t len) {
    if ((size_t)(r->end - r->p) < len) return 0;
    memcpy(dst, r->p, len);
    r->p += len;
    return 1;
}

/* Reads 'n' indexed records with indexes below 'limit' into a new array. */
static int readIndexed(reportDecoder *r, size_t n, int limit, memprofIndexed **out) {
    *out = zmalloc(sizeof(memprofIndexed) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) {
        indexedRecord rec;
        if (!decodeBytes(r, &rec, sizeof(rec)) || rec.index >= (uint32_t)limit) return 0;
        (*out)[i] = (memprofIndexed){(int)rec.index, rec.keys, rec.bytes};
    }
    return 1;
}

/* The decoded figures must agree with each other: every key is in one TTL
 * bucket, one histogram bucket of its type, one db, and one slot in cluster
 * mode. */
static const char *memprofCheckTotals(const memprofProfile *p) {
    unsigned long long keys, bytes, k = 0, b = 0;
    memprofTotals(&p->f, &keys, &bytes);
    for (int i = 0; i < MEMPROF_TTL_BUCKETS; i++) k += p->f.ttl[i].keys, b += p->f.ttl[i].bytes;
    if (k != keys || b != bytes) return "its TTL buckets do not add up to its totals";
    if (p->f.importing.keys > keys || p->f.importing.bytes > bytes) return "its importing keys exceed its totals";
    if (p->f.kv_hash_vsets > bytes || p->f.kv_hash_vsets > p->f.kv_hash_meta)
        return "its volatile sets exceed its key bytes or its hash field metadata";
    memprofCount types[MEMPROF_TYPE_COUNT];
    memprofTypeTotals(&p->f, types);
    for (int t = 0; t < MEMPROF_TYPE_COUNT; t++) {
        k = b = 0;
        for (int i = 0; i < MEMPROF_HIST_BUCKETS; i++) k += p->f.hist[t][i].keys, b += p->f.hist[t][i].bytes;
        if (k != types[t].keys || b != types[t].bytes) return "its histograms do not add up to its type totals";
    }
    k = b = 0;
    for (size_t i = 0; i < p->ndbs; i++) k += p->dbs[i].keys, b += p->dbs[i].bytes;
    if (k != keys || b != bytes) return "its dbs do not add up to its totals";
    if (p->nslots) {
        k = b = 0;
        for (size_t i = 0; i < p->nslots; i++) k += p->slots[i].keys, b += p->slots[i].bytes;
        if (k != keys || b != bytes) return "its slots do not add up to its totals";
    }
    for (size_t i = 0; i < p->ngroups; i++) {
        if (p->groups[i].keys > keys || p->groups[i].bytes > bytes) return "a key group exceeds its totals";
    }
    return NULL;
}

memprofProfile *memprofTransportRead(const memprofRegion *region, size_t len, const char **why) {
    reportHeader h;
    *why = NULL;
    if (!region->base) {
        *why = "no report region";
        return NULL;
    }
    if (len < sizeof(h) || len > region->size) {
        *why = "its announced length is out of bounds";
        return NULL;
    }
    memcpy(&h, region->base, sizeof(h));
    if (memcmp(h.magic, MEMPROF_MAGIC, sizeof(MEMPROF_MAGIC)) || h.version != MEMPROF_VERSION ||
        h.figures_size != sizeof(memprofFigures)) {
        *why = "its header is not of this version";
        return NULL;
    }
    if (h.body_len != len - sizeof(h)) {
        *why = "its length does not match its header";
        return NULL;
    }
    const char *body = region->base + sizeof(h);
    if (crc64(0, (const unsigned char *)body, h.body_len) != h.checksum) {
        *why = "its checksum does not match";
        return NULL;
    }
    /* Nothing is allocated before the counts are bounded by the limits the
     * region was sized for, and by the records the body can hold. */
    const memprofReportLimits *l = &region->limits;
    if (h.ndbs > l->dbs || h.ntopkeys > MEMPROF_TYPE_COUNT * l->topkeys || h.nprefixes > l->depth * l->prefixes ||
        h.nslots > l->slots) {
        *why = "a list is longer than the configs at the fork allow";
        return NULL;
    }
    if (h.ngroups != l->groups) {
        *why = "its key groups are not those at the fork";
        return NULL;
    }
    uint64_t need = sizeof(memprofFigures) + ((uint64_t)h.ndbs + h.nslots) * sizeof(indexedRecord) +
                    (uint64_t)h.ntopkeys * sizeof(topKeyRecord) + (uint64_t)h.nprefixes * sizeof(prefixRecord) +
                    (uint64_t)h.ngroups * sizeof(countRecord);
    if (need > h.body_len) {
        *why = "its lists do not fit in its length";
        return NULL;
    }

    reportDecoder r = {body, body + h.body_len};
    memprofProfile *p = zcalloc(sizeof(*p));
    size_t per_type[MEMPROF_TYPE_COUNT] = {0}, per_depth[MEMPROF_PREFIX_DEPTH_MAX] = {0};
    if (!decodeBytes(&r, &p->f, sizeof(p->f))) goto bad;
    p->ndbs = h.ndbs;
    if (!readIndexed(&r, p->ndbs, server.dbnum, &p->dbs)) goto bad;

    p->topkeys = zcalloc(sizeof(memprofTopKey) * (h.ntopkeys ? h.ntopkeys : 1));
    for (uint32_t i = 0; i < h.ntopkeys; i++) {
        topKeyRecord rec;
        if (!decodeBytes(&r, &rec, sizeof(rec))) goto bad;
        if (rec.name_len > MEMPROF_KEY_NAME_MAX || rec.name_len > rec.full_len ||
            rec.db >= (uint32_t)server.dbnum || rec.encoding >= MEMPROF_ENC_COUNT || (size_t)(r.end - r.p) < rec.name_len ||
            ++per_type[memprofEncodings[rec.encoding].type] > l->topkeys)
            goto bad;
        memprofTopKey *k = &p->topkeys[p->ntopkeys++];
        k->name = sdsnewlen(r.p, rec.name_len);
        r.p += rec.name_len;
        k->name_len = rec.full_len;
        k->db = rec.db;
        k->encoding = rec.encoding;
        k->bytes = rec.bytes;
        k->elements = rec.elements;
        k->ttl_ms = rec.ttl_ms;
    }

    p->prefixes = zcalloc(sizeof(memprofPrefix) * (h.nprefixes ? h.nprefixes : 1));
    for (uint32_t i = 0; i < h.nprefixes; i++) {
        prefixRecord rec;
        if (!decodeBytes(&r, &rec, sizeof(rec))) goto bad;
        if (rec.len > MEMPROF_PREFIX_MAX || rec.depth < 1 || rec.depth > l->depth || rec.error_bytes > rec.bytes ||
            (size_t)(r.end - r.p) < rec.len || ++per_depth[rec.depth - 1] > l->prefixes)
            goto bad;
        memprofPrefix *x = &p->prefixes[p->nprefixes++];
        x->prefix = sdsnewlen(r.p, rec.len);
        r.p += rec.len;
        x->depth = rec.depth;
        x->keys = rec.keys;
        x->bytes = rec.bytes;
        x->error_bytes = rec.error_bytes;
    }

    p->nslots = h.nslots;
    if (!readIndexed(&r, p->nslots, CLUSTER_SLOTS, &p->slots)) goto bad;
    p->groups = zcalloc(sizeof(memprofGroupCount) * (h.ngroups ? h.ngroups : 1));
    for (uint32_t i = 0; i < h.ngroups; i++) {
        countRecord rec;
        if (!decodeBytes(&r, &rec, sizeof(rec))) goto bad;
        memprofGroupCount *g = &p->groups[p->ngroups++];
        g->name = region->groups && i < (uint32_t)region->groups->n ? sdsdup(region->groups->names[i]) : sdsempty();
        g->keys = rec.keys;
        g->bytes = rec.bytes;
    }
    if (r.p != r.end) goto bad;
    if ((*why = memprofCheckTotals(p)) != NULL) {
        memprofProfileFree(p);
        return NULL;
    }
    return p;

bad:
    *why = "a record is malformed or out of range";
    memprofProfileFree(p);
    return NULL;
}
