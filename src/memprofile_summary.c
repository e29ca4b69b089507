/*
 * Copyright (c) Valkey Contributors
 * All rights reserved.
 * SPDX-License-Identifier: BSD-3-Clause
 */

/* Bounded summaries the save child keeps while it walks the keyspace.
 *
 * Top keys: the 'capacity' largest keys of one type, in a min-heap by
 * bytes, so that a key smaller than the smallest kept one costs one
 * comparison.
 *
 * Prefixes: the heaviest prefixes of one depth by bytes, with the
 * Space-Saving algorithm (Metwally, Agrawal, El Abbadi, 2005) weighted by
 * bytes. Up to 'capacity' prefixes are counted exactly. Past that, a prefix
 * not in the table takes the place of the lightest one and inherits its
 * figures: its bytes then overestimate the truth by at most that lightest
 * figure, which the row keeps as error_bytes. Every prefix whose true bytes
 * exceed total/capacity is guaranteed to be in the table. Summaries of
 * several nodes merge by adding rows (and their error bounds).
 *
 * An addition carries a weight (keys, bytes): the child adds the keys of a
 * prefix that follow one another at once (memprofile_child.c), which the
 * algorithm allows, its bounds holding for any weights.
 *
 * The prefix table is an open-addressing index (linear probing, deletion by
 * backward shift) over an array of entries that grows with the prefixes
 * seen, up to the capacity. Only once the table is full does it need the
 * lightest entry: the entries are then arranged in a min-heap by bytes,
 * kept from then on. So while the prefixes fit (the common case) an
 * addition costs one lookup; past that an increase and an eviction cost
 * O(log capacity). No allocation is made after the table is full. */

#include "memprofile_internal.h"

#define PREFIX_HEAD 16

/* ------------------------------------------------------------------------
 * Top keys
 * --------------------------------------------------------------------- */

struct memprofTopKeys {
    size_t capacity, count;
    memprofTopKey *heap; /* Min-heap by bytes. */
};

memprofTopKeys *memprofTopKeysCreate(size_t capacity) {
    memprofTopKeys *t = zcalloc(sizeof(*t));
    t->capacity = capacity;
    t->heap = capacity ? zcalloc(sizeof(memprofTopKey) * capacity) : NULL;
    return t;
}

void memprofTopKeysFree(memprofTopKeys *t) {
    if (!t) return;
    for (size_t i = 0; i < t->count; i++) sdsfree(t->heap[i].name);
    zfree(t->heap);
    zfree(t);
}

static void topKeysSiftDown(memprofTopKeys *t, size_t i) {
    memprofTopKey *h = t->heap;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < t->count && h[l].bytes < h[m].bytes) m = l;
        if (r < t->count && h[r].bytes < h[m].bytes) m = r;
        if (m == i) return;
        memprofTopKey tmp = h[i];
        h[i] = h[m];
        h[m] = tmp;
        i = m;
    }
}

static void topKeysSiftUp(memprofTopKeys *t, size_t i) {
    memprofTopKey *h = t->heap;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p].bytes <= h[i].bytes) return;
        memprofTopKey tmp = h[i];
        h[i] = h[p];
        h[p] = tmp;
        i = p;
    }
}

unsigned long long memprofTopKeysOffer(memprofTopKeys *t, robj *o, const char *key, size_t keylen, int db, int encoding, unsigned long long bytes, long long ttl_ms) {
    int grow = t->count < t->capacity;
    if (!grow && (t->capacity == 0 || bytes <= t->heap[0].bytes)) return memprofTopKeysFloor(t);
    /* A new slot at the end, or the smallest key's place at the root. */
    memprofTopKey *k = grow ? &t->heap[t->count++] : &t->heap[0];
    if (grow) k->name = sdsempty();
    k->name = sdscpylen(k->name, key, keylen < MEMPROF_KEY_NAME_MAX ? keylen : MEMPROF_KEY_NAME_MAX);
    k->name_len = keylen;
    k->db = db;
    k->encoding = encoding;
    k->bytes = bytes;
    k->elements = memprofElements(o);
    k->ttl_ms = ttl_ms;
    if (grow)
        topKeysSiftUp(t, t->count - 1);
    else
        topKeysSiftDown(t, 0);
    return memprofTopKeysFloor(t);
}

