/*
 * Copyright (c) Valkey Contributors
 * All rights reserved.
 * SPDX-License-Identifier: BSD-3-Clause
 */

/* Exact sizes: the allocator's usable size of every allocation a value owns.
 *
 * Asking the allocator for a pointer's size costs a lookup in its page map,
 * a cache miss per allocation on a large heap. Where the size is known
 * otherwise, it is computed instead: from an sds header that records its
 * allocation, or, with jemalloc, as the size class of the request the
 * allocation was made with (a table of je_nallocx(), see
 * memprofile_internal.h, where the per-key part of the walk is inline, for
 * strings held in their header). With libc
 * malloc no request gives the size: glibc hands out a chunk of the request
 * plus 8 bytes rounded up to 16, but the whole of a free chunk when the
 * rest would be too small to split off (a 64-byte request may get 72 or 88
 * usable bytes), and big requests are mapped pages. There every allocation
 * is sized by the allocator. The tests check every encoding against the
 * allocator's own accounting. */

#include "memprofile_internal.h"
#include "module.h"
#if MEMPROF_BASE_9
#include "vset.h"
#endif

#if defined(USE_JEMALLOC)
uint32_t memprofClassTable[MEMPROF_CLASS_TABLE_MAX / 8 + 1];

void memprofSizeInit(void) {
    if (memprofClassTable[0]) return;
    for (size_t i = 0; i <= MEMPROF_CLASS_TABLE_MAX / 8; i++) memprofClassTable[i] = je_nallocx(i ? i * 8 : 1, 0);
}
#else
void memprofSizeInit(void) {
}
#endif

/* An element's sds: set members, skiplist elements, consumer names. Type 5
 * headers do not record the allocation; elements are made by sdsnewlen()
 * with a request of header + length + terminator and never shortened in
 * place, so the request gives the size. */
static size_t memprofSdsBytes(sds s) {
    if (sdsType(s) == SDS_TYPE_5) return memprofClassSize(sdsAllocPtr(s), sdslen(s) + 2);
    return sdsAllocSize(s);
}

/* A string value's sds. A type 5 value may have been shortened in place
 * (a module's StringTruncate keeps the allocation of a type 5 sds), so its
 * length says nothing of its allocation: ask the allocator. */
static size_t memprofStringValueBytes(sds s) {
    if (sdsType(s) == SDS_TYPE_5) return zmalloc_size(sdsAllocPtr(s));
    return sdsAllocSize(s);
}

static size_t memprofZslNodeBytes(zskiplistNode *zn) {
    /* The height of a node is kept in its level 0 span (see server.h). */
    size_t height = zn->level[0].span;
#if MEMPROF_BASE_9
    /* One allocation: the node, its levels, a byte giving the element's sds
     * header size, and the element (zslCreateNode()). */
    sds ele = zslGetNodeElement(zn);
    size_t request = sizeof(*zn) + (height - 1) * sizeof(struct zskiplistLevel) + 1 + sdsHdrSize(sdsType(ele)) +
                     sdslen(ele) + 1;
    return memprofClassSize(zn, request);
#else
    size_t request = sizeof(*zn) + height * sizeof(struct zskiplistLevel);
    return memprofClassSize(zn, request) + memprofSdsBytes(zn->ele);
#endif
}

/* A hashtable's entries, each sized by 'entryBytes' (NULL: the entries are
 * sized apart, or own nothing). */
typedef size_t (*memprofEntryBytesFn)(void *entry);

/* Every entry, those a hash's fields whose TTL has passed included: they
 * hold memory until reclaimed, and 9.1's hash table type hides them from
 * iteration (and scans) unless told not to. */
static inline size_t memprofEntriesBytes(hashtable *ht, memprofEntryBytesFn entryBytes) {
    size_t bytes = 0;
    hashtableIterator it;
    void *next;
    hashtableInitIterator(&it, ht, HASHTABLE_ITER_SKIP_VALIDATION);
    while (hashtableNext(&it, &next)) bytes += entryBytes(next);
    hashtableCleanupIterator(&it);
    return bytes;
}

