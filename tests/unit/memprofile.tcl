# BGSAVE STAT_MEMORY: command surface and exactness against the allocator.

source tests/helpers/memprofile-util.tcl

# activerehashing no: a keyspace rehash moves on only when a command touches
# the keyspace, so what MEMORY STATS shows right before BGSAVE STAT_MEMORY is
# what the child measures at the fork, and a rehash left pending by a test
# stays pending.
set mp_overrides [concat [dict remove $::mp_exact_free_overrides lazyfree-lazy-user-flush lazyfree-lazy-user-del] {
    enable-module-command yes
}]

# The allocator's accounting at one instant: used_memory (MEMORY STATS
# total.allocated) and the keyspace tables (overhead.db.hashtable.lut, with
# the allocator's slack on them: mp_allocator_view), read with nothing
# written in between.
proc mp_alloc_snapshot {} {
    mp_allocator_view
}

# Compare a profile's 'bytes' for 'nkeys' keys with the allocator's truth:
# the growth of used_memory from snapshot 'before' to snapshot 'after' minus
# the growth of the keyspace tables, which the profile counts apart. The
# profile must be exact, on jemalloc and on libc malloc alike (each
# allocation is sized by the allocator there): the bound (a byte per key,
# 256 bytes in all) is far below any per-key or per-element sizing error,
# which is at least 8 bytes per allocation missed or miscounted.
proc mp_assert_exact {what nkeys bytes after before} {
    lassign $after used1 lut1
    lassign $before used0 lut0
    set truth [expr {($used1 - $used0) - ($lut1 - $lut0)}]
    set bound [expr {$nkeys + 256}]
    if {$::verbose} { puts "$what: profile $bytes allocator $truth difference [expr {$bytes - $truth}] (bound $bound)" }
    assert_range $bytes [expr {$truth - $bound}] [expr {$truth + $bound}] \
        "$what: profile $bytes bytes, allocator $truth bytes, $nkeys keys; MEMORY STATS changes: [mp_stats_changes $after $before]"
}

# Sum of one field over the db.<n> entries of a MEMORY STATS reply.
proc mp_stats_db_sum {stats field} {
    set sum 0
    dict for {k v} $stats {
        if {[regexp {^db\.[0-9]+$} $k]} { incr sum [dict get $v $field] }
    }
    return $sum
}

# BGSAVE STAT_MEMORY right after MEMORY STATS, nothing written in between;
# returns the MEMORY STATS reply.
proc mp_profile_after_memory_stats {} {
    set stats [r memory stats]
    mp_profile
    return $stats
}

# The keyspace and expires figures against MEMORY STATS of the same instant,
# which computes them itself: overhead.hashtable.main is the keyspace tables
# plus a robj (16 bytes) per key, which the profile counts in the user data
# (the whole object header), and overhead.hashtable.expires the expires
# tables. Catches a kvstore figure that misses or double counts a table (a
# rehash target, a cluster slot's table, a db) or counts dbs MEMORY STATS
# leaves out.
proc mp_assert_keyspace_figures {stats} {
    set main [mp_stats_db_sum $stats overhead.hashtable.main]
    set expires [mp_stats_db_sum $stats overhead.hashtable.expires]
    set keys [mp_info rdb_stats_keys]
    assert_equal $main [expr {[mp_info mem_um_kvstore] + $keys * 16}] \
        "MEMORY STATS overhead.hashtable.main vs mem_um_kvstore + $keys * 16"
    assert_equal $expires [mp_info mem_kv_expiration] "MEMORY STATS overhead.hashtable.expires vs mem_kv_expiration"
}

# One exactness case: flush, run 'script' in the caller's scope (it creates
# keys on the connection $c) on a connection of its own, closed before
# measuring; the
# key 'sample' must have 'encoding'; the profile must count 'nkeys' keys in
# 'slot' and nothing else, and their bytes must equal the allocator's.
proc mp_exact_case {what slot encoding nkeys sample script} {
    r flushall sync
    r config set list-max-listpack-size -2
    r config set list-compress-depth 0
    upvar 1 c c
    set c [valkey_client]
    uplevel 1 $script
    $c close
    mp_wait_single_client
    assert_equal $encoding [r object encoding $sample]

    mp_profile
    set after [mp_alloc_snapshot]
    set keys [mp_info rdb_stats_${slot}_keys]
    set bytes [mp_info rdb_stats_${slot}_bytes]
    set total_keys [mp_info rdb_stats_keys]
    set total_bytes [mp_info rdb_stats_bytes]
    r flushall sync
    set before [mp_alloc_snapshot]

    assert_equal $nkeys $keys
    assert_equal $nkeys $total_keys
    assert_equal $bytes $total_bytes
    assert_equal ok [mp_info rdb_stats_status]
    mp_assert_exact $what $nkeys $bytes $after $before
}