unsigned long long memprofTopKeysFloor(const memprofTopKeys *t) {
    if (t->capacity == 0) return ULLONG_MAX;
    return t->count < t->capacity ? 0 : t->heap[0].bytes;
}

/* The memory a summary holds, for the child's report of its own cost. */
size_t memprofTopKeysBytes(const memprofTopKeys *t) {
    size_t bytes = zmalloc_size((void *)t) + (t->heap ? zmalloc_size(t->heap) : 0);
    for (size_t i = 0; i < t->count; i++) bytes += sdsAllocSize(t->heap[i].name);
    return bytes;
}

size_t memprofTopKeysCount(const memprofTopKeys *t) {
    return t->count;
}

const memprofTopKey *memprofTopKeysGet(const memprofTopKeys *t, size_t i) {
    return &t->heap[i];
}

/* ------------------------------------------------------------------------
 * Prefixes: Space-Saving
 * --------------------------------------------------------------------- */

typedef struct prefixEntry {
    uint64_t hash;
    uint32_t len;      /* sdslen(name), without the sds type dispatch. */
    uint32_t heap_pos; /* Once the table is full. */
    unsigned long long keys, bytes, error_bytes;
    sds name;
    char head[PREFIX_HEAD]; /* The name's first bytes, zero padded: names this
                             * short are compared here, without the sds. */
} prefixEntry;              /* 64 bytes: one cache line. */

#define PREFIX_EMPTY UINT32_MAX
#define PREFIX_MIN_SLOTS 16

/* The arrays grow with the prefixes seen, up to the capacity: a profile
 * whose names share few prefixes touches a few cache lines, not the whole
 * capacity's (an index of 2 x capacity slots, 64 bytes an entry). */
struct memprofPrefixes {
    size_t capacity, count;
    size_t allocated; /* Entries allocated, at most capacity. */
    prefixEntry *entries;
    uint32_t *heap;  /* Entry indexes, min-heap by bytes, once the table is full. */
    uint32_t *index; /* Open addressing: entry index or PREFIX_EMPTY. */
    size_t index_mask;
};

static void prefixIndexInit(memprofPrefixes *s, size_t slots) {
    s->index = zmalloc(sizeof(uint32_t) * slots);
    memset(s->index, 0xff, sizeof(uint32_t) * slots);
    s->index_mask = slots - 1;
}

memprofPrefixes *memprofPrefixesCreate(size_t capacity) {
    memprofPrefixes *s = zcalloc(sizeof(*s));
    if (capacity == 0) capacity = 1;
    s->capacity = capacity;
    prefixIndexInit(s, PREFIX_MIN_SLOTS);
    return s;
}

void memprofPrefixesFree(memprofPrefixes *s) {
    if (!s) return;
    for (size_t i = 0; i < s->count; i++) sdsfree(s->entries[i].name);
    zfree(s->entries);
    zfree(s->heap);
    zfree(s->index);
    zfree(s);
}

/* Spread the hash's entropy into the low bits the index uses. */
static inline size_t prefixHome(const memprofPrefixes *s, uint64_t hash) {
    hash ^= hash >> 33;
    hash *= 0xff51afd7ed558ccdULL;
    hash ^= hash >> 33;
    return hash & s->index_mask;
}

static void prefixHeapSwap(memprofPrefixes *s, size_t a, size_t b) {
    uint32_t ea = s->heap[a], eb = s->heap[b];
    s->heap[a] = eb;
    s->heap[b] = ea;
    s->entries[eb].heap_pos = a;
    s->entries[ea].heap_pos = b;
}