#if defined(USE_JEMALLOC)
/* The table struct (with its metadata), the bucket tables and the chained
 * buckets, and the entries. Bucket tables are power-of-two multiples of the
 * bucket size, and a chained bucket is one bucket: all are jemalloc size
 * classes, so the count times the size is exact. Not upstream's
 * hashtableMemUsage(): it counts the struct by its request (sizeof +
 * metadata), while the allocator hands out the size class above. */
static inline size_t memprofHashtableBytes(hashtable *ht, memprofEntryBytesFn entryBytes) {
    size_t buckets = hashtableBuckets(ht) + hashtableChainedBuckets(ht, 0) + hashtableChainedBuckets(ht, 1);
    size_t bytes = zmalloc_size(ht) + buckets * HASHTABLE_BUCKET_SIZE;
    if (entryBytes) bytes += memprofEntriesBytes(ht, entryBytes);
    return bytes;
}
#else
/* With libc malloc the bucket tables and the chained buckets are sized by
 * the allocator, each one: a count times the bucket size misses glibc's 8
 * bytes or more an allocation. hashtable.h gives no pointer to them but to
 * a defrag callback: hashtableDefragTables() passes the struct and the
 * tables, a scan (hashtableScanDefrag()) the chained buckets of the indexes
 * it visits, and both keep an allocation where the callback returns NULL.
 * A full scan of a table that does not change visits every chained bucket
 * once, rehash or not. The entries are walked apart: 9.1's scans skip the
 * fields whose TTL has passed. The callback takes no context: the walk is
 * single-threaded (a child's), the sum is a file static. */
static size_t memprofAllocationSum;

static void *memprofAddAllocation(void *ptr) {
    memprofAllocationSum += zmalloc_size(ptr);
    return NULL; /* Not moved. */
}

static void memprofSkipEntry(void *privdata, void *entry) {
    UNUSED(privdata);
    UNUSED(entry);
}

static size_t memprofHashtableBytes(hashtable *ht, memprofEntryBytesFn entryBytes) {
    memprofAllocationSum = 0;
    hashtableDefragTables(ht, memprofAddAllocation);
    size_t cursor = 0;
    do {
        cursor = hashtableScanDefrag(ht, cursor, memprofSkipEntry, NULL, memprofAddAllocation, 0);
    } while (cursor != 0);
    size_t bytes = memprofAllocationSum;
    if (entryBytes) bytes += memprofEntriesBytes(ht, entryBytes);
    return bytes;
}
#endif

/* Structs of a fixed size (quicklist nodes, the zset and its skiplist,
 * streams, their groups, consumers and NACKs) are allocated with a request
 * of that size (and moved by defrag within their class): their class, not a
 * lookup by pointer. */
static size_t memprofQuicklistBytes(quicklist *ql) {
    size_t bytes = zmalloc_size(ql);
    for (quicklistNode *node = ql->head; node; node = node->next) {
        /* A compressed node's entry is its quicklistLZF allocation. */
        bytes += memprofClassSize(node, sizeof(quicklistNode)) + zmalloc_size(node->entry);
    }
    return bytes;
}

/* The entries of the hashtable encodings: a set member is an sds, a hash
 * entry one allocation holding the field (and the value, or a pointer to
 * it), a zset entry the skiplist node. */
static size_t memprofSetMemberBytes(void *entry) {
    return memprofSdsBytes(entry);
}

static size_t memprofHashEntryBytes(void *entry) {
    return entryMemUsage(entry);
}

#if !defined(USE_JEMALLOC)
static size_t memprofZsetNodeBytes(void *entry) {
    return memprofZslNodeBytes(entry);
}
#endif

