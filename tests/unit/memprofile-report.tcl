# MEMORY PROFILE REPORT: the reply's shape under RESP2 and RESP3, bad forms,
# the ACL, COMMAND DOCS, and the figures against what the test created.

source tests/helpers/memprofile-util.tcl

set ::mp_report_overrides {
    save ""
    enable-debug-command yes
}

set ::mp_types {string list set zset hash stream module}
set ::mp_encodings {string_int string_embstr string_raw list_listpack list_quicklist set_intset set_listpack
    set_hashtable zset_listpack zset_skiplist hash_listpack hash_hashtable stream_stream}
set ::mp_ttl_buckets {none expired 1h 1d 7d later}
set ::mp_breakdown {mem_kv_user_data mem_kv_expiration mem_kv_hash_metadata mem_um_kvstore mem_um_clients_io
    mem_sys_aof_buffer mem_sys_repl_buffer mem_sys_repl_backlog mem_sys_repl_pending mem_sys_slot_import
    mem_sys_slot_export mem_rss mem_startup mem_other_allocations mem_allocator_frag mem_allocator_dirty mem_allocator_muzzy
    mem_allocator_retained mem_rss_other}
set ::mp_fields {status source time duration_ms used_memory keys bytes types encodings dbs groups ttl histograms
    topkeys prefixes breakdown}

# MEMORY PROFILE REPORT with 'args'; the reply as a dict (a RESP3 map and a
# RESP2 flat array read the same way).
proc mp_report {args} {
    r memory profile report {*}$args
}

# One field of every element of a list of maps.
proc mp_column {rows field} {
    set out {}
    foreach row $rows { lappend out [dict get $row $field] }
    return $out
}

proc mp_assert_non_increasing {values what} {
    set prev {}
    foreach v $values {
        if {$prev ne {}} { assert {$v <= $prev} }
        set prev $v
    }
}

# The raw reply of MEMORY PROFILE REPORT on a fresh client speaking
# protocol 'proto', as a tree: an aggregate is {<type char> {children}}
# (a map's children alternate names and values), a scalar {<type char>
# <text>}. Only for replies without CR/LF in names.
proc mp_raw_read {rr {line {}}} {
    if {$line eq {}} { set line [$rr read] }
    set t [string index $line 0]
    set n [string range $line 1 end]
    switch -- $t {
        * - % {
            set m [expr {$t eq "%" ? 2 * $n : $n}]
            set items {}
            for {set i 0} {$i < $m} {incr i} { lappend items [mp_raw_read $rr] }
            return [list $t $items]
        }
        $ { return [list $t [$rr read]] }
        default { return [list $t $n] }
    }
}

proc mp_raw_report {proto args} {
    set rr [valkey_client]
    $rr hello $proto
    $rr readraw 1
    set tree [mp_raw_read $rr [$rr memory profile report {*}$args]]
    $rr close
    return $tree
}

# Every aggregate of a raw tree that holds names and values (the report,
# a {keys, bytes} pair, a list row) must be a map ('%') under RESP3 and an
# array ('*') of twice the length under RESP2: checks the top level and the
# first level of nesting of each field.
proc mp_assert_raw_maps {tree proto} {
    set map [expr {$proto == 3 ? "%" : "*"}]
    lassign $tree t items
    assert_equal $map $t
    foreach {name value} $items {
        set field [lindex $name 1]
        lassign $value vt vitems
        switch -- $field {
            types - encodings - dbs - groups - ttl - breakdown - histograms {
                assert_equal $map $vt "$field"
                if {$field ni {breakdown histograms}} {
                    foreach {n pair} $vitems { assert_equal $map [lindex $pair 0] "$field [lindex $n 1]" }
                }
                if {$field eq "histograms"} {
                    foreach {n buckets} $vitems {
                        assert_equal * [lindex $buckets 0]
                        foreach b [lindex $buckets 1] { assert_equal $map [lindex $b 0] "histogram row" }
                    }
                }
            }
            topkeys - prefixes - slots {
                assert_equal * $vt "$field"
                foreach row $vitems { assert_equal $map [lindex $row 0] "$field row" }
            }
            default {
                assert {$vt eq ":" || $vt eq "\$"}
            }
        }
    }
}