static void prefixSiftDown(memprofPrefixes *s, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->count && s->entries[s->heap[l]].bytes < s->entries[s->heap[m]].bytes) m = l;
        if (r < s->count && s->entries[s->heap[r]].bytes < s->entries[s->heap[m]].bytes) m = r;
        if (m == i) return;
        prefixHeapSwap(s, i, m);
        i = m;
    }
}

/* Whether an entry holds this prefix. Names of up to PREFIX_HEAD bytes, the
 * usual case, are compared with the entry's head in two overlapping loads. */
static inline int prefixEquals(const prefixEntry *pe, const char *prefix, size_t len, uint64_t hash) {
    if (pe->hash != hash || pe->len != len) return 0;
    if (len <= 8) return 1; /* Such a prefix is its own hash (memprofPrefixesAdd()). */
    if (len > PREFIX_HEAD) return memcmp(pe->name, prefix, len) == 0;
    return memprofSameBytes(pe->head, prefix, len);
}

/* The index slot holding the entry for this prefix, or the empty slot where
 * it would go. */
static inline size_t prefixFind(const memprofPrefixes *s, const char *prefix, size_t len, uint64_t hash) {
    size_t i = prefixHome(s, hash);
    for (;;) {
        uint32_t e = s->index[i];
        if (e == PREFIX_EMPTY) return i;
        if (prefixEquals(&s->entries[e], prefix, len, hash)) return i;
        i = (i + 1) & s->index_mask;
    }
}

/* Remove index slot i, shifting back the entries of the probe run after it
 * so that every lookup still finds them. */
static void prefixIndexDelete(memprofPrefixes *s, size_t i) {
    size_t j = i;
    for (;;) {
        j = (j + 1) & s->index_mask;
        uint32_t e = s->index[j];
        if (e == PREFIX_EMPTY) break;
        size_t home = prefixHome(s, s->entries[e].hash);
        /* Move e into the hole when its home is not in (i, j]. */
        int between = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!between) {
            s->index[i] = e;
            i = j;
        }
    }
    s->index[i] = PREFIX_EMPTY;
}

/* Room for one more entry: the entries array doubles up to the capacity,
 * the index doubles to stay at most half full. */
static void prefixGrow(memprofPrefixes *s) {
    if (s->count == s->allocated) {
        size_t n = s->allocated ? s->allocated * 2 : 8;
        if (n > s->capacity) n = s->capacity;
        s->entries = zrealloc(s->entries, sizeof(prefixEntry) * n);
        s->allocated = n;
    }
    size_t slots = s->index_mask + 1;
    if (2 * (s->count + 1) <= slots) return;
    zfree(s->index);
    prefixIndexInit(s, slots * 2);
    for (size_t e = 0; e < s->count; e++) {
        const prefixEntry *pe = &s->entries[e];
        s->index[prefixFind(s, pe->name, pe->len, pe->hash)] = e;
    }
}

static void prefixSetName(prefixEntry *pe, const char *prefix, size_t len, uint64_t hash) {
    pe->hash = hash;
    pe->len = len;
    memset(pe->head, 0, sizeof(pe->head));
    memcpy(pe->head, prefix, len < PREFIX_HEAD ? len : PREFIX_HEAD);
}

/* A prefix not in the table, which has room: a new entry. */
static __attribute__((noinline)) void prefixInsert(memprofPrefixes *s, const char *prefix, size_t len, uint64_t hash, unsigned long long keys, unsigned long long bytes) {
    prefixGrow(s);
    size_t slot = prefixFind(s, prefix, len, hash); /* The index may have grown. */
    uint32_t e = s->count++;
    prefixEntry *pe = &s->entries[e];
    prefixSetName(pe, prefix, len, hash);
    pe->name = sdsnewlen(prefix, len);
    pe->keys = keys;
    pe->bytes = bytes;
    pe->error_bytes = 0;
    pe->heap_pos = e;
    s->index[slot] = e;
    /* The table is full from now on: arrange the heap once. */
    if (s->count == s->capacity) {
        s->heap = zmalloc(sizeof(uint32_t) * s->capacity);
        for (size_t i = 0; i < s->count; i++) s->heap[i] = i;
        for (size_t i = s->count / 2; i-- > 0;) prefixSiftDown(s, i);
    }
}

