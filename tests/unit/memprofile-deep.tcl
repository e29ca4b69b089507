# The deep profile (top keys, prefixes, TTL horizon, dbs, histograms, slots)
# against truths computed apart from the profile: the allocator's cost of
# each key, DBSIZE, CLUSTER COUNTKEYSINSLOT, OBJECT ENCODING, LLEN & co, and
# the per-encoding totals (themselves proven against the allocator by
# unit/memprofile). Every bound is absolute.

source tests/helpers/memprofile-util.tcl

# As unit/memprofile, plus synchronous freeing: a key deleted (or reclaimed
# as expired) to measure it is gone from used_memory when DEL replies.
set deep_overrides [concat $::mp_exact_free_overrides {
    lazyfree-lazy-expire no
    lazyfree-lazy-server-del no
}]

# A key's own allocator cost may differ from its profile by this many bytes
# (the measures below give 0 on jemalloc and on libc malloc): less than the
# smallest size class of either allocator, so one allocation missed or
# counted twice fails.
set ::deep_key_bound 7

# MEMORY PROFILE REPORT as a dict (RESP2: flat arrays of names and values,
# nested the same way).
proc deep_report {args} {
    r memory profile report {*}$args
}

# The rows of a list of the report (topkeys, prefixes, slots).
proc deep_rows {rep field} {
    dict get $rep $field
}

# used_memory and the keyspace and expires tables, read with nothing written
# in between (mp_allocator_view). Only chained buckets come and go while
# deep_measure runs (DEBUG DICT-RESIZING 0): the bucket tables' slack on
# libc malloc is left out, as a db's table outlives its last key.
proc deep_snapshot {} {
    mp_allocator_view 0
}

# The allocator's cost of key k of db: the drop of used_memory when this
# connection deletes it (lazy freeing off, so freed when DEL replies), minus
# the drop of the keyspace and expires tables (a chained bucket freed).
# Measured by deletion, after the profiles, on the test's own connection:
# creating each key on a connection of its own and closing it showed, once
# in about 2000 connections, 1600 bytes that stayed allocated outside the
# key (MEMORY STATS counts them in dataset.bytes, not in the clients), which
# would blur one key's truth. The caller sets DEBUG DICT-RESIZING 0 so that
# no table resizes (and no rehash allocates its list node) meanwhile.
# ::deep_measure_slack is set to how much the measure may be too high: a
# chained bucket is counted at its usual size on glibc (72 bytes, see
# mp_table_slack), but glibc hands out a whole free chunk of 88 usable bytes
# now and then, which nothing outside the allocator shows: 16 bytes for
# each chained bucket the DEL freed, with libc malloc; 0 with jemalloc.
proc deep_measure {db k} {
    r select $db
    set st0 [r memory stats]
    lassign [deep_snapshot] a0 l0
    r del $k
    set st1 [r memory stats]
    lassign [deep_snapshot] a1 l1
    assert_equal 0 [r exists $k]
    r select 9
    set freed [expr {([dict get $st0 overhead.db.hashtable.lut] - [dict get $st1 overhead.db.hashtable.lut]) / 64}]
    set ::deep_measure_slack [expr {[mp_table_slack] ? 16 * $freed : 0}]
    expr {($a0 - $a1) - ($l0 - $l1)}
}

# The elements a top key reports, from the data type's own command.
proc deep_elements {db k type} {
    r select $db
    set n [switch $type {
        string { r strlen $k }
        list { r llen $k }
        set { r scard $k }
        zset { r zcard $k }
        hash { r hlen $k }
        stream { r xlen $k }
    }]
    r select 9
    return $n
}

# The histogram bucket of a size: the smallest power of two >= bytes.
proc deep_le {bytes} {
    set le 1
    while {$le < $bytes} { set le [expr {$le * 2}] }
    return $le
}

# The expected histogram of a list of sizes: {le keys bytes} ascending.
proc deep_histogram {sizes} {
    set h [dict create]
    foreach b $sizes {
        set le [deep_le $b]
        dict incr h $le:keys
        dict incr h $le:bytes $b
    }
    set out {}
    foreach le [lsort -integer -unique [lmap k [dict keys $h] {lindex [split $k :] 0}]] {
        lappend out [list le $le keys [dict get $h $le:keys] bytes [dict get $h $le:bytes]]
    }
    return $out
}

# Top-key name of a row, whole (a cut name is looked up by its start).
proc deep_row_name {row longnames} {
    set k [dict get $row key]
    if {[dict exists $row key_len]} {
        foreach full $longnames {
            if {[string length $full] == [dict get $row key_len] &&
                [string range $full 0 [expr {[string length $k] - 1}]] eq $k} {
                return $full
            }
        }
        fail "cut name [string range $k 0 40]... not found"
    }
    return $k
}