# The checks that hold for any report: the fields in order, every type,
# encoding, TTL bucket and breakdown figure present, totals consistent.
proc mp_assert_report_shape {rep {cluster 0}} {
    set fields [lrange $::mp_fields 0 end]
    if {$cluster} { set fields [linsert $fields end-1 slots] }
    assert_equal $fields [dict keys $rep]
    assert_equal $::mp_types [dict keys [dict get $rep types]]
    assert_equal [lrange $::mp_encodings 0 end] [dict keys [dict get $rep encodings]]
    assert_equal $::mp_ttl_buckets [dict keys [dict get $rep ttl]]
    assert_equal [lrange $::mp_breakdown 0 end] [dict keys [dict get $rep breakdown]]
    foreach section {types encodings dbs ttl} {
        dict for {name pair} [dict get $rep $section] { assert_equal {keys bytes} [dict keys $pair] "$section $name" }
    }
    # Types, TTL buckets and dbs each partition the keyspace.
    foreach section {types ttl dbs} {
        set k 0
        set b 0
        dict for {name pair} [dict get $rep $section] {
            incr k [dict get $pair keys]
            incr b [dict get $pair bytes]
        }
        assert_equal [dict get $rep keys] $k "$section keys"
        assert_equal [dict get $rep bytes] $b "$section bytes"
    }
    assert_equal [dict get $rep bytes] [dict get $rep breakdown mem_kv_user_data]
}