/* A prefix not in the full table: the lightest entry gives its place and
 * its figures. */
static __attribute__((noinline)) void prefixEvict(memprofPrefixes *s, const char *prefix, size_t len, uint64_t hash, unsigned long long keys, unsigned long long bytes) {
    uint32_t e = s->heap[0];
    prefixEntry *pe = &s->entries[e];
    prefixIndexDelete(s, prefixFind(s, pe->name, pe->len, pe->hash));
    prefixSetName(pe, prefix, len, hash);
    pe->name = sdscpylen(pe->name, prefix, len);
    pe->error_bytes = pe->bytes;
    pe->keys += keys;
    pe->bytes += bytes;
    s->index[prefixFind(s, prefix, len, hash)] = e;
    prefixSiftDown(s, 0);
}

/* Any addition: to the entry of the prefix, or to a new one. */
static __attribute__((noinline)) void prefixAdd(memprofPrefixes *s, const char *prefix, size_t len, uint64_t hash, unsigned long long keys, unsigned long long bytes) {
    uint32_t e = s->index[prefixFind(s, prefix, len, hash)];
    if (e != PREFIX_EMPTY) {
        prefixEntry *pe = &s->entries[e];
        pe->keys += keys;
        pe->bytes += bytes;
        /* Only a full table keeps its heap. Heavy prefixes sink to the
         * leaves, where there is nothing to do. */
        if (s->heap && 2 * (size_t)pe->heap_pos + 1 < s->count) prefixSiftDown(s, pe->heap_pos);
        return;
    }
    if (s->count < s->capacity)
        prefixInsert(s, prefix, len, hash, keys, bytes);
    else
        prefixEvict(s, prefix, len, hash, keys, bytes);
}

/* The caller's hash of a prefix of up to 8 bytes is the prefix itself: its
 * bytes as a word, zero padded (memprofile_child.c), so that an equal hash
 * and length are an equal prefix. Such a prefix found in a table without a
 * heap, the usual addition, is added here without a call; anything else
 * goes on to prefixAdd(). */
void memprofPrefixesAdd(memprofPrefixes *s, const char *prefix, size_t len, uint64_t hash, unsigned long long keys, unsigned long long bytes) {
    if (len <= 8 && !s->heap) {
        for (size_t i = prefixHome(s, hash);; i = (i + 1) & s->index_mask) {
            uint32_t e = s->index[i];
            if (e == PREFIX_EMPTY) break;
            prefixEntry *pe = &s->entries[e];
            if (pe->hash == hash && pe->len == len) {
                pe->keys += keys;
                pe->bytes += bytes;
                return;
            }
        }
    }
    prefixAdd(s, prefix, len, hash, keys, bytes);
}

size_t memprofPrefixesBytes(const memprofPrefixes *s) {
    size_t bytes = zmalloc_size((void *)s) + zmalloc_size(s->index);
    if (s->entries) bytes += zmalloc_size(s->entries);
    if (s->heap) bytes += zmalloc_size(s->heap);
    for (size_t i = 0; i < s->count; i++) bytes += sdsAllocSize(s->entries[i].name);
    return bytes;
}

size_t memprofPrefixesCount(const memprofPrefixes *s) {
    return s->count;
}

void memprofPrefixesGet(const memprofPrefixes *s, size_t i, const char **prefix, size_t *len, unsigned long long *keys, unsigned long long *bytes, unsigned long long *error_bytes) {
    const prefixEntry *pe = &s->entries[i];
    *prefix = pe->name;
    *len = pe->len;
    *keys = pe->keys;
    *bytes = pe->bytes;
    *error_bytes = pe->error_bytes;
}