/* The zset's structures and its nodes, each in the hashtable and in the
 * skiplist: counted once, by the skiplist with jemalloc (whose hashtable
 * sizing needs no walk), by the hashtable's scan with libc malloc (which
 * walks it anyway). */
static size_t memprofZsetBytes(zset *zs) {
    size_t bytes = memprofClassSize(zs, sizeof(zset));
#if MEMPROF_BASE_9
    /* The header node is inside the zskiplist, with every level (zslCreate()). */
    bytes += memprofClassSize(zs->zsl, sizeof(zskiplist) + (ZSKIPLIST_MAXLEVEL - 1) * sizeof(struct zskiplistLevel));
#else
    bytes += memprofClassSize(zs->zsl, sizeof(zskiplist)) +
             memprofClassSize(zs->zsl->header, sizeof(zskiplistNode) + ZSKIPLIST_MAXLEVEL * sizeof(struct zskiplistLevel));
#endif
#if defined(USE_JEMALLOC)
    bytes += memprofHashtableBytes(zs->ht, NULL);
    for (zskiplistNode *zn = zslGetTail(zs->zsl); zn; zn = zn->backward) bytes += memprofZslNodeBytes(zn);
#else
    bytes += memprofHashtableBytes(zs->ht, memprofZsetNodeBytes);
#endif
    return bytes;
}

static size_t memprofStreamBytes(stream *s) {
    size_t bytes = memprofClassSize(s, sizeof(stream)) + raxAllocSize(s->rax);
    raxIterator ri;
    raxStart(&ri, s->rax);
    raxSeek(&ri, "^", NULL, 0);
    while (raxNext(&ri)) bytes += zmalloc_size(ri.data);
    raxStop(&ri);
    if (!s->cgroups) return bytes;

    bytes += raxAllocSize(s->cgroups);
    raxStart(&ri, s->cgroups);
    raxSeek(&ri, "^", NULL, 0);
    while (raxNext(&ri)) {
        streamCG *cg = ri.data;
        bytes += memprofClassSize(cg, sizeof(streamCG)) + raxAllocSize(cg->pel) + raxAllocSize(cg->consumers);
        raxIterator it;
        /* NACKs are shared by the group PEL and the consumer PELs: count
         * them once, here. */
        raxStart(&it, cg->pel);
        raxSeek(&it, "^", NULL, 0);
        while (raxNext(&it)) bytes += memprofClassSize(it.data, sizeof(streamNACK));
        raxStop(&it);
        raxStart(&it, cg->consumers);
        raxSeek(&it, "^", NULL, 0);
        while (raxNext(&it)) {
            streamConsumer *c = it.data;
            bytes += memprofClassSize(c, sizeof(streamConsumer)) + memprofSdsBytes(c->name) + raxAllocSize(c->pel);
        }
        raxStop(&it);
    }
    raxStop(&ri);
    return bytes;
}

/* What a value owns past its header, its elements included. Module values
 * report through mem_usage. */
static size_t memprofValueBytes(robj *o, const char *key, int dbid) {
    size_t bytes = 0;
    if (o->type == OBJ_MODULE) {
        robj keyobj;
        initStaticStringObject(keyobj, (sds)key);
        return bytes + zmalloc_size(objectGetVal(o)) + moduleGetMemUsage(&keyobj, o, 0, dbid);
    }
    switch (o->encoding) {
    case OBJ_ENCODING_RAW: return bytes + memprofStringValueBytes(objectGetVal(o));
    case OBJ_ENCODING_LISTPACK:
    case OBJ_ENCODING_INTSET: return bytes + zmalloc_size(objectGetVal(o));
    case OBJ_ENCODING_QUICKLIST: return bytes + memprofQuicklistBytes(objectGetVal(o));
    case OBJ_ENCODING_HASHTABLE:
        /* Apart, so that each call is inlined with its entry function. */
        if (o->type == OBJ_SET) return bytes + memprofHashtableBytes(objectGetVal(o), memprofSetMemberBytes);
        return bytes + memprofHashtableBytes(objectGetVal(o), memprofHashEntryBytes);
    case OBJ_ENCODING_SKIPLIST: return bytes + memprofZsetBytes(objectGetVal(o));
    case OBJ_ENCODING_STREAM: return bytes + memprofStreamBytes(objectGetVal(o));
    default: return bytes;
    }
}

