# Hash field TTLs (9.1): the hashes' volatile sets and the dbs' indexes of
# keys with volatile fields, against the allocator.
#
# The truth is the allocator's: used_memory growth (MEMORY STATS
# total.allocated) minus the keyspace tables' growth (overhead.db.hashtable.
# lut), both from one reply. That growth holds the keys' bytes and the growth
# of the index of keys with volatile fields, so the profile must give
#   mem_kv_user_data + mem_kv_hash_metadata - (the empty indexes) = growth
# (user data leaves out the volatile sets, the metadata holds them and the
# indexes), and rdb_stats_bytes - mem_kv_user_data is the volatile sets,
# which deleting the keys frees with them.

source tests/helpers/memprofile-util.tcl

proc ht_snapshot {} {
    # Nothing left for the lazyfree thread (lazy freeing is on here, as by
    # default), as in mp_allocator_view.
    wait_lazyfree_done r
    set st [r memory stats]
    list [dict get $st total.allocated] [dict get $st overhead.db.hashtable.lut] $st
}

# One case: a flushed server, 'script' run on a connection of its own ($c),
# then a profile, and a flush. The keys' hashes get more than 512 fields, or
# a TTL on a field, so that they are hashtables. Active expiry is off, so that fields whose TTL passed are
# still there at the fork (they hold memory until reclaimed). Returns the
# volatile sets' bytes (rdb_stats_bytes - mem_kv_user_data).
proc ht_case {what nkeys script {check 1}} {
    r flushall sync
    r debug set-active-expire 0
    mp_profile
    set meta0 [mp_info mem_kv_hash_metadata]
    upvar 1 c c
    set c [valkey_client]
    uplevel 1 $script
    $c close
    mp_wait_single_client
    mp_profile
    set after [ht_snapshot]
    set bytes [mp_info rdb_stats_bytes]
    set user [mp_info mem_kv_user_data]
    set meta [mp_info mem_kv_hash_metadata]
    assert_equal ok [mp_info rdb_stats_status]
    assert_equal $nkeys [mp_info rdb_stats_keys]
    assert_equal $nkeys [mp_info rdb_stats_hash_hashtable_keys]
    assert_equal $bytes [mp_info rdb_stats_hash_hashtable_bytes]
    # The published profile (its top keys, its prefixes) is in used_memory
    # too: the second snapshot keeps it, so that it cancels out.
    r flushall sync
    set before [ht_snapshot]
    r debug set-active-expire 1
    if {!$check || ![mp_is_jemalloc]} { return [expr {$bytes - $user}] }
    lassign $after used1 lut1
    lassign $before used0 lut0
    set truth [expr {($used1 - $used0) - ($lut1 - $lut0)}]
    set profile [expr {$user + $meta - $meta0}]
    set bound [expr {$nkeys + 256}]
    if {$::verbose} {
        puts "$what: keys $bytes user $user metadata $meta (empty $meta0) volatile sets [expr {$bytes - $user}];\
              profile $profile allocator $truth difference [expr {$profile - $truth}]"
    }
    assert_range $profile [expr {$truth - $bound}] [expr {$truth + $bound}] \
        "$what: user data + metadata growth $profile bytes, allocator $truth bytes, $nkeys keys; MEMORY STATS changes: [mp_stats_changes $after $before]"
    return [expr {$bytes - $user}]
}

# 'n' fields f0..f(n-1) of 'len'-byte values in hash 'key', on $c.
proc ht_fill {c key n {len 20}} {
    set args {}
    for {set j 0} {$j < $n} {incr j} { lappend args f$j [string repeat v [expr {$len + $j % 7}]] }
    $c hset $key {*}$args
}