# A key name of exactly 'len' bytes, unique for 'i'.
proc mp_key {i len} {
    set k "k:$i:"
    append k [string repeat x [expr {$len - [string length $k]}]]
}

# used_memory counts the clients' reply buffers, which the clients cron
# resizes by powers of two from time to time: the byte-exact measures turn
# that off, so that it cannot shift used_memory between two measures.
start_server [list tags {"memprofile external:skip"} overrides $mp_overrides] {
    r debug replybuffer resizing 0

    test {BGSAVE STAT_MEMORY: bad forms are syntax errors} {
        foreach args {
            {stat_memory schedule} {schedule stat_memory} {stat_memory cancel}
            {cancel stat_memory} {stat_memory stat_memory} {stat_memoryx} {stat-memory}
            {foo} {stat_memory foo} {schedule foo}
        } {
            assert_error {*syntax error*} [list r bgsave {*}$args]
        }
        # Nothing was started by any of them.
        assert_equal 0 [s rdb_bgsave_in_progress]
        assert_equal none [mp_info rdb_stats_status]
    }

    test {BGSAVE STAT_MEMORY is in COMMAND DOCS with its history} {
        set docs [r command docs bgsave]
        assert_match {*STAT_MEMORY*} $docs
        assert_match {*Added the `STAT_MEMORY` option*} $docs
    }

    test {INFO rdb_stats: every field present and zero before the first profile} {
        set d [mp_info_dict]
        assert_equal none [dict get $d rdb_stats_status]
        set expected {rdb_stats_status rdb_stats_in_progress rdb_stats_last_time rdb_stats_duration_ms
            rdb_stats_used_memory rdb_stats_keys rdb_stats_bytes}
        foreach t {string list set zset hash stream module} {
            lappend expected rdb_stats_${t}_keys rdb_stats_${t}_bytes
        }
        foreach e {string_int string_embstr string_raw list_listpack list_quicklist set_intset set_listpack
                   set_hashtable zset_listpack zset_skiplist hash_listpack hash_hashtable stream_stream} {
            lappend expected rdb_stats_${e}_keys rdb_stats_${e}_bytes
        }
        lappend expected mem_kv_user_data mem_kv_expiration mem_kv_hash_metadata mem_um_kvstore \
            mem_um_clients_io mem_sys_aof_buffer mem_sys_repl_buffer mem_sys_repl_backlog mem_sys_repl_pending \
            mem_sys_slot_import mem_sys_slot_export
        # The TTL horizon is always present; per-db fields only for dbs with keys.
        lappend expected rdb_stats_source rdb_stats_progress_keys rdb_stats_importing_keys rdb_stats_importing_bytes
        # The RSS waterfall at the fork.
        lappend expected mem_rss mem_startup mem_other_allocations mem_allocator_frag mem_allocator_dirty \
            mem_allocator_muzzy mem_allocator_retained mem_rss_other
        foreach b {none expired 1h 1d 7d later} {
            lappend expected rdb_stats_ttl_${b}_keys rdb_stats_ttl_${b}_bytes
        }
        assert_equal [lsort $expected] [lsort [dict keys $d]]
        assert_equal none [dict get $d rdb_stats_source]
        dict for {k v} $d {
            if {$k ni {rdb_stats_status rdb_stats_source}} { assert_equal 0 $v "$k" }
        }
    }

    test {INFO rdb_stats is shown by INFO all and everything, not by plain INFO} {
        assert_no_match {*rdb_stats_status*} [r info]
        assert_no_match {*rdb_stats_status*} [r info default]
        assert_match {*# Rdb_stats*rdb_stats_status:*} [r info all]
        assert_match {*# Rdb_stats*rdb_stats_status:*} [r info everything]
        assert_match {*# Rdb_stats*} [r info RDB_STATS]
        assert_match {*# Keyspace*# Rdb_stats*} [r info rdb_stats keyspace]
    }

    # Each case: a slot, the encoding OBJECT ENCODING must report, the number
    # of keys, and a script that creates them on the connection $c.
    set cases {
        string_int int 3000 {
            for {set i 0} {$i < 3000} {incr i} { $c set k:$i [expr {1000000 + $i}] }
        }
        string_embstr embstr 3000 {
            for {set i 0} {$i < 3000} {incr i} { $c set k:$i "value-$i" }
        }
        string_raw raw 1000 {
            for {set i 0} {$i < 1000} {incr i} { $c set k:$i [string repeat x [expr {[mp_raw_min] + $i % 300}]] }
        }
        list_listpack listpack 1000 {
            for {set i 0} {$i < 1000} {incr i} { $c rpush k:$i a b c [expr {$i * 7}] "element-$i" }
        }
        list_quicklist quicklist 40 {
            $c config set list-max-listpack-size 16
            $c config set list-compress-depth 1
            for {set i 0} {$i < 40} {incr i} {
                set elems {}
                for {set j 0} {$j < 200} {incr j} { lappend elems "compressible-[string repeat a 40]-$j" }
                $c rpush k:$i {*}$elems
                # One plain node: an element larger than the node limit.
                $c rpush k:$i [string repeat b 10000]
            }
        }
        set_intset intset 1000 {
            for {set i 0} {$i < 1000} {incr i} { $c sadd k:$i 1 2 3 [expr {$i * 1000}] 70000 }
        }
        set_listpack listpack 1000 {
            for {set i 0} {$i < 1000} {incr i} { $c sadd k:$i a b c "m-$i" }
        }
        set_hashtable hashtable 30 {
            for {set i 0} {$i < 30} {incr i} {
                set elems {}
                for {set j 0} {$j < 300} {incr j} { lappend elems "member-$i-$j-[string repeat m [expr {$j % 50}]]" }
                $c sadd k:$i {*}$elems
            }
        }
        zset_listpack listpack 1000 {
            for {set i 0} {$i < 1000} {incr i} { $c zadd k:$i 1 a 2 b 3.5 "z-$i" }
        }
        zset_skiplist skiplist 30 {
            for {set i 0} {$i < 30} {incr i} {
                set args {}
                for {set j 0} {$j < 300} {incr j} { lappend args [expr {$j * 1.5}] "zm-$i-$j" }
                $c zadd k:$i {*}$args
            }
        }
        hash_listpack listpack 1000 {
            for {set i 0} {$i < 1000} {incr i} { $c hset k:$i f1 v1 f2 [expr {$i * 3}] "field-$i" "value-$i" }
        }
        hash_hashtable hashtable 30 {
            for {set i 0} {$i < 30} {incr i} {
                set args {}
                for {set j 0} {$j < 300} {incr j} {
                    # Short values are embedded in the entry, long ones are not.
                    lappend args "f-$j" [string repeat v [expr {($j % 3 == 0) ? 200 : 10}]]
                }
                $c hset k:$i {*}$args
            }
        }
        stream_stream stream 50 {
            for {set i 0} {$i < 50} {incr i} {
                for {set j 0} {$j < 200} {incr j} { $c xadd k:$i * field $j other "payload-$j" }
                $c xgroup create k:$i g1 0
                $c xgroup create k:$i g2 0
                $c xreadgroup group g1 alice count 50 streams k:$i >
                $c xreadgroup group g1 bob count 20 streams k:$i >
                $c xreadgroup group g2 carol count 10 streams k:$i >
            }
        }
    }

    foreach {slot encoding nkeys script} $cases {
        test "Profile of $slot: $nkeys keys, bytes equal the allocator's accounting" {
            mp_exact_case $slot $slot $encoding $nkeys k:0 $script
        }
    }

    test {Exact after DEBUG RELOAD: objects made by the RDB loader, with and without TTLs} {
        r flushall sync
        r config set list-max-listpack-size -2
        r config set list-compress-depth 0
        set c [valkey_client]
        for {set i 0} {$i < 300} {incr i} {
            $c set int:$i [expr {$i * 1000}]
            $c set emb:$i "v$i"
            $c set raw:$i [string repeat r [expr {50 + $i}]]
            $c rpush list:$i a b $i
            $c sadd iset:$i 1 2 $i
            $c hset hash:$i f v g $i
            $c zadd zset:$i 1 a 2 $i
            if {$i % 3 == 0} {
                foreach k [list int:$i emb:$i raw:$i list:$i iset:$i hash:$i zset:$i] { $c expire $k 100000 }
            }
        }
        for {set i 0} {$i < 5} {incr i} {
            set members {}
            set scored {}
            for {set j 0} {$j < 200} {incr j} {
                lappend members m$i-$j
                lappend scored $j e$i-$j
            }
            $c sadd bigset:$i {*}$members
            $c zadd bigzset:$i {*}$scored
            $c rpush biglist:$i {*}[lrepeat 2000 elem]
            $c xadd stream:$i * a 1 b 2
            $c expire bigset:$i 100000
        }
        $c close
        mp_wait_single_client
        r debug reload
        mp_profile
        set after [mp_alloc_snapshot]
        set bytes [mp_info rdb_stats_bytes]
        assert_equal 2120 [mp_info rdb_stats_keys]
        r flushall sync
        set before [mp_alloc_snapshot]
        mp_assert_exact "after reload" 2120 $bytes $after $before
    }

    # Long key names. The key is embedded in the object header as an sds:
    # of type 8 (3-byte header) from 32 bytes on, and from 128 bytes on the
    # object also reserves an expire slot (createObjectWithKeyAndExpire).
    # Catches a header size computed with the wrong sds header type or
    # without the reserved expire slot: at least 8 bytes a key, a size class
    # step often much more.
    set long_key_cases {
        string_int int {32 127} {
            for {set i 0} {$i < 1000} {incr i} { $c set [mp_key $i [expr {32 + $i % 96}]] [expr {1000000 + $i}] }
        }
        string_int int {128 383} {
            for {set i 0} {$i < 1000} {incr i} { $c set [mp_key $i [expr {128 + $i % 256}]] [expr {1000000 + $i}] }
        }
        string_embstr embstr {32 38} {
            # The value stays embedded while the whole object is <= 64 bytes.
            for {set i 0} {$i < 1000} {incr i} {
                $c set [mp_key $i [expr {32 + $i % 7}]] [string range abc 0 [expr {$i % 3}]]
            }
        }
        string_raw raw {32 127} {
            for {set i 0} {$i < 1000} {incr i} {
                $c set [mp_key $i [expr {32 + $i % 96}]] [string repeat r [expr {[mp_raw_min] + $i % 300}]]
            }
        }
        string_raw raw {128 383} {
            for {set i 0} {$i < 1000} {incr i} {
                $c set [mp_key $i [expr {128 + $i % 256}]] [string repeat r [expr {[mp_raw_min] + $i % 300}]]
            }
        }
        hash_listpack listpack {32 127} {
            for {set i 0} {$i < 1000} {incr i} { $c hset [mp_key $i [expr {32 + $i % 96}]] f v g $i }
        }
        hash_listpack listpack {128 383} {
            for {set i 0} {$i < 1000} {incr i} { $c hset [mp_key $i [expr {128 + $i % 256}]] f v g $i }
        }
        zset_skiplist skiplist {128 383} {
            for {set i 0} {$i < 30} {incr i} {
                set args {}
                for {set j 0} {$j < 200} {incr j} { lappend args $j "zm-$i-$j" }
                $c zadd [mp_key $i [expr {128 + $i * 8}]] {*}$args
            }
        }
    }
    foreach {slot encoding lens script} $long_key_cases {
        lassign $lens minlen maxlen
        set nkeys [expr {$slot eq "zset_skiplist" ? 30 : 1000}]
        test "Profile of $slot under keys of $minlen to $maxlen bytes: bytes equal the allocator's accounting" {
            mp_exact_case "$slot, keys of $minlen-$maxlen bytes" $slot $encoding $nkeys [mp_key 0 $minlen] $script
        }
    }

    # Short values under long keys: the value is embedded only when the whole
    # object is <= 64 bytes (8.1; 128 bytes on 9.1), so under a long key even
    # a 1-byte value is RAW, an sds of its own, of type 5 below 32 bytes (a
    # header that does not record the allocation) and of type 8 above.
    # Catches a RAW value sized as if embedded, or a type 5 sds sized from a
    # wrong header.
    foreach {lens vlens} {{42 127} {1 31} {128 383} {1 31} {42 127} {32 40}} {
        lassign $lens minlen maxlen
        # On 9.1 a key of 42 bytes still leaves room for a short value.
        if {[mp_base9] && $minlen == 42} { set minlen 120 }
        lassign $vlens minv maxv
        test "Profile of short RAW values ($minv to $maxv bytes) under keys of $minlen to $maxlen bytes" {
            set span [expr {$maxlen - $minlen + 1}]
            set vspan [expr {$maxv - $minv + 1}]
            mp_exact_case "raw values of $minv-$maxv bytes, keys of $minlen-$maxlen bytes" string_raw raw 1000 \
                [mp_key 0 $minlen] {
                for {set i 0} {$i < 1000} {incr i} {
                    $c set [mp_key $i [expr {$minlen + $i % $span}]] [string repeat s [expr {$minv + $i % $vspan}]]
                }
            }
        }
    }

    test {Profile of long keys given a TTL after their creation: bytes equal the allocator's accounting} {
        # EXPIRE on a key whose object has no expire slot reallocates the
        # object with one. Catches a header sized without it, or from the
        # request of the original allocation.
        mp_exact_case "TTLs on keys of 1-383 bytes" string_raw raw 1000 [mp_key 0 32] {
            for {set i 0} {$i < 1000} {incr i} {
                set k [mp_key $i [expr {[string length "k:$i:"] + ($i * 7) % 380}]]
                if {$i == 0} { set k [mp_key 0 32] }
                $c set $k [string repeat t [expr {[mp_raw_min] - 10 + $i % 100}]]
                $c expire $k 100000
            }
        }
    }

    test {Profile of short RAW strings shortened in place by a module: bytes equal the allocator's accounting} {
        # ValkeyModule_StringTruncate makes the value RAW (a type 5 sds of
        # 30 bytes, a 32-byte allocation) and shortens it in place to 5
        # bytes: sdssubstr() never reallocates a type 5 sds, whose header
        # records no allocation size. Catches a type 5 value sized from its
        # length (8 bytes instead of 32, 24 bytes a key).
        set module [file normalize tests/modules/memprofstr.so]
        if {![file exists $module]} {
            fail "$module is not built: make -C tests/modules memprofstr.so"
        }
        r module load $module
        mp_exact_case "type 5 RAW strings truncated in place" string_raw raw 1000 k:0 {
            for {set i 0} {$i < 1000} {incr i} {
                $c set k:$i [string repeat a 30]
                assert_equal OK [$c memprofstr.truncate k:$i 5]
            }
            assert_equal 5 [$c strlen k:999]
        }
        r module unload memprofstr
    }

    test {Profile with the keyspace mid-rehash at the fork: each key once, bytes and tables exact} {
        # With activerehashing no, only commands on the keyspace move a
        # rehash on. Keys are added until an insertion starts a resize; the
        # rehash is still pending before and after the profile, so it was at
        # the fork. Catches keys visited twice or missed while the keyspace
        # has two tables, and a keyspace figure without the rehash target.
        # (The truth then includes the 24-byte node of the kvstore's list of
        # rehashing tables, in mem_um_kvstore but not in the lut: within the
        # bound.)
        r flushall sync
        set c [valkey_client]
        set n 0
        while {1} {
            $c set k:$n [string repeat v [expr {10 + $n % 40}]]
            incr n
            if {$n >= 2000 && [dict get [r memory stats] db.dict.rehashing.count] > 0} break
            assert_lessthan $n 100000
        }
        $c close
        mp_wait_single_client
        assert_match {*rehashing target*} [r debug htstats 9]
        set stats [mp_profile_after_memory_stats]
        assert_match {*rehashing target*} [r debug htstats 9]
        set after [mp_alloc_snapshot]
        assert_equal $n [r dbsize]
        assert_equal $n [mp_info rdb_stats_keys]
        assert_morethan [dict get $stats overhead.db.hashtable.rehashing] 0
        mp_assert_keyspace_figures $stats
        set bytes [mp_info rdb_stats_bytes]
        r flushall sync
        mp_assert_exact "keyspace mid-rehash, $n keys" $n $bytes $after [mp_alloc_snapshot]
    }

    test {Profile with a hash, a set and a sorted set mid-rehash at the fork: bytes equal the allocator's} {
        # Each element added is a lookup that moves the collection's own
        # rehash one bucket on; elements are added one at a time until an
        # insertion starts a resize. The value's table then has two bucket
        # tables and chained buckets in both. Catches a table sized from one
        # of its tables, or without its chained buckets.
        r flushall sync
        set c [valkey_client]
        set n 0
        while {1} {
            $c hset bighash f:$n [string repeat h [expr {$n % 3 ? 10 : 100}]]
            incr n
            if {$n >= 3000 && [string match {*rehashing target*} [r debug htstats-key bighash]]} break
            assert_lessthan $n 100000
        }
        set n 0
        while {1} {
            $c sadd bigset member:$n
            incr n
            if {$n >= 3000 && [string match {*rehashing target*} [r debug htstats-key bigset]]} break
            assert_lessthan $n 100000
        }
        set n 0
        while {1} {
            $c zadd bigzset $n zmember:$n
            incr n
            if {$n >= 3000 && [string match {*rehashing target*} [r debug htstats-key bigzset]]} break
            assert_lessthan $n 100000
        }
        $c close
        mp_wait_single_client
        mp_profile
        foreach k {bighash bigset bigzset} {
            assert_match {*rehashing target*} [r debug htstats-key $k] $k
        }
        set after [mp_alloc_snapshot]
        assert_equal 3 [mp_info rdb_stats_keys]
        set figures {}
        foreach slot {hash_hashtable set_hashtable zset_skiplist} {
            assert_equal 1 [mp_info rdb_stats_${slot}_keys] $slot
            lappend figures $slot [mp_info rdb_stats_${slot}_bytes]
        }
        # One collection at a time, so that an error is attributed; DEL
        # frees in place (not in the lazyfree thread) for the measure.
        set lazy [lindex [r config get lazyfree-lazy-user-del] 1]
        r config set lazyfree-lazy-user-del no
        foreach {slot key} {hash_hashtable bighash set_hashtable bigset zset_skiplist bigzset} {
            set after [mp_alloc_snapshot]
            assert_equal 1 [r del $key]
            mp_assert_exact "$slot mid-rehash" 1 [dict get $figures $slot] $after [mp_alloc_snapshot]
        }
        r config set lazyfree-lazy-user-del $lazy
    }

    test {The log lines equal INFO rdb_stats of the same profile} {
        r flushall sync
        r set s1 123
        r set s2 hello
        r rpush l1 a b c
        r sadd set1 1 2 3
        r zadd z1 1 a
        r hset h1 f v
        r xadd x1 * f v
        r expire s2 10000
        r expire h1 10000
        set stats [mp_profile_after_memory_stats]
        set log [mp_log_figures]
        set d [mp_info_dict]
        assert_equal [dict get $d rdb_stats_keys] [dict get $log total_keys]
        assert_equal [dict get $d rdb_stats_bytes] [dict get $log total_bytes]
        foreach t {string list set zset hash stream} {
            assert_equal [dict get $d rdb_stats_${t}_keys] [dict get $log ${t}_keys] $t
            assert_equal [dict get $d rdb_stats_${t}_bytes] [dict get $log ${t}_bytes] $t
        }
        assert_equal 2 [dict get $log string_keys]
        # Types with no keys are left out of the line.
        assert {![dict exists $log module_keys]}
        foreach {info log_name} {mem_kv_user_data user mem_kv_expiration expire mem_kv_hash_metadata hash_meta
                                 mem_um_kvstore kvstore mem_um_clients_io clients mem_sys_aof_buffer aof_buf
                                 mem_sys_repl_buffer repl_buf mem_sys_repl_backlog repl_backlog} {
            assert_equal [dict get $d $info] [dict get $log $log_name] $info
        }
        # 8.1 has no hash field TTLs; 9.1 counts each db's index of keys
        # with volatile fields (its empty tables too).
        if {![mp_base9]} { assert_equal 0 [dict get $log hash_meta] }
        mp_assert_keyspace_figures $stats
    }

    test {Keys with TTLs across dbs and streams with groups: totals equal the sum of DBSIZE} {
        r flushall sync
        set total 0
        foreach db {0 3 9 15} {
            r select $db
            for {set i 0} {$i < 200} {incr i} {
                r set k:$i v:$i
                if {$i % 2} { r expire k:$i 10000 }
            }
            r xadd st * a 1
            r xgroup create st grp 0
            r xreadgroup group grp c1 streams st >
            incr total [r dbsize]
        }
        r select 9
        set stats [mp_profile_after_memory_stats]
        assert_equal $total [mp_info rdb_stats_keys]
        assert_equal 4 [mp_info rdb_stats_stream_keys]
        # The keyspace and expires figures of four dbs, 400 keys with TTLs,
        # equal MEMORY STATS'.
        mp_assert_keyspace_figures $stats
        set with_ttl [mp_info mem_kv_expiration]
        r flushall sync
        foreach db {0 3 9 15} {
            r select $db
            for {set i 0} {$i < 200} {incr i} { r set k:$i v:$i }
        }
        r select 9
        set stats [mp_profile_after_memory_stats]
        # No TTL now: the expires tables hold no key, and the figures still
        # equal MEMORY STATS'.
        mp_assert_keyspace_figures $stats
        assert_morethan $with_ttl [mp_info mem_kv_expiration]
    }

    test {An RDB written by BGSAVE STAT_MEMORY loads back to the same digest} {
        r flushall sync
        r debug populate 20000 key 32
        r rpush biglist {*}[lrepeat 500 elem]
        r sadd bigset {*}[lmap i [lrepeat 300 x] {incr j}]
        r hset h a 1 b 2
        r zadd zs 1 a 2 b
        r xadd x * a 1
        r expire key:1 1000
        set digest [r debug digest]
        mp_profile
        assert_equal ok [mp_info rdb_stats_status]
        set dir [lindex [r config get dir] 1]
        set rdb [file join $dir [lindex [r config get dbfilename] 1]]
        set check [exec src/valkey-check-rdb $rdb]
        assert_match {*RDB looks OK*} $check
        r debug reload nosave
        assert_equal $digest [r debug digest]
    }

    test {Plain BGSAVE and SAVE do not profile} {
        set before [mp_log_count]
        set last [mp_info rdb_stats_last_time]
        r bgsave
        waitForBgsave r
        r save
        assert_equal $before [mp_log_count]
        assert_equal $last [mp_info rdb_stats_last_time]
    }

    test {BGSAVE STAT_MEMORY while a save runs replies as plain BGSAVE} {
        r config set rdb-key-save-delay 200
        r bgsave
        assert_error {*already in progress*} {r bgsave stat_memory}
        r bgsave cancel
        waitForBgsave r
        r config set rdb-key-save-delay 0
    }

    test {BGSAVE STAT_MEMORY inside MULTI is scheduled and still profiles} {
        set before [mp_log_count]
        r multi
        r bgsave stat_memory
        set reply [r exec]
        assert_match {*scheduled*} $reply
        wait_for_condition 200 100 {[mp_log_count] == $before + 1} else {
            fail "the scheduled save did not profile"
        }
        waitForBgsave r
    }

    test {A cancelled scheduled BGSAVE STAT_MEMORY leaves nothing behind} {
        waitForBgsave r
        r flushall sync
        r config set appendonly no
        r config set rdb-key-save-delay 1000
        r debug populate 1000 sched
        r bgrewriteaof
        wait_for_condition 100 50 {[s aof_rewrite_in_progress] == 1} else { fail "no rewrite" }
        r multi
        r bgsave stat_memory
        assert_match {*scheduled*} [r exec]
        assert_equal {Scheduled background saving cancelled} [r bgsave cancel]
        r config set rdb-key-save-delay 0
        wait_for_condition 100 50 {[s aof_rewrite_in_progress] == 0} else { fail "rewrite still running" }
        set before [mp_log_count]
        r bgsave
        waitForBgsave r
        after 100
        assert_equal $before [mp_log_count]
    }

    test {A profiling child killed mid-save publishes nothing and the server keeps serving} {
        r flushall sync
        r debug populate 1000
        mp_profile
        set prev [mp_info_dict]
        set before [mp_log_count]
        r debug populate 1000 other
        r config set rdb-key-save-delay 1000
        r bgsave stat_memory
        wait_for_condition 100 50 {[mp_info rdb_stats_in_progress] == 1} else { fail "not in progress" }
        after 100
        set pid [get_child_pid 0]
        exec kill -9 $pid
        waitForBgsave r
        r config set rdb-key-save-delay 0
        assert_equal PONG [r ping]
        assert_equal err [mp_info rdb_stats_status]
        assert_equal 0 [mp_info rdb_stats_in_progress]
        assert_equal $before [mp_log_count]
        set now [mp_info_dict]
        foreach k [dict keys $prev] {
            if {$k in {rdb_stats_status rdb_stats_in_progress}} continue
            assert_equal [dict get $prev $k] [dict get $now $k] $k
        }
        # A new profile afterwards works and is published.
        mp_profile
        assert_equal ok [mp_info rdb_stats_status]
        assert_equal 2000 [mp_info rdb_stats_keys]
    }
}

# Cluster mode: every slot has its own keyspace and expires tables, created
# when the slot gets its first key and freed with its last one.
start_cluster 1 0 [list tags {"memprofile external:skip cluster"} overrides $mp_overrides] {
    r debug replybuffer resizing 0

    test {Cluster mode: keys over many slots, totals equal DBSIZE, bytes and tables exact} {
        # Catches keys missed or counted twice across the slots' tables, a
        # keyspace or expires figure that misses slot tables (or counts the
        # 16384 slots' empty ones), and per-key sizing errors in cluster mode.
        r flushall sync
        set c [valkey_client]
        # An anchor key in each slot used ({k:<i>} is hashed like k:<i>), with
        # a TTL, so that the same slot tables exist at both measures: MEMORY
        # STATS' lut counts a slot table's struct at its request (88 bytes),
        # 8 bytes under its allocation, so tables created between the two
        # measures would blur the allocator's figure by 8 bytes each.
        for {set i 0} {$i < 3000} {incr i} {
            $c sadd "{k:$i}anchor" 1
            $c expire "{k:$i}anchor" 100000
        }
        for {set i 0} {$i < 3000} {incr i} {
            switch [expr {$i % 4}] {
                0 { $c set k:$i [expr {1000000 + $i}] }
                1 { $c set k:$i "v-$i" }
                2 { $c set k:$i [string repeat r [expr {60 + $i % 200}]] }
                3 { $c hset k:$i f v g $i }
            }
            if {$i % 3 == 0} { $c expire k:$i 100000 }
        }
        $c close
        mp_wait_single_client
        set slots {}
        for {set i 0} {$i < 3000} {incr i} { dict set slots [r cluster keyslot k:$i] 1 }
        set nslots [dict size $slots]
        assert_morethan $nslots 2000

        set stats [mp_profile_after_memory_stats]
        set after [mp_alloc_snapshot]
        assert_equal ok [mp_info rdb_stats_status]
        assert_equal [r dbsize] [mp_info rdb_stats_keys]
        assert_equal 6000 [mp_info rdb_stats_keys]
        assert_equal 3000 [mp_info rdb_stats_set_intset_keys]
        assert_equal 750 [mp_info rdb_stats_hash_listpack_keys]
        mp_assert_keyspace_figures $stats
        set bytes [expr {[mp_info rdb_stats_bytes] - [mp_info rdb_stats_set_intset_bytes]}]

        # Remove the measured keys, freed in place, on a connection of their
        # own; the anchors keep the slot tables.
        set lazy [lindex [r config get lazyfree-lazy-user-del] 1]
        r config set lazyfree-lazy-user-del no
        set c [valkey_client]
        for {set i 0} {$i < 3000} {incr i} { $c del k:$i }
        $c close
        mp_wait_single_client
        r config set lazyfree-lazy-user-del $lazy
        assert_equal 3000 [r dbsize]
        mp_assert_exact "cluster mode, 3000 keys over $nslots slots" 3000 $bytes $after [mp_alloc_snapshot]
    }
}