start_server [list tags {"memprofile external:skip"} overrides $::mp_report_overrides] {
    test {MEMORY PROFILE REPORT before any profile: status none, zero figures, the full shape} {
        set rep [mp_report]
        mp_assert_report_shape $rep
        assert_equal none [dict get $rep status]
        # INFO rdb_stats says the same: no source before the first profile.
        assert_equal none [mp_info rdb_stats_status]
        assert_equal none [mp_info rdb_stats_source]
        assert_equal none [dict get $rep source]
        foreach f {time duration_ms used_memory keys bytes} { assert_equal 0 [dict get $rep $f] $f }
        foreach section {types encodings ttl} {
            dict for {name pair} [dict get $rep $section] { assert_equal {keys 0 bytes 0} $pair "$section $name" }
        }
        dict for {name v} [dict get $rep breakdown] { assert_equal 0 $v $name }
        foreach section {dbs groups histograms topkeys prefixes} { assert_equal {} [dict get $rep $section] $section }
        # Same content under RESP3.
        r hello 3
        assert_equal $rep [mp_report]
        r hello 2
    }

    test {MEMORY PROFILE REPORT: maps under RESP3, flat arrays under RESP2 (no profile)} {
        set t2 [mp_raw_report 2]
        assert_equal * [lindex $t2 0]
        assert_equal [expr {2 * [llength $::mp_fields]}] [llength [lindex $t2 1]]
        mp_assert_raw_maps $t2 2
        set t3 [mp_raw_report 3]
        assert_equal % [lindex $t3 0]
        assert_equal [expr {2 * [llength $::mp_fields]}] [llength [lindex $t3 1]]
        mp_assert_raw_maps $t3 3
    }

    test {MEMORY PROFILE: bad forms} {
        assert_error {*wrong number of arguments for 'memory|profile'*} {r memory profile}
        # An unknown verb is answered as upstream's container subcommands
        # answer bad arguments (addReplySubcommandSyntaxError()).
        catch {r function flush sync extra} upstream
        set expected [string map {'flush' 'profile' FUNCTION MEMORY} $upstream]
        assert_equal {ERR unknown subcommand or wrong number of arguments for 'profile'. Try MEMORY HELP.} $expected
        foreach args {nosuchverb {reportx count 1} {Start2}} {
            catch {r memory profile {*}$args} e
            assert_equal $expected $e $args
        }
        foreach args {
            {count} {type} {count 1 count 2} {type hash type set} {count 1 type hash count 1}
            {foo} {count 1 foo} {type hash foo bar} {1}
        } {
            assert_error {*syntax error*} [list r memory profile report {*}$args]
        }
        assert_error {*value is out of range*} {r memory profile report count -1}
        assert_error {*not an integer or out of range*} {r memory profile report count x}
        assert_error {*not an integer or out of range*} {r memory profile report count 1.5}
        assert_error {*not an integer or out of range*} {r memory profile report count 99999999999999999999}
        assert_error {*unknown type 'blob'*string, list, set, zset, hash, stream, module*} \
            {r memory profile report type blob}
        # The good forms, in any order and any case.
        foreach args {{} {count 0} {COUNT 3} {type hash} {TYPE Module} {count 2 type zset} {type zset count 2}} {
            assert_equal none [dict get [mp_report {*}$args] status] "$args"
        }
    }

    test {MEMORY PROFILE is in MEMORY HELP, COMMAND DOCS and COMMAND INFO} {
        assert_match {*PROFILE REPORT \[COUNT <count>\] \[TYPE <type>\]*} [r memory help]
        set docs [dict get [r command docs memory|profile] memory|profile]
        assert_equal "[s valkey_version]-memprofile" [dict get $docs since]
        assert_equal server [dict get $docs group]
        # MEMORY PROFILE <START | CANCEL | REPORT | HISTORY> [COUNT count] [TYPE type]
        lassign [dict get $docs arguments] operation count type
        assert_equal oneof [dict get $operation type]
        assert_equal {START CANCEL REPORT HISTORY} [mp_column [dict get $operation arguments] token]
        set opts [list $count $type]
        assert_equal {COUNT TYPE} [mp_column $opts token]
        assert_equal {integer string} [mp_column $opts type]
        foreach o $opts { assert_match {*optional*} [dict get $o flags] }
        assert_match {*PROFILE HISTORY \[COUNT <count>\]*} [r memory help]
        set info [lindex [r command info memory|profile] 0]
        assert_equal memory|profile [lindex $info 0]
        assert_equal -3 [lindex $info 1]
        assert_match {*admin*} [lindex $info 2]
        assert_match {*@admin*} [lindex $info 6]
    }

    test {MEMORY PROFILE needs @admin: NOPERM without it} {
        r acl setuser mpnoadmin on nopass +@all -@admin
        r acl setuser mpadmin on nopass +@all
        set c [valkey_client]
        $c auth mpnoadmin x
        assert_error {*NOPERM*memory|profile*} {$c memory profile report}
        # The other MEMORY subcommands stay available to it.
        assert_match {*peak.allocated*} [$c memory stats]
        $c auth mpadmin x
        assert_equal none [dict get [$c memory profile report] status]
        $c close
        r acl deluser mpnoadmin mpadmin
    }

    # The dataset: six large keys of very different sizes, one per type
    # (stream and set smaller than the rest), small strings, TTL buckets,
    # keys already expired at the fork, and two other dbs.
    proc mp_fill_dataset {} {
        r flushall
        r debug set-active-expire 0
        r select 9
        r set big:str [string repeat x 1000000]
        set elems {}
        for {set i 0} {$i < 5000} {incr i} { lappend elems [format e%048d $i] }
        r rpush big:list {*}$elems
        set fields {}
        for {set i 0} {$i < 800} {incr i} { lappend fields field-$i [string repeat v 40] }
        r hset big:hash {*}$fields
        set members {}
        for {set i 0} {$i < 400} {incr i} { lappend members $i member-$i }
        r zadd big:zset {*}$members
        r expire big:zset 3600
        for {set i 0} {$i < 20} {incr i} { r xadd big:stream * f v$i }
        set members {}
        for {set i 0} {$i < 100} {incr i} { lappend members m$i }
        r sadd big:set {*}$members
        for {set i 0} {$i < 30} {incr i} { r set small:$i v$i }
        for {set i 0} {$i < 20} {incr i} { r set sess:$i v ex 600 }
        for {set i 0} {$i < 10} {incr i} { r set cache:$i v ex 7200 }
        for {set i 0} {$i < 5} {incr i} { r set job:$i v ex 200000 }
        for {set i 0} {$i < 3} {incr i} { r set arch:$i v ex 1000000 }
        for {set i 0} {$i < 4} {incr i} { r set gone:$i v px 1 }
        r select 10
        for {set i 0} {$i < 7} {incr i} { r set other:$i v }
        r select 11
        for {set i 0} {$i < 3} {incr i} { r hset third:$i f v }
        r select 9
        after 20
    }

    test {A failed first profile: status err and source none, in INFO and the REPORT alike} {
        r config set memory-profile-report-fault 1
        mp_profile
        r config set memory-profile-report-fault 0
        set rep [mp_report]
        assert_equal err [mp_info rdb_stats_status]
        assert_equal err [dict get $rep status]
        assert_equal none [mp_info rdb_stats_source]
        assert_equal none [dict get $rep source]
    }

    test {MEMORY PROFILE REPORT after a profile: status, figures as INFO rdb_stats has them} {
        mp_fill_dataset
        mp_profile
        set rep [mp_report]
        set info [mp_info_dict]
        mp_assert_report_shape $rep
        assert_equal ok [dict get $rep status]
        assert_equal bgsave [dict get $rep source]
        assert_equal [dict get $info rdb_stats_source] [dict get $rep source]
        assert_equal [dict get $info rdb_stats_last_time] [dict get $rep time]
        assert_equal [dict get $info rdb_stats_duration_ms] [dict get $rep duration_ms]
        assert_equal [dict get $info rdb_stats_used_memory] [dict get $rep used_memory]
        assert_equal [dict get $info rdb_stats_keys] [dict get $rep keys]
        assert_equal [dict get $info rdb_stats_bytes] [dict get $rep bytes]
        assert_equal [expr {6 + 30 + 20 + 10 + 5 + 3 + 4 + 7 + 3}] [dict get $rep keys]
        foreach t $::mp_types {
            assert_equal [dict get $info rdb_stats_${t}_keys] [dict get $rep types $t keys] $t
            assert_equal [dict get $info rdb_stats_${t}_bytes] [dict get $rep types $t bytes] $t
        }
        foreach e $::mp_encodings {
            assert_equal [dict get $info rdb_stats_${e}_keys] [dict get $rep encodings $e keys] $e
            assert_equal [dict get $info rdb_stats_${e}_bytes] [dict get $rep encodings $e bytes] $e
        }
        foreach m $::mp_breakdown { assert_equal [dict get $info $m] [dict get $rep breakdown $m] $m }
        # No cluster: no slots field (checked by the shape above).
        assert {![dict exists $rep slots]}
    }

    test {MEMORY PROFILE REPORT: topkeys are the true largest keys, largest first} {
        set rep [mp_report]
        set top [dict get $rep topkeys]
        assert_equal 10 [llength $top]
        assert_equal {big:str big:list big:hash big:zset big:stream big:set} [lrange [mp_column $top key] 0 5]
        assert_equal {string list hash zset stream set} [lrange [mp_column $top type] 0 5]
        assert_equal {raw quicklist hashtable skiplist stream listpack} [lrange [mp_column $top encoding] 0 5]
        mp_assert_non_increasing [mp_column $top bytes] topkeys
        set byname [dict create]
        foreach k $top {
            assert_equal {key db type encoding bytes elements ttl_ms} [dict keys $k]
            dict set byname [dict get $k key] $k
        }
        foreach k [lrange $top 0 5] { assert_equal 9 [dict get $k db] }
        # Elements: string length, collection length, stream entries.
        assert_equal 1000000 [dict get $byname big:str elements]
        assert_equal 5000 [dict get $byname big:list elements]
        assert_equal 800 [dict get $byname big:hash elements]
        assert_equal 400 [dict get $byname big:zset elements]
        assert_equal 20 [dict get $byname big:stream elements]
        assert_equal 100 [dict get $byname big:set elements]
        # TTL left at the fork.
        assert_equal -1 [dict get $byname big:str ttl_ms]
        assert_range [dict get $byname big:zset ttl_ms] 3000000 3600000
        # The list, the sorted set, the stream and the set are each alone in
        # their type: their bytes are the type's whole figure.
        foreach {name t} {big:list list big:zset zset big:stream stream big:set set} {
            assert_equal [dict get $rep types $t bytes] [dict get $byname $name bytes] $t
        }
        # Everything outside the six large keys is smaller than each of them.
        foreach k [lrange $top 6 end] { assert {[dict get $k bytes] < [dict get $byname big:set bytes]} }
        # COUNT 0: every key the profile kept, memory-profile-top-keys (32)
        # per type at most.
        set all [dict get [mp_report count 0] topkeys]
        set kept 0
        foreach t $::mp_types { incr kept [expr {min(32, [dict get $rep types $t keys])}] }
        assert_equal 80 [dict get $rep types string keys]
        assert_equal $kept [llength $all]
        mp_assert_non_increasing [mp_column $all bytes] {topkeys count 0}
        assert_equal [lrange $all 0 9] $top
    }

    test {MEMORY PROFILE REPORT: COUNT and TYPE} {
        set top [dict get [mp_report count 3] topkeys]
        assert_equal {big:str big:list big:hash} [mp_column $top key]
        set hashes [dict get [mp_report type hash count 0] topkeys]
        assert_equal 4 [llength $hashes]
        assert_equal big:hash [dict get [lindex $hashes 0] key]
        assert_equal {hash hash hash hash} [mp_column $hashes type]
        assert_equal [lsort {third:0 third:1 third:2}] [lsort [lrange [mp_column $hashes key] 1 end]]
        assert_equal {11 11 11} [lrange [mp_column $hashes db] 1 end]
        set strings [dict get [mp_report TYPE String COUNT 2] topkeys]
        assert_equal 2 [llength $strings]
        assert_equal big:str [dict get [lindex $strings 0] key]
        assert_equal string [dict get [lindex $strings 1] type]
        assert_equal {} [dict get [mp_report type module] topkeys]
        # TYPE filters only the top keys; COUNT does not cap histograms.
        set rep [mp_report type module count 1]
        assert_equal [dict get [mp_report count 0] histograms] [dict get $rep histograms]
        assert_equal 3 [dict size [dict get $rep dbs]]
    }

    test {MEMORY PROFILE REPORT: dbs equal DBSIZE per db} {
        set dbs [dict get [mp_report] dbs]
        assert_equal {db9 db10 db11} [dict keys $dbs]
        foreach db {9 10 11} {
            r select $db
            assert_equal [r dbsize] [dict get $dbs db$db keys] "db$db"
        }
        r select 9
    }

    test {MEMORY PROFILE REPORT: TTL buckets match the TTLs set} {
        set ttl [dict get [mp_report] ttl]
        # big:zset expires in an hour, with the 20 sessions.
        assert_equal 21 [dict get $ttl 1h keys]
        assert_equal 10 [dict get $ttl 1d keys]
        assert_equal 5 [dict get $ttl 7d keys]
        assert_equal 3 [dict get $ttl later keys]
        assert_equal 4 [dict get $ttl expired keys]
        assert_equal [expr {5 + 30 + 7 + 3}] [dict get $ttl none keys]
        assert_equal [mp_info mem_kv_user_data] [dict get [mp_report] bytes]
        r debug set-active-expire 1
    }

    test {MEMORY PROFILE REPORT: histogram sums equal the type totals of INFO rdb_stats} {
        set hist [dict get [mp_report] histograms]
        set with_keys {}
        foreach t $::mp_types { if {[mp_info rdb_stats_${t}_keys] > 0} { lappend with_keys $t } }
        assert_equal $with_keys [dict keys $hist]
        dict for {t buckets} $hist {
            set k 0
            set b 0
            set prev 0
            foreach bucket $buckets {
                assert_equal {le keys bytes} [dict keys $bucket]
                set le [dict get $bucket le]
                set n [dict get $bucket keys]
                set sum [dict get $bucket bytes]
                # A power of two, ascending; its keys lie in (le/2, le].
                assert_equal 0 [expr {$le & ($le - 1)}] "$t le $le"
                assert {$le > $prev}
                assert {$n > 0}
                assert {$sum <= $n * $le && 2 * $sum > $n * $le}
                set prev $le
                incr k $n
                incr b $sum
            }
            assert_equal [mp_info rdb_stats_${t}_keys] $k "$t keys"
            assert_equal [mp_info rdb_stats_${t}_bytes] $b "$t bytes"
        }
    }

    test {MEMORY PROFILE REPORT: maps under RESP3, flat arrays under RESP2 (with a profile)} {
        mp_assert_raw_maps [mp_raw_report 2 count 0] 2
        mp_assert_raw_maps [mp_raw_report 3 count 0] 3
        r hello 3
        set rep3 [mp_report count 0]
        r hello 2
        assert_equal [mp_report count 0] $rep3
    }

    test {MEMORY PROFILE REPORT: prefixes at depths 1 to 3} {
        r flushall
        for {set i 0} {$i < 8} {incr i} { r set a:b:c:$i v }
        for {set i 0} {$i < 4} {incr i} { r set a:b:d:$i v }
        for {set i 0} {$i < 2} {incr i} { r set a:x:$i v }
        for {set i 0} {$i < 3} {incr i} { r set q:$i v }
        r set plain1 v
        r set plain2 v
        mp_profile
        set rep [mp_report count 0]
        set rows [dict get $rep prefixes]
        set got {}
        set bytes [dict create]
        foreach row $rows {
            assert_equal {prefix depth keys bytes error_bytes} [dict keys $row]
            assert_equal 0 [dict get $row error_bytes]
            lappend got [list [dict get $row depth] [dict get $row prefix] [dict get $row keys]]
            dict set bytes [dict get $row depth] [dict get $row prefix] [dict get $row bytes]
        }
        # Depth ascending, largest first within a depth.
        assert_equal [lsort -integer [mp_column $rows depth]] [mp_column $rows depth]
        foreach d {1 2 3} {
            mp_assert_non_increasing [dict values [dict get $bytes $d]] "depth $d"
        }
        assert_equal [lsort {{1 a: 14} {1 q: 3} {1 {} 2} {2 a:b: 12} {2 a:x: 2} {3 a:b:c: 8} {3 a:b:d: 4}}] [lsort $got]
        # Each depth-1 row is the sum of its rows one level down, and depth 1
        # covers the whole keyspace.
        assert_equal [dict get $bytes 1 a:] [expr {[dict get $bytes 2 a:b:] + [dict get $bytes 2 a:x:]}]
        assert_equal [dict get $bytes 2 a:b:] [expr {[dict get $bytes 3 a:b:c:] + [dict get $bytes 3 a:b:d:]}]
        assert_equal [dict get $rep bytes] [tcl::mathop::+ {*}[dict values [dict get $bytes 1]]]
        # COUNT caps each depth: the largest row of each.
        set first [dict get [mp_report count 1] prefixes]
        assert_equal {{1 a:} {2 a:b:} {3 a:b:c:}} [lmap r $first {list [dict get $r depth] [dict get $r prefix]}]
        assert_equal 6 [llength [dict get [mp_report count 2] prefixes]]
    }

    test {MEMORY PROFILE REPORT: binary-safe names, cut names carry key_len} {
        r flushall
        set bin "bin\x00\r\n:key\xff"
        r set $bin [string repeat b 200000]
        set long [string repeat L 2000]
        r set $long [string repeat l 100000]
        r set small v
        mp_profile
        set top [dict get [mp_report] topkeys]
        assert_equal 3 [llength $top]
        assert_equal $bin [dict get [lindex $top 0] key]
        assert {![dict exists [lindex $top 0] key_len]}
        assert_equal {key key_len db type encoding bytes elements ttl_ms} [dict keys [lindex $top 1]]
        assert_equal [string range $long 0 1023] [dict get [lindex $top 1] key]
        assert_equal 2000 [dict get [lindex $top 1] key_len]
        assert_equal small [dict get [lindex $top 2] key]
        set prefixes [mp_column [dict get [mp_report count 0] prefixes] prefix]
        assert {[lsearch -exact $prefixes "bin\x00\r\n:"] >= 0}
        # The same under RESP3.
        r hello 3
        assert_equal $bin [dict get [lindex [dict get [mp_report] topkeys] 0] key]
        r hello 2
    }
}