# Each type's reported top keys (rows of one profile) must be the 'cap'
# largest of that type by truth, in order: each row's bytes within the bound
# of its key's truth, rows non-increasing, and no key left out larger than
# the smallest one listed.
proc deep_check_top {rows truth cap longnames} {
    set bound $::deep_key_bound
    set wrong {}
    set prev -1
    foreach row $rows {
        set b [dict get $row bytes]
        if {$prev != -1} { assert_lessthan_equal $b $prev "top keys not largest first" }
        set prev $b
    }
    foreach type {string list set zset hash stream} {
        set listed {}
        foreach row $rows {
            if {[dict get $row type] ne $type} continue
            set name [deep_row_name $row $longnames]
            assert {[dict exists $truth $name]}
            lassign [dict get $truth $name] ttype tbytes tslack
            assert_equal $type $ttype "type of $name"
            set b [dict get $row bytes]
            if {$b - $tbytes > $bound || $tbytes - $b > $bound + $tslack} {
                lappend wrong "[string range $name 0 20]: profile $b allocator $tbytes ([dict get $row encoding], [dict get $row elements] elements)"
            }
            dict set listed $name $b
        }
        if {[llength $wrong]} { fail "top keys off their allocator cost by more than $bound bytes: [join $wrong {; }]" }
        set n 0
        dict for {name v} $truth { if {[lindex $v 0] eq $type} { incr n } }
        set expected [expr {$n < $cap ? $n : $cap}]
        assert_equal $expected [dict size $listed] "top keys of type $type"
        if {$expected == 0} continue
        set min [tcl::mathfunc::min {*}[dict values $listed]]
        dict for {name v} $truth {
            lassign $v ttype tbytes tslack
            if {$ttype ne $type || [dict exists $listed $name]} continue
            assert_lessthan_equal $tbytes [expr {$min + $bound + $tslack}] \
                "[string range $name 0 40] ($tbytes bytes) left out of the $type top keys (smallest listed $min)"
        }
    }
}

# Prefix rows are depth ascending and largest first within a depth.
proc deep_check_prefix_order {rep} {
    set pd 0
    set pb -1
    foreach row [dict get $rep prefixes] {
        set d [dict get $row depth]
        set b [dict get $row bytes]
        assert_lessthan_equal $pd $d "prefix rows not depth ascending"
        if {$d == $pd} { assert_lessthan_equal $b $pb "prefix rows of depth $d not largest first" }
        set pd $d
        set pb $b
    }
}

# A profile's prefix rows must be exactly 'expected': a dict
# {depth prefix} -> {keys bytes}, with error_bytes 0.
proc deep_assert_prefixes {rep expected} {
    set seen 0
    foreach row [dict get $rep prefixes] {
        set id [list [dict get $row depth] [dict get $row prefix]]
        assert {[dict exists $expected $id]}
        lassign [dict get $expected $id] keys bytes
        assert_equal $keys [dict get $row keys] "keys of prefix $id"
        assert_equal $bytes [dict get $row bytes] "bytes of prefix $id"
        assert_equal 0 [dict get $row error_bytes] "error_bytes of prefix $id"
        incr seen
    }
    assert_equal [dict size $expected] $seen "prefix rows"
    deep_check_prefix_order $rep
}

# {keys bytes} of one encoding in the last profile.
proc deep_enc {enc} {
    list [mp_info rdb_stats_${enc}_keys] [mp_info rdb_stats_${enc}_bytes]
}

# Milliseconds of a server log line's timestamp ("22 Nov 2026 20:59:04.123").
proc deep_log_ms {line} {
    if {![regexp {(\d+ [A-Za-z]+ \d+ \d+:\d+:\d+)\.(\d+)} $line -> t ms]} { fail "no timestamp in $line" }
    expr {[clock scan $t -format {%d %b %Y %H:%M:%S}] * 1000 + [scan $ms %d]}
}