# The byte-exact overrides (the command logs off among them: on a loaded
# machine any command between the two snapshots can pass the 10 ms
# threshold, and its entry is 176 to 336 bytes), with lazy freeing left on,
# as by default.
start_server [list tags {"memprofile external:skip"} overrides \
        [dict remove $::mp_exact_free_overrides lazyfree-lazy-user-flush lazyfree-lazy-user-del]] {
    r debug replybuffer resizing 0

    if {![mp_base9]} {
        test {8.1 has no hash field TTLs: mem_kv_hash_metadata is 0} {
            r flushall sync
            for {set i 0} {$i < 20} {incr i} { ht_fill r h:$i 600 }
            mp_profile
            assert_equal 0 [mp_info mem_kv_hash_metadata]
            assert_equal [mp_info rdb_stats_bytes] [mp_info mem_kv_user_data]
        }
    } else {
        # Once, before the byte-exact cases: what the first profile and the
        # first volatile hash allocate for good (the history ring, the
        # index's table) is then already there in each case's snapshots.
        ht_case "warm-up" 20 {
            for {set i 0} {$i < 20} {incr i} {
                ht_fill $c h:$i 600
                if {$i < 3} { $c hexpire h:$i 100000 FIELDS 1 f1 }
            }
        } 0

        test {Hash field TTLs, none: no volatile set, only the empty indexes} {
            set vsets [ht_case "no field TTLs" 20 {
                for {set i 0} {$i < 20} {incr i} { ht_fill $c h:$i 600 }
            }]
            assert_equal 0 $vsets
        }

        test {Hash field TTLs, one field a hash (a single entry): exact} {
            # A set of one entry is a tagged pointer: no allocation of its own.
            set vsets [ht_case "one field TTL" 30 {
                for {set i 0} {$i < 30} {incr i} {
                    ht_fill $c h:$i 300
                    $c hexpire h:$i 100000 FIELDS 1 f7
                }
            }]
            assert_equal 0 $vsets
        }

        test {Hash field TTLs, a few a hash (a vector): exact} {
            set vsets [ht_case "a few field TTLs" 30 {
                for {set i 0} {$i < 30} {incr i} {
                    ht_fill $c h:$i 300
                    for {set j 0} {$j < 3 + $i % 40} {incr j} { $c hexpire h:$i 100000 FIELDS 1 f$j }
                }
            }]
            assert_morethan $vsets 0
        }

        test {Hash field TTLs, many a hash over many time windows (a rax of buckets): exact} {
            set vsets [ht_case "many field TTLs" 6 {
                for {set i 0} {$i < 6} {incr i} {
                    ht_fill $c h:$i 3000
                    for {set j 0} {$j < 3000} {incr j} {
                        $c hpexpire h:$i [expr {100000 + $j * 997 % 50000000}] FIELDS 1 f$j
                    }
                }
            }]
            assert_morethan $vsets 0
        }

        test {Hash field TTLs, many a hash in one time window (bucket tables): exact} {
            set vsets [ht_case "many field TTLs, one window" 4 {
                for {set i 0} {$i < 4} {incr i} {
                    ht_fill $c h:$i 2000
                    set fields {}
                    for {set j 0} {$j < 2000} {incr j} { lappend fields f$j }
                    $c hexpire h:$i 100000 FIELDS 2000 {*}$fields
                }
            }]
            assert_morethan $vsets 0
        }

        test {Hash field TTLs set by HSETEX and HGETEX, some removed by HPERSIST: exact} {
            set vsets [ht_case "HSETEX, HGETEX, HPERSIST" 20 {
                for {set i 0} {$i < 20} {incr i} {
                    ht_fill $c h:$i 200
                    for {set j 0} {$j < 150} {incr j} {
                        $c hsetex h:$i EX [expr {1000 + $j}] FIELDS 1 n$j [string repeat w [expr {10 + $j % 50}]]
                    }
                    for {set j 0} {$j < 100} {incr j} { $c hgetex h:$i PX [expr {500000 + $j * 13}] FIELDS 1 f$j }
                    for {set j 0} {$j < 60} {incr j} { $c hpersist h:$i FIELDS 1 n$j }
                }
                assert_equal 350 [$c hlen h:0]
            }]
            assert_morethan $vsets 0
        }

        test {Hash field TTLs already passed but not reclaimed at the fork are counted} {
            # With active expiry off, fields whose TTL passed stay in memory
            # until a command touches them; iteration that validates entries
            # would hide them, and the allocator would show the bytes missing.
            set vsets [ht_case "expired, not reclaimed" 10 {
                for {set i 0} {$i < 10} {incr i} {
                    ht_fill $c h:$i 400
                    for {set j 0} {$j < 300} {incr j} { $c hpexpire h:$i 1 FIELDS 1 f$j }
                    for {set j 300} {$j < 320} {incr j} { $c hexpire h:$i 100000 FIELDS 1 f$j }
                }
                after 20
            }]
            assert_morethan $vsets 0
        }

        test {Hash field TTLs: the breakdown adds up, the log and DOCTOR name the metadata} {
            r flushall sync
            for {set i 0} {$i < 10} {incr i} {
                ht_fill r h:$i 500
                for {set j 0} {$j < 200} {incr j} { r hexpire h:$i [expr {1000 + $j}] FIELDS 1 f$j }
            }
            mp_profile
            set bytes [mp_info rdb_stats_bytes]
            set user [mp_info mem_kv_user_data]
            set meta [mp_info mem_kv_hash_metadata]
            assert_lessthan $user $bytes
            # The metadata holds the volatile sets and more (the indexes).
            assert_morethan $meta [expr {$bytes - $user}]
            set log [mp_log_figures]
            assert_equal $meta [dict get $log hash_meta]
            assert_equal $user [dict get $log user]
            set doctor [r memory doctor]
            assert_match {*hash field TTL index*} $doctor
            # REPORT's breakdown is INFO's.
            set rep [r memory profile report]
            assert_equal $meta [dict get [dict get $rep breakdown] mem_kv_hash_metadata]
            assert_equal $user [dict get [dict get $rep breakdown] mem_kv_user_data]
            r flushall sync
        }
    }
}