start_cluster 1 0 [list tags {"memprofile external:skip cluster"} overrides {save ""}] {
    test {MEMORY PROFILE REPORT in cluster mode: slots, largest first, capped by COUNT} {
        r flushall
        # {D}: one large key; {A} five keys, {B} three, {C} one, all alike.
        r set "{D}big" [string repeat x 100000]
        foreach {tag n} {A 5 B 3 C 1} {
            for {set i 0} {$i < $n} {incr i} { r set "{$tag}k$i" [string repeat y 100] }
        }
        mp_profile
        set rep [mp_report count 0]
        mp_assert_report_shape $rep 1
        assert_equal {db0} [dict keys [dict get $rep dbs]]
        set slots [dict get $rep slots]
        set expected {}
        foreach tag {D A B C} { lappend expected [r cluster keyslot "{$tag}"] }
        assert_equal $expected [mp_column $slots slot]
        foreach row $slots {
            assert_equal {slot keys bytes} [dict keys $row]
            assert_equal [r cluster countkeysinslot [dict get $row slot]] [dict get $row keys]
        }
        assert_equal {1 5 3 1} [mp_column $slots keys]
        mp_assert_non_increasing [mp_column $slots bytes] slots
        assert_equal [dict get $rep bytes] [tcl::mathop::+ {*}[mp_column $slots bytes]]
        assert_equal [lrange $slots 0 1] [dict get [mp_report count 2] slots]
        # Default COUNT 10 keeps all four.
        assert_equal $slots [dict get [mp_report] slots]
    }
}