# The server log without the lines the test framework writes (test names).
proc deep_log {} {
    set fp [open [srv 0 stdout] r]
    fconfigure $fp -translation binary
    set lines [split [read $fp] "\n"]
    close $fp
    lsearch -all -inline -not -glob $lines {### Starting test*}
}

# Substrings of the key names below that no log line or INFO field may hold.
set ::deep_secrets {Qzs Qzl Qzb Qzt Qzp app:user app:sess cache:0 svc/api z0001: Qxs}

start_server [list tags {"memprofile external:skip"} overrides $deep_overrides] {
    r debug replybuffer resizing 0

    # ------------------------------------------------------------------
    # Top keys
    # ------------------------------------------------------------------

    # Keys of clearly different sizes over all types, some with TTLs, in dbs
    # 0, 3 and 8: {db name type ttl_ms body}.
    set specs {}
    set dbs {0 3 8}
    for {set i 0} {$i < 36} {incr i} {
        set len [expr {100 + $i * $i * 35}]
        set ttl [expr {$i % 4 == 1 ? 3600000 * ($i + 1) : -1}]
        lappend specs [list [lindex $dbs [expr {$i % 3}]] Qzs:str:$i string $ttl \
            "\$c set \$k \[string repeat s $len\]"]
    }
    for {set i 0} {$i < 34} {incr i} {
        set db [lindex $dbs [expr {($i + 1) % 3}]]
        set ttl [expr {$i % 5 == 2 ? 1800000 : -1}]
        set n [expr {3 + $i * $i / 3}]
        lappend specs [list $db Qzs:list:$i list $ttl \
            "\$c rpush \$k {*}\[lmap j \[lrepeat $n x\] {incr ::deep_j; format elem-%06d-xxxxxxxxxxxxxxxx \$::deep_j}\]"]
        switch [expr {$i % 3}] {
            0 { set body "\$c sadd \$k {*}\[lmap j \[lrepeat [expr {5 + $i * 20}] x\] {incr ::deep_j}\]" }
            1 { set body "\$c sadd \$k {*}\[lmap j \[lrepeat [expr {3 + $i * 3}] x\] {incr ::deep_j; format m%d \$::deep_j}\]" }
            2 { set body "\$c sadd \$k {*}\[lmap j \[lrepeat [expr {130 + $i * 10}] x\] {incr ::deep_j; format member-%d \$::deep_j}\]" }
        }
        lappend specs [list [lindex $dbs [expr {($i + 2) % 3}]] Qzs:set:$i set -1 $body]
        set n [expr {3 + $i * $i / 4}]
        lappend specs [list $db Qzs:zset:$i zset [expr {$i % 7 == 3 ? 5 * 3600000 : -1}] \
            "\$c zadd \$k {*}\[concat {*}\[lmap j \[lrepeat $n x\] {incr ::deep_j; list \$::deep_j zm-\$::deep_j}\]\]"]
        lappend specs [list [lindex $dbs [expr {$i % 3}]] Qzs:hash:$i hash -1 \
            "\$c hset \$k {*}\[concat {*}\[lmap j \[lrepeat [expr {2 + $i * $i / 4}] x\] {incr ::deep_j; list f\$::deep_j \[format %-[expr {$i % 5 == 4 ? 100 : 10}]s v\$::deep_j\]}\]\]"]
        lappend specs [list $db Qzs:stream:$i stream [expr {$i % 6 == 0 ? 3 * 86400000 : -1}] \
            "for {set j 0} {\$j < [expr {1 + $i * 3}]} {incr j} { \$c xadd \$k * f \$j payload [string repeat p [expr {$i + 10}]] }
             if {$i % 4 == 0} { \$c xgroup create \$k g 0 ; \$c xreadgroup group g alice count 3 streams \$k > }"]
    }
    # A name of 3000 bytes (cut to 1024 in the report) and a binary name,
    # both on the largest strings.
    set longname "Qzl:[string repeat L 2996]"
    set binname "Qzb:\x00\r\n\xff:end\x00"
    lappend specs [list 0 $longname string -1 {$c set $k [string repeat v 50000]}]
    lappend specs [list 3 $binname string 7200000 {$c set $k [string repeat w 47000]}]
    set longnames [list $longname]

    test {Top keys: a dataset of known keys, profiled with 1000, 32 and 2 top keys per type} {
        r flushall sync
        # No keyspace table resizes while the keys are measured.
        r debug dict-resizing 0
        set ::deep_j 0
        # name -> {db type ttl clock-ms-before-its-TTL}
        set meta [dict create]
        set c [valkey_client]
        foreach spec $specs {
            lassign $spec db k type ttl body
            $c select $db
            set t0 [clock milliseconds]
            apply [list {c k} $body] $c $k
            if {$ttl != -1} { $c pexpire $k $ttl }
            dict set meta $k [list $db $type $ttl $t0]
        }
        $c close
        mp_wait_single_client

        set reps [dict create]
        foreach cap {1000 32 2} {
            r config set memory-profile-top-keys $cap
            mp_profile
            assert_equal ok [mp_info rdb_stats_status]
            dict set reps $cap [deep_report count 0]
            if {$cap == 1000} { set t1 [clock milliseconds] }
            if {$cap == 32} {
                foreach type {string list set zset hash stream} {
                    dict set reps type:$type [deep_report count 0 type $type]
                }
                dict set reps count5 [deep_report count 5]
                dict set reps default [deep_report]
                dict set reps count3hash [deep_report type hash count 3]
            }
        }
        r config set memory-profile-top-keys 32

        # What the data types' own commands say, then each key's allocator
        # cost.
        set obs [dict create]
        dict for {k m} $meta {
            lassign $m db type
            r select $db
            set enc [r object encoding $k]
            r select 9
            dict set obs $k [list $enc [deep_elements $db $k $type]]
        }
        set truth [dict create]
        dict for {k m} $meta {
            lassign $m db type
            set bytes [deep_measure $db $k]
            dict set truth $k [list $type $bytes $::deep_measure_slack]
        }
        r debug dict-resizing 1
        foreach db $dbs {
            r select $db
            assert_equal 0 [r dbsize]
        }
        r select 9
        set ::deep_top [dict create meta $meta obs $obs truth $truth reps $reps t1 $t1]
        concat
    } {} {needs:debug}

    test {Top keys: each key's bytes equal its allocator cost; db, type, encoding, elements and TTL right} {
        set meta [dict get $::deep_top meta]
        set obs [dict get $::deep_top obs]
        set truth [dict get $::deep_top truth]
        set t1 [dict get $::deep_top t1]
        set rep [dict get $::deep_top reps 1000]
        assert_equal bgsave [dict get $rep source]
        assert_equal [dict size $truth] [dict get $rep keys]
        set rows [deep_rows $rep topkeys]
        assert_equal [dict size $truth] [llength $rows]
        deep_check_top $rows $truth 1000 $longnames
        set maxdiff 0
        foreach row $rows {
            set name [deep_row_name $row $longnames]
            lassign [dict get $meta $name] db type ttl t0
            lassign [dict get $obs $name] enc elements
            set diff [expr {abs([dict get $row bytes] - [lindex [dict get $truth $name] 1])}]
            if {$diff > $maxdiff} { set maxdiff $diff }
            assert_equal $db [dict get $row db] "db of $name"
            assert_equal $type [dict get $row type] "type of $name"
            assert_equal $enc [dict get $row encoding] "encoding of $name"
            assert_equal $elements [dict get $row elements] "elements of $name"
            set ttl_ms [dict get $row ttl_ms]
            if {$ttl == -1} {
                assert_equal -1 $ttl_ms "ttl_ms of $name"
            } else {
                assert_range $ttl_ms [expr {$ttl - ($t1 - $t0)}] $ttl "ttl_ms of $name"
            }
        }
        if {$::verbose} {
            puts "top keys: [llength $rows] keys, largest |profile - allocator| $maxdiff bytes (bound $::deep_key_bound)"
        }
        # Every type and every encoding of the dataset is among them.
        set encs [lsort -unique [lmap row $rows {list [dict get $row type] [dict get $row encoding]}]]
        foreach e {{string raw} {list listpack} {list quicklist} {set intset} {set listpack} {set hashtable}
                   {zset listpack} {zset skiplist} {hash listpack} {hash hashtable} {stream stream}} {
            assert {[lsearch -exact $encs $e] != -1}
        }
    }

    test {Top keys: a 3000-byte name is cut to 1024 with key_len 3000; a binary name comes back byte-exact} {
        set rows [deep_rows [dict get $::deep_top reps 1000] topkeys]
        set long {}
        set bin {}
        foreach row $rows {
            if {[string match Qzl:* [dict get $row key]]} { set long $row }
            if {[dict get $row key] eq $binname} { set bin $row }
        }
        assert {$long ne {}}
        assert_equal 1024 [string length [dict get $long key]]
        assert_equal [string range $longname 0 1023] [dict get $long key]
        assert_equal 3000 [dict get $long key_len]
        assert {$bin ne {}}
        assert_equal 13 [string length [dict get $bin key]]
        assert_equal [list Q z b : \x00 \r \n \xff : e n d \x00] [split [dict get $bin key] {}]
        assert {![dict exists $bin key_len]}
        assert_equal 3 [dict get $bin db]
        # Names of up to 1024 bytes carry no key_len.
        foreach row $rows {
            if {$row ne $long} { assert {![dict exists $row key_len]} }
        }
    }

    test {Top keys: memory-profile-top-keys caps each type (32, then 2): the largest of each type, in order} {
        set truth [dict get $::deep_top truth]
        set reps [dict get $::deep_top reps]
        set r32 [deep_rows [dict get $reps 32] topkeys]
        deep_check_top $r32 $truth 32 $longnames
        assert_equal [expr {32 * 6}] [llength $r32]
        set r2 [deep_rows [dict get $reps 2] topkeys]
        deep_check_top $r2 $truth 2 $longnames
        assert_equal 12 [llength $r2]
        # TYPE: the rows of that type, in the same order; COUNT caps.
        foreach type {string list set zset hash stream} {
            set expected [lmap row $r32 { if {[dict get $row type] ne $type} continue; set row }]
            assert_equal $expected [deep_rows [dict get $reps type:$type] topkeys] "TYPE $type"
        }
        assert_equal [lrange $r32 0 4] [deep_rows [dict get $reps count5] topkeys]
        assert_equal [lrange $r32 0 9] [deep_rows [dict get $reps default] topkeys]
        set hash3 [lrange [lmap row $r32 { if {[dict get $row type] ne "hash"} continue; set row }] 0 2]
        assert_equal $hash3 [deep_rows [dict get $reps count3hash] topkeys]
        assert_error {*unknown type*} {r memory profile report type nosuchtype}
        assert_error {*syntax*} {r memory profile report count 1 count 2}
        # No slots outside cluster mode.
        assert {![dict exists [dict get $reps 32] slots]}
    }

    test {Histograms: every key in the bucket of the next power of two of its size; sums equal the type totals} {
        set truth [dict get $::deep_top truth]
        set rep [dict get $::deep_top reps 1000]
        set rows [deep_rows $rep topkeys]
        set hist [dict get $rep histograms]
        foreach type {string list set zset hash stream} {
            set sizes [lmap row $rows { if {[dict get $row type] ne $type} continue; dict get $row bytes }]
            # Built from the keys' sizes (all keys are listed with 1000 per type).
            assert_equal [deep_histogram $sizes] [dict get $hist $type] "histogram of $type"
            set k 0
            set b 0
            foreach bucket [dict get $hist $type] {
                incr k [dict get $bucket keys]
                incr b [dict get $bucket bytes]
            }
            assert_equal [dict get $rep types $type keys] $k "$type keys"
            assert_equal [dict get $rep types $type bytes] $b "$type bytes"
            # The profile of this dataset is the one INFO shows (same keys).
            assert_equal [mp_info rdb_stats_${type}_keys] $k
            assert_equal [mp_info rdb_stats_${type}_bytes] $b
        }
        # Each key's true size lands in the bucket of its reported size.
        foreach row $rows {
            set name [deep_row_name $row $longnames]
            assert_equal [deep_le [lindex [dict get $truth $name] 1]] [deep_le [dict get $row bytes]]
        }
        assert_equal [lsort {string list set zset hash stream}] [lsort [dict keys $hist]]
    }

    # ------------------------------------------------------------------
    # TTL horizon
    # ------------------------------------------------------------------

    test {TTL horizon: keys with no TTL, expired at the fork, 30 min, 5 h, 3 d, 30 d: exact per bucket} {
        r flushall sync
        r debug set-active-expire 0
        r debug dict-resizing 0
        # bucket ttl_ms count encoding body
        set groups {
            none -1 6 hash_listpack {$c hset $k f1 v1 f2 $i}
            expired 1 5 list_listpack {$c rpush $k a b c $i}
            1h 1800000 4 set_intset {$c sadd $k 1 2 3 [expr {100 + $i}]}
            1d 18000000 4 zset_listpack {$c zadd $k 1 a 2 b 3 m$i}
            7d 259200000 3 string_raw {$c set $k [string repeat r [expr {[mp_raw_min] + $i * 50}]]}
            later 2592000000 3 set_listpack {$c sadd $k a b c m$i}
        }
        set c [valkey_client]
        set t0 [clock milliseconds]
        foreach {bucket ttl n enc body} $groups {
            for {set i 0} {$i < $n} {incr i} {
                set k Qzt:$bucket:$i
                apply [list {c k i} $body] $c $k $i
                if {$ttl != -1} { $c pexpire $k $ttl }
            }
        }
        $c close
        mp_wait_single_client
        after 20
        mp_profile
        set t1 [clock milliseconds]
        set rep [deep_report count 0]
        set rows [deep_rows $rep topkeys]
        set info [mp_info_dict]
        set maxdiff 0
        # Reclaiming an expired key the first time allocates for good what
        # expiring needs (the propagation array): do it once before the
        # measures.
        r set deep:expiring 1
        r pexpire deep:expiring 1
        after 5
        assert_equal 0 [r del deep:expiring]
        foreach {bucket ttl n enc body} $groups {
            # Keys: the keys created in the bucket; bytes: their encoding's
            # total (one encoding per bucket) and the sum of their sizes.
            assert_equal $n [dict get $rep ttl $bucket keys] "keys of bucket $bucket"
            assert_equal [deep_enc $enc] [list $n [dict get $rep ttl $bucket bytes]] "bucket $bucket vs $enc"
            set sum 0
            foreach row $rows {
                if {![string match Qzt:$bucket:* [dict get $row key]]} continue
                incr sum [dict get $row bytes]
                set tm [dict get $row ttl_ms]
                switch $bucket {
                    none { assert_equal -1 $tm }
                    expired { assert_equal 0 $tm }
                    default { assert_range $tm [expr {$ttl - ($t1 - $t0)}] $ttl }
                }
            }
            assert_equal $sum [dict get $rep ttl $bucket bytes] "sum of the top keys of bucket $bucket"
            # INFO shows the same figures.
            assert_equal [dict get $rep ttl $bucket keys] [dict get $info rdb_stats_ttl_${bucket}_keys]
            assert_equal [dict get $rep ttl $bucket bytes] [dict get $info rdb_stats_ttl_${bucket}_bytes]
            # The allocator's cost of the bucket's keys, deleted one by one
            # (an expired key is reclaimed by the DEL's lookup).
            set truth 0
            set slack 0
            for {set i 0} {$i < $n} {incr i} {
                incr truth [deep_measure 9 Qzt:$bucket:$i]
                incr slack $::deep_measure_slack
            }
            set diff [expr {abs($truth - $sum)}]
            if {$diff > $maxdiff} { set maxdiff $diff }
            assert_range $sum [expr {$truth - $n * $::deep_key_bound - $slack}] [expr {$truth + $n * $::deep_key_bound}] \
                "bucket $bucket: profile $sum, allocator $truth"
        }
        if {$::verbose} { puts "ttl buckets: largest |profile - allocator| $maxdiff bytes" }
        r debug dict-resizing 1
        r debug set-active-expire 1
    } {OK} {needs:debug}

    # ------------------------------------------------------------------
    # Dbs
    # ------------------------------------------------------------------

    test {Dbs: keys in db 0, 5 and 9 equal DBSIZE, bytes their encodings' totals, INFO only for dbs with keys} {
        r flushall sync
        # One encoding per db.
        r select 0
        for {set i 0} {$i < 20} {incr i} { r hset Qzd:h:$i f v g $i }
        r select 5
        for {set i 0} {$i < 30} {incr i} { r set Qzd:i:$i [expr {1000000 + $i}] }
        r select 9
        for {set i 0} {$i < 10} {incr i} { r zadd Qzd:z:$i 1 a 2 b$i }
        mp_profile
        set rep [deep_report count 0]
        assert_equal {db0 db5 db9} [lsort [dict keys [dict get $rep dbs]]]
        set sum 0
        foreach db {0 5 9} enc {hash_listpack string_int zset_listpack} {
            r select $db
            set size [r dbsize]
            assert_equal $size [dict get $rep dbs db$db keys]
            assert_equal [deep_enc $enc] [list $size [dict get $rep dbs db$db bytes]]
            assert_equal $size [mp_info rdb_stats_db${db}_keys]
            assert_equal [dict get $rep dbs db$db bytes] [mp_info rdb_stats_db${db}_bytes]
            incr sum [dict get $rep dbs db$db bytes]
        }
        r select 9
        assert_equal [mp_info rdb_stats_bytes] $sum
        assert_equal [dict get $rep bytes] $sum
        set dbfields [lsort [lsearch -all -inline -regexp [dict keys [mp_info_dict]] {^rdb_stats_db\d+_}]]
        assert_equal [lsort {rdb_stats_db0_keys rdb_stats_db0_bytes rdb_stats_db5_keys rdb_stats_db5_bytes
                             rdb_stats_db9_keys rdb_stats_db9_bytes}] $dbfields
    }

    # ------------------------------------------------------------------
    # Prefixes
    # ------------------------------------------------------------------

    test {Prefixes: exact rows at depths 1 to 3, names without a delimiter, the 128-byte limit} {
        r flushall sync
        r debug dict-resizing 0
        r config set memory-profile-prefix-depth 3
        r config set memory-profile-prefix-delimiters ":"
        r config set memory-profile-prefix-capacity 4096
        # One encoding per group, so that each group's figures are its
        # encoding's totals.
        set b127 "[string repeat b 127]:"
        set c128 "[string repeat c 128]:"
        set p140 "p:[string repeat q 140]:"
        set c [valkey_client]
        for {set i 0} {$i < 200} {incr i} { $c hset [format app:user:%04d $i] f1 v1 f2 v2 }
        for {set i 0} {$i < 100} {incr i} { $c set [format app:sess:%03d:tok $i] [string repeat t 100] }
        for {set i 0} {$i < 300} {incr i} { $c set [format cache:%04d $i] [expr {1000000 + $i}] }
        for {set i 0} {$i < 50} {incr i} { $c rpush [format plainQzp%04d $i] a b c }
        $c sadd ${p140}r 1 2 3
        $c zadd ${b127}x 1 a
        $c sadd ${c128}x a b
        $c close
        mp_wait_single_client
        # Every key among the top keys, for the sizes of the session keys.
        r config set memory-profile-top-keys 1000
        mp_profile
        r config set memory-profile-top-keys 32
        set rep [deep_report count 0]
        lassign [deep_enc hash_listpack] uk ub
        lassign [deep_enc string_raw] sk sb
        lassign [deep_enc string_int] ck cb
        lassign [deep_enc list_listpack] pk pb
        lassign [deep_enc set_intset] qk qb
        lassign [deep_enc zset_listpack] bk bb
        lassign [deep_enc set_listpack] ek eb
        assert_equal {200 100 300 50 1 1 1} [list $uk $sk $ck $pk $qk $bk $ek]
        set expected [dict create \
            {1 app:} [list 300 [expr {$ub + $sb}]] \
            {1 cache:} [list 300 $cb] \
            {1 {}} [list 51 [expr {$pb + $eb}]] \
            [list 1 p:] [list 1 $qb] \
            [list 1 $b127] [list 1 $bb] \
            {2 app:user:} [list 200 $ub] \
            {2 app:sess:} [list 100 $sb]]
        # A session key's own row: its size among the top keys (libc malloc
        # may give one of them more than the others, a whole free chunk;
        # the sizes add up to the encoding's total).
        set sess 0
        foreach row [deep_rows $rep topkeys] {
            set k [dict get $row key]
            if {![regexp {^(app:sess:\d+:)tok$} $k -> p]} continue
            dict set expected [list 3 $p] [list 1 [dict get $row bytes]]
            incr sess [dict get $row bytes]
        }
        assert_equal $sb $sess
        deep_assert_prefixes $rep $expected
        # No prefix is longer than 128 bytes.
        foreach row [dict get $rep prefixes] { assert_lessthan_equal [string length [dict get $row prefix]] 128 }

        # The groups' allocator costs: their keys deleted one by one (one
        # DEL of many keys would leave the connection a query buffer).
        set maxdiff 0
        foreach {what n bytes pattern} {
            user 200 ub app:user:*
            sess 100 sb app:sess:*
            cache 300 cb cache:*
            plain 50 pb plainQzp*
        } {
            set keys [r keys $pattern]
            assert_equal $n [llength $keys]
            set truth 0
            set slack 0
            foreach k $keys {
                incr truth [deep_measure 9 $k]
                incr slack $::deep_measure_slack
            }
            set diff [expr {abs($truth - [set $bytes])}]
            if {$diff > $maxdiff} { set maxdiff $diff }
            assert_range [set $bytes] [expr {$truth - $n * $::deep_key_bound - $slack}] \
                [expr {$truth + $n * $::deep_key_bound}] \
                "prefix group $what: profile [set $bytes], allocator $truth"
        }
        if {$::verbose} { puts "prefix groups: largest |profile - allocator| $maxdiff bytes" }
        r debug dict-resizing 1
    } {OK} {needs:debug}

    test {Prefixes: depth 1 keeps only the first level, depth 0 none; several delimiter bytes; no delimiter} {
        r flushall sync
        for {set i 0} {$i < 50} {incr i} { r set [format svc/api:v1/obj%03d $i] [string repeat o [mp_raw_min]] }
        for {set i 0} {$i < 30} {incr i} { r set [format svc:%03d $i] [expr {1000000 + $i}] }
        r config set memory-profile-prefix-delimiters ":/"
        r config set memory-profile-prefix-depth 3
        mp_profile
        lassign [deep_enc string_raw] ok ob
        lassign [deep_enc string_int] ik ib
        assert_equal {50 30} [list $ok $ik]
        deep_assert_prefixes [deep_report count 0] [dict create \
            {1 svc/} [list 50 $ob] {1 svc:} [list 30 $ib] \
            {2 svc/api:} [list 50 $ob] {3 svc/api:v1/} [list 50 $ob]]
        r config set memory-profile-prefix-depth 1
        mp_profile
        deep_assert_prefixes [deep_report count 0] [dict create {1 svc/} [list 50 $ob] {1 svc:} [list 30 $ib]]
        # COUNT caps the rows of each depth.
        assert_equal 1 [llength [dict get [deep_report count 1] prefixes]]
        r config set memory-profile-prefix-depth 0
        mp_profile
        assert_equal {} [dict get [deep_report count 0] prefixes]
        # No delimiter at all: every key under the empty prefix.
        r config set memory-profile-prefix-depth 2
        r config set memory-profile-prefix-delimiters ""
        mp_profile
        deep_assert_prefixes [deep_report count 0] [dict create {1 {}} [list 80 [expr {$ob + $ib}]]]
        r config set memory-profile-prefix-delimiters ":"
        r config set memory-profile-prefix-depth 3
    }

    test {Prefixes past the capacity (Space-Saving): true top 20 reported, truth within [bytes - error_bytes, bytes]} {
        r flushall sync
        r config set memory-profile-prefix-capacity 100
        r config set memory-profile-prefix-depth 1
        # 1200 prefixes, 12x the capacity: z0000: .. z0029: hold
        # floor(2000 / (rank + 1)) keys of 300-byte strings (Zipf), the 1170
        # others one small integer each. Every key name has 11 bytes, so all
        # keys of an encoding have one size with jemalloc (one request, one
        # size class). Not with glibc's malloc, which hands out a whole free
        # chunk when the rest is too small to split off: some keys get 16
        # bytes more than the others, and which ones only the allocator
        # knows (5000 keys, more than the top keys can list). There each
        # prefix's truth is known to some bytes only, so the checks of rows
        # against it (within [bytes - error_bytes, bytes], exact where
        # error_bytes is 0) are jemalloc's; the top 20 by far, the rows'
        # order and their sums are checked on every allocator. Each true
        # top-20 prefix holds more than total / capacity, which Space-Saving
        # guarantees to keep.
        set c [valkey_client]
        set nkeys [dict create]
        for {set p 0} {$p < 1200} {incr p} {
            set n [expr {$p < 30 ? 2000 / ($p + 1) : 1}]
            dict set nkeys [format z%04d: $p] $n
            set args {}
            for {set j 0} {$j < $n} {incr j} {
                lappend args [format z%04d:%05d $p $j] [expr {$p < 30 ? [string repeat v 300] : 1000000 + $p}]
                if {[llength $args] >= 400} { $c mset {*}$args; set args {} }
            }
            if {[llength $args]} { $c mset {*}$args }
        }
        $c close
        mp_wait_single_client
        mp_profile
        lassign [deep_enc string_raw] rk rb
        lassign [deep_enc string_int] ik ib
        assert_equal 1170 $ik
        set uniform [mp_is_jemalloc]
        if {$uniform} {
            assert_equal 0 [expr {$rb % $rk}]
            assert_equal 0 [expr {$ib % $ik}]
        }
        set big [expr {$rb / $rk}]
        set small [expr {$ib / $ik}]
        set total [mp_info rdb_stats_bytes]
        set truth [dict create]
        dict for {p n} $nkeys {
            dict set truth $p [expr {$n * ([string range $p 1 4] < 30 ? $big : $small)}]
        }
        set top20 [lrange [lsort -stride 2 -index 1 -integer -decreasing $truth] 0 39]
        foreach {p t} $top20 { assert_morethan $t [expr {$total / 100}] }

        set rows [dict get [deep_report count 0] prefixes]
        assert_equal 100 [llength $rows]
        deep_check_prefix_order [deep_report count 0]
        set reported [dict create]
        set ksum 0
        set bsum 0
        set maxerr 0
        foreach row $rows {
            set p [dict get $row prefix]
            set b [dict get $row bytes]
            set e [dict get $row error_bytes]
            assert_equal 1 [dict get $row depth]
            assert {[dict exists $truth $p]}
            if {$uniform} {
                assert_range [dict get $truth $p] [expr {$b - $e}] $b "prefix $p: truth [dict get $truth $p], row $b - $e"
            }
            if {$e == 0} {
                if {$uniform} { assert_equal [dict get $truth $p] $b }
                assert_equal [dict get $nkeys $p] [dict get $row keys]
            }
            if {$e > $maxerr} { set maxerr $e }
            dict set reported $p 1
            incr ksum [dict get $row keys]
            incr bsum $b
        }
        foreach {p t} $top20 { assert {[dict exists $reported $p]} }
        # Each key is counted once in one row: the rows add up to the totals.
        assert_equal [mp_info rdb_stats_keys] $ksum
        assert_equal $total $bsum
        if {$::verbose} { puts "space-saving: 1200 prefixes, capacity 100, largest error_bytes $maxerr (total $total)" }
        r config set memory-profile-prefix-capacity 4096
        r config set memory-profile-prefix-depth 3
    }

    # ------------------------------------------------------------------
    # Transport
    # ------------------------------------------------------------------

    test {A report of several MB (6000 top keys of 1000-byte names, 21600 prefixes) is published whole, fast} {
        r flushall sync
        r config set memory-profile-top-keys 1000
        r config set memory-profile-prefix-capacity 65536
        r config set memory-profile-prefix-depth 3
        set c [valkey_client]
        set i 0
        foreach type {string list set zset hash stream} {
            for {set j 0} {$j < 1200} {incr j} {
                set k "Qxs$i:y$i:z$i:"
                append k [string repeat - [expr {1000 - [string length $k]}]]
                switch $type {
                    string { $c set $k $j }
                    list { $c rpush $k $j }
                    set { $c sadd $k $j }
                    zset { $c zadd $k $j m }
                    hash { $c hset $k f $j }
                    stream { $c xadd $k 1-1 f $j }
                }
                incr i
            }
        }
        $c close
        mp_wait_single_client
        assert_equal 7200 [r dbsize]
        mp_profile
        assert_equal ok [mp_info rdb_stats_status]

        # The child's last line (its CoW figures) to the parent's line.
        set child {}
        set parent {}
        foreach line [deep_log] {
            if {[string match {*Fork CoW for RDB*} $line]} { set child $line; set parent {} }
            if {$child ne {} && $parent eq {} && [string match {*RDB object stats:*} $line]} { set parent $line }
        }
        assert {$child ne {} && $parent ne {}}
        set ms [expr {[deep_log_ms $parent] - [deep_log_ms $child]}]
        if {$::verbose} { puts "big report: child's last log line to the parent's profile line: $ms ms" }
        assert_range $ms 0 999

        set rep [deep_report count 0]
        assert_equal 7200 [dict get $rep keys]
        set rows [deep_rows $rep topkeys]
        assert_equal 6000 [llength $rows]
        set bytes 0
        foreach row $rows {
            assert_equal 1000 [string length [dict get $row key]]
            assert {![dict exists $row key_len]}
            incr bytes [string length [dict get $row key]]
        }
        foreach type {string list set zset hash stream} {
            assert_equal 1000 [llength [lsearch -all -index 5 $rows $type]]
        }
        set prefixes [dict get $rep prefixes]
        assert_equal 21600 [llength $prefixes]
        set first [dict create]
        foreach row $prefixes {
            assert_equal 1 [dict get $row keys]
            assert_equal 0 [dict get $row error_bytes]
            if {[dict get $row depth] == 1} { dict set first [dict get $row prefix] [dict get $row bytes] }
            incr bytes [expr {20 + [string length [dict get $row prefix]]}]
        }
        # Each listed key's first-level prefix holds exactly its bytes.
        foreach row $rows {
            regexp {^(Qxs\d+:)} [dict get $row key] -> p
            assert_equal [dict get $row bytes] [dict get $first $p]
        }
        if {$::verbose} { puts "big report: names and prefixes alone [expr {$bytes / 1024}] KB" }
        assert_morethan $bytes 6000000
        r config set memory-profile-top-keys 32
        r config set memory-profile-prefix-capacity 4096
    }

    # ------------------------------------------------------------------
    # ACL and what INFO and the log hold
    # ------------------------------------------------------------------

    test {MEMORY PROFILE REPORT needs @admin; INFO, MEMORY DOCTOR and the log hold no key name or prefix} {
        r acl setuser deepuser on >deeppass +@all -@admin ~* &*
        set c [valkey_client]
        $c auth deepuser deeppass
        assert_error {*NOPERM*} {$c memory profile report}
        assert_error {*NOPERM*} {$c memory profile report count 0}
        # INFO stays readable for such a user.
        assert_match {*rdb_stats_status:ok*} [$c info rdb_stats]
        $c close
        r acl deluser deepuser

        # A profile of keys named like all of the above.
        r flushall sync
        foreach k [list $longname $binname Qzs:str:1 app:user:0001 app:sess:001:tok cache:0001 svc/api:v1/obj001 z0001:00001 Qxs1:y1:z1:] {
            r set $k [string repeat x 5000]
        }
        foreach hide {no yes} {
            r config set hide-user-data-from-log $hide
            mp_profile
            set text "[r info everything]\n[r memory doctor]\n[join [deep_log] \n]"
            foreach secret $::deep_secrets {
                assert_equal -1 [string first $secret $text] "'$secret' in INFO, MEMORY DOCTOR or the log (hide-user-data-from-log $hide)"
            }
        }
        r config set hide-user-data-from-log no
    }
}

# ------------------------------------------------------------------
# Slots (cluster mode)
# ------------------------------------------------------------------

start_cluster 1 0 [list tags {"memprofile external:skip cluster"} overrides $deep_overrides] {
    test {Slots: keys per slot equal CLUSTER COUNTKEYSINSLOT, bytes the sum of their keys' sizes} {
        r flushall sync
        r config set memory-profile-top-keys 1000
        set c [valkey_client]
        # 60 hash tags, 1 to 4 keys each, of several types and sizes.
        set names {}
        for {set t 0} {$t < 60} {incr t} {
            for {set j 0} {$j <= $t % 4} {incr j} {
                set k "{Qzc$t}:$j"
                switch [expr {($t + $j) % 3}] {
                    0 { $c set $k [string repeat s [expr {50 + $t * 37 + $j * 11}]] }
                    1 { $c hset $k f $t g [string repeat h $j] }
                    2 { $c rpush $k {*}[lrepeat [expr {1 + $t}] e$j] }
                }
                lappend names $k
            }
        }
        $c close
        mp_wait_single_client
        mp_profile
        set rep [deep_report count 0]
        assert_equal ok [dict get $rep status]
        set keys [llength $names]
        assert_equal $keys [r dbsize]
        assert_equal $keys [dict get $rep keys]
        # Every key is a top key here: its size, by slot.
        set rows [deep_rows $rep topkeys]
        assert_equal $keys [llength $rows]
        set want [dict create]
        foreach row $rows {
            set slot [r cluster keyslot [dict get $row key]]
            dict incr want $slot:keys
            dict incr want $slot:bytes [dict get $row bytes]
            dict set want $slot:seen 1
        }
        set slots [dict get $rep slots]
        set ksum 0
        set bsum 0
        set prev -1
        set listed [dict create]
        foreach row $slots {
            set slot [dict get $row slot]
            assert {![dict exists $listed $slot]}
            dict set listed $slot 1
            assert_equal [r cluster countkeysinslot $slot] [dict get $row keys] "keys of slot $slot"
            assert_equal [dict get $want $slot:keys] [dict get $row keys]
            assert_equal [dict get $want $slot:bytes] [dict get $row bytes] "bytes of slot $slot"
            if {$prev != -1} { assert_lessthan_equal [dict get $row bytes] $prev }
            set prev [dict get $row bytes]
            incr ksum [dict get $row keys]
            incr bsum [dict get $row bytes]
        }
        # Every slot with keys is listed.
        foreach k $names { assert {[dict exists $listed [r cluster keyslot $k]]} }
        assert_equal [dict get $rep keys] $ksum
        assert_equal [dict get $rep bytes] $bsum
        assert_equal [mp_info rdb_stats_bytes] $bsum
        # COUNT caps the slot rows.
        assert_equal [lrange $slots 0 2] [dict get [deep_report count 3] slots]
        r config set memory-profile-top-keys 32
    }
}