int memprofEncodingOf(robj *o) {
    switch (o->type) {
    case OBJ_STRING:
        return o->encoding == OBJ_ENCODING_INT      ? MEMPROF_ENC_STRING_INT
               : o->encoding == OBJ_ENCODING_EMBSTR ? MEMPROF_ENC_STRING_EMBSTR
                                                    : MEMPROF_ENC_STRING_RAW;
    case OBJ_LIST: return o->encoding == OBJ_ENCODING_QUICKLIST ? MEMPROF_ENC_LIST_QUICKLIST : MEMPROF_ENC_LIST_LISTPACK;
    case OBJ_SET:
        return o->encoding == OBJ_ENCODING_INTSET     ? MEMPROF_ENC_SET_INTSET
               : o->encoding == OBJ_ENCODING_LISTPACK ? MEMPROF_ENC_SET_LISTPACK
                                                      : MEMPROF_ENC_SET_HASHTABLE;
    case OBJ_ZSET: return o->encoding == OBJ_ENCODING_SKIPLIST ? MEMPROF_ENC_ZSET_SKIPLIST : MEMPROF_ENC_ZSET_LISTPACK;
    case OBJ_HASH: return o->encoding == OBJ_ENCODING_HASHTABLE ? MEMPROF_ENC_HASH_HASHTABLE : MEMPROF_ENC_HASH_LISTPACK;
    case OBJ_STREAM: return MEMPROF_ENC_STREAM_STREAM;
    default: return MEMPROF_ENC_MODULE;
    }
}

/* A bucket table of a volatile set, which owns nothing but its buckets. */
static size_t memprofBucketTableBytes(hashtable *ht) {
    return memprofHashtableBytes(ht, NULL);
}

/* A hash's volatile set (its fields with a TTL, 9.1), kept in its
 * hashtable's metadata: every vector, rax and bucket table it owns
 * (vsetAllocSize(), the hook in vset.c). 0 for a hash without one. */
static size_t memprofVolatileSetBytes(robj *o) {
#if MEMPROF_BASE_9
    vset *set = (vset *)hashtableMetadata(objectGetVal(o));
    if (!vsetIsValid(set)) return 0;
    return vsetAllocSize(set, memprofBucketTableBytes);
#else
    UNUSED(o);
    UNUSED(memprofBucketTableBytes);
    return 0;
#endif
}

/* What a key owns past its header (memprofKeyBytes()): its value, every
 * element and, for a hash, its volatile set (also added to *hash_meta). */
size_t memprofValueBytesSlow(robj *o, const char *key, int dbid, unsigned long long *hash_meta) {
    size_t bytes = memprofValueBytes(o, key, dbid);
    if (o->type == OBJ_HASH && o->encoding == OBJ_ENCODING_HASHTABLE) {
        size_t meta = memprofVolatileSetBytes(o);
        bytes += meta;
        *hash_meta += meta;
    }
    return bytes;
}

/* The element count a report shows: a collection's length, a string's
 * length, a stream's entries. O(1) for every encoding. */
unsigned long long memprofElements(robj *o) {
    switch (o->type) {
    case OBJ_STRING: return stringObjectLen(o);
    case OBJ_LIST: return listTypeLength(o);
    case OBJ_SET: return setTypeSize(o);
    case OBJ_ZSET: return zsetLength(o);
    case OBJ_HASH: return hashTypeLength(o);
    case OBJ_STREAM: return ((stream *)objectGetVal(o))->length;
    default: return 0;
    }
}
