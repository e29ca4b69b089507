# MEMORY PROFILE HISTORY and the growth part of MEMORY DOCTOR, against
# independent truths: DBSIZE, INFO rdb_stats and MEMORY PROFILE REPORT
# recorded right after each profile, and the difference of the figures of
# two profiles with known growth by prefix.

source tests/helpers/memprofile-util.tcl

set ::mp_summary_fields {time time_ms source used_memory rss keys bytes types encodings dbs groups ttl prefixes}

proc mp_history {args} {
    r memory profile history {*}$args
}

proc mp_column {rows field} {
    set out {}
    foreach row $rows { lappend out [dict get $row $field] }
    return $out
}

# bytesToHuman() of the server: B below 1K, else two decimals of K, M, G.
proc mp_human {n} {
    if {$n < 1024} { return "${n}B" }
    foreach unit {K M G T P} {
        set n [expr {double($n) / 1024}]
        if {$n < 1024 || $unit eq "P"} { return [format %.2f%s $n $unit] }
    }
}

# A signed byte count as MEMORY DOCTOR prints it.
proc mp_delta {n} {
    if {$n < 0} { return "-[mp_human [expr {-$n}]]" }
    return "+[mp_human $n]"
}

# What the tests record right after each profile: INFO rdb_stats as a
# dict, MEMORY PROFILE REPORT COUNT 0, and DBSIZE of each db.
proc mp_record {dbs} {
    set sizes [dict create]
    foreach db $dbs {
        r select $db
        dict set sizes $db [r dbsize]
    }
    r select 9
    dict create info [mp_info_dict] report [r memory profile report count 0] dbsize $sizes
}

# The depth-1 prefix rows of a report, at most 'max'.
proc mp_depth1 {report {max 20}} {
    set rows {}
    foreach row [dict get $report prefixes] {
        if {[dict get $row depth] == 1 && [llength $rows] < $max} { lappend rows $row }
    }
    return $rows
}

# A summary of the history equals what was recorded at its profile.
proc mp_assert_summary {sum rec what} {
    set info [dict get $rec info]
    set rep [dict get $rec report]
    assert_equal $::mp_summary_fields [dict keys $sum] "$what fields"
    assert_equal [dict get $info rdb_stats_last_time] [dict get $sum time] "$what time"
    assert_equal [dict get $sum time] [expr {[dict get $sum time_ms] / 1000}] "$what time_ms"
    assert_equal bgsave [dict get $sum source] "$what source"
    assert_equal [dict get $info rdb_stats_source] [dict get $sum source] "$what source"
    assert_equal [dict get $info rdb_stats_used_memory] [dict get $sum used_memory] "$what used_memory"
    assert_equal [dict get $info mem_rss] [dict get $sum rss] "$what rss"
    assert_equal [dict get $info rdb_stats_keys] [dict get $sum keys] "$what keys"
    assert_equal [dict get $info rdb_stats_bytes] [dict get $sum bytes] "$what bytes"
    set total 0
    dict for {db n} [dict get $rec dbsize] { incr total $n }
    assert_equal $total [dict get $sum keys] "$what keys = DBSIZE"
    foreach t {string list set zset hash stream module} {
        assert_equal [dict get $info rdb_stats_${t}_keys] [dict get $sum types $t keys] "$what $t keys"
        assert_equal [dict get $info rdb_stats_${t}_bytes] [dict get $sum types $t bytes] "$what $t bytes"
    }
    dict for {e pair} [dict get $sum encodings] {
        assert_equal [dict get $info rdb_stats_${e}_keys] [dict get $pair keys] "$what $e keys"
        assert_equal [dict get $info rdb_stats_${e}_bytes] [dict get $pair bytes] "$what $e bytes"
    }
    dict for {b pair} [dict get $sum ttl] {
        assert_equal [dict get $info rdb_stats_ttl_${b}_keys] [dict get $pair keys] "$what ttl $b keys"
        assert_equal [dict get $info rdb_stats_ttl_${b}_bytes] [dict get $pair bytes] "$what ttl $b bytes"
    }
    foreach f {keys bytes types encodings dbs ttl} {
        assert_equal [dict get $rep $f] [dict get $sum $f] "$what $f = REPORT"
    }
    dict for {db n} [dict get $rec dbsize] {
        if {$n} { assert_equal $n [dict get $sum dbs db$db keys] "$what db$db = DBSIZE" }
    }
    assert_equal [mp_depth1 $rep] [dict get $sum prefixes] "$what prefixes"
}

# The "Growth" part of MEMORY DOCTOR, empty when absent.
proc mp_growth_part {} {
    set doc [r memory doctor]
    set i [string first "\nGrowth (" $doc]
    if {$i < 0} { return {} }
    set part [string range $doc [expr {$i + 1}] end]
    set j [string first "\n\n" $part]
    if {$j >= 0} { set part [string range $part 0 $j] }
    return $part
}

# The type, encoding and first-level prefix MEMORY DOCTOR should name for
# the change from recorded report 'old' to 'new' (the largest absolute
# change, the first on a tie), with their changes; the prefix by its rank in
# the newer report's first 20 depth-1 rows.
proc mp_expected_most {old new} {
    set best {}
    foreach section {types encodings} {
        set name {}
        set d 0
        dict for {k pair} [dict get $new $section] {
            set delta [expr {[dict get $pair bytes] - [dict get $old $section $k bytes]}]
            if {$name eq {} || abs($delta) > abs($d)} {
                set name $k
                set d $delta
            }
        }
        lappend best $name $d
    }
    set before [dict create]
    foreach row [mp_depth1 $old] { dict set before [dict get $row prefix] [dict get $row bytes] }
    set rank 0
    set i 0
    set d 0
    foreach row [mp_depth1 $new] {
        incr i
        set b [expr {[dict exists $before [dict get $row prefix]] ? [dict get $before [dict get $row prefix]] : 0}]
        set delta [expr {[dict get $row bytes] - $b}]
        if {abs($delta) > abs($d)} {
            set rank $i
            set d $delta
        }
    }
    # A prefix the newer profile no longer lists counts with all its bytes.
    set listed [dict create]
    foreach row [mp_depth1 $new] { dict set listed [dict get $row prefix] 1 }
    set gone 0
    set j 0
    foreach row [mp_depth1 $old] {
        incr j
        if {[dict exists $listed [dict get $row prefix]]} continue
        set delta [expr {-[dict get $row bytes]}]
        if {abs($delta) > abs($d)} {
            set rank $j
            set d $delta
            set gone 1
        }
    }
    lappend best $rank $d $gone
}

# The growth line MEMORY DOCTOR should print from recorded profile 'old' to
# 'new', computed from INFO rdb_stats.
proc mp_expected_growth {since old new} {
    set oi [dict get $old info]
    set ni [dict get $new info]
    set secs [expr {[dict get $ni rdb_stats_last_time] - [dict get $oi rdb_stats_last_time]}]
    set user [expr {[dict get $ni rdb_stats_bytes] - [dict get $oi rdb_stats_bytes]}]
    set rss [expr {[dict get $ni mem_rss] - [dict get $oi mem_rss]}]
    set line " * Since $since ($secs s earlier): user data [mp_delta $user]"
    if {$secs > 0} { append line " ([mp_delta [expr {int(double($user) * 3600 / $secs)}]] per hour)" }
    append line ", RSS [mp_delta $rss].\n"
    lassign [mp_expected_most [dict get $old report] [dict get $new report]] t td e ed rank pd gone
    append line "   Most of it: type $t [mp_delta $td], encoding $e [mp_delta $ed]"
    if {$rank && !$gone} { append line ", the first-level prefix ranked $rank [mp_delta $pd]" }
    if {$rank && $gone} { append line ", the first-level prefix ranked $rank before and no longer listed [mp_delta $pd]" }
    append line ".\n"
    set used [expr {[dict get $ni rdb_stats_used_memory] - [dict get $oi rdb_stats_used_memory]}]
    if {$rss > 0 && $rss > $used + [dict get $ni mem_rss] / 20} {
        append line "   RSS changed by [mp_delta $rss] while used_memory changed by [mp_delta $used]"
    }
    return $line
}

# MEMORY DOCTOR never names a key or a prefix (it is not an admin command).
proc mp_assert_no_names {names} {
    set doc [r memory doctor]
    foreach name $names { assert_equal -1 [string first $name $doc] "$name in MEMORY DOCTOR" }
}

# Keys added before profile i of the order test: one key under each of 24
# first-level prefixes (so the history cuts them at 20), a hash, a list, a
# key with a TTL in a bucket of its own, and a key in db 10.
proc mp_add_step {i} {
    r select 9
    for {set j 0} {$j < 24} {incr j} { r set pfx$j:$i [string repeat x [expr {10 * $j + 3 * $i}]] }
    r hset h$i:x f v g w
    r rpush list:$i a b c
    r set ttl:$i v ex [lindex {600 7200 200000 1000000} [expr {$i % 4}]]
    r select 10
    r set other:$i [string repeat o [expr {100 * $i}]]
    r select 9
}

start_server [list tags {"memprofile external:skip"} overrides {save "" enable-debug-command yes}] {
    test {MEMORY PROFILE HISTORY before any profile: an empty array} {
        assert_equal {} [mp_history]
        assert_equal {} [mp_history count 0]
        assert_equal {} [mp_history COUNT 5]
        r hello 3
        assert_equal {} [mp_history]
        r hello 2
        assert_equal 24 [lindex [r config get memory-profile-history] 1]
        assert_no_match {*Growth (*} [r memory doctor]
    }

    test {MEMORY PROFILE HISTORY: bad forms err as REPORT's do} {
        foreach args {{type string} {TYPE hash} {count} {count 1 count 2} {foo} {count 1 foo} {1} {count 1 type hash}} {
            assert_error {*syntax error*} [list r memory profile history {*}$args]
        }
        assert_error {*value is out of range*} {r memory profile history count -1}
        assert_error {*not an integer or out of range*} {r memory profile history count x}
        assert_error {*not an integer or out of range*} {r memory profile history count 1.5}
        assert_match {*PROFILE HISTORY \[COUNT <count>\]*} [r memory help]
    }

    test {MEMORY PROFILE HISTORY needs @admin: NOPERM without it} {
        r acl setuser mpnoadmin on nopass +@all -@admin
        set c [valkey_client]
        $c auth mpnoadmin x
        assert_error {*NOPERM*memory|profile*} {$c memory profile history}
        assert_error {*NOPERM*memory|profile*} {$c memory profile history count 1}
        $c close
        r acl deluser mpnoadmin
    }

    test {MEMORY PROFILE HISTORY: newest first, one summary per profile, each equal to its REPORT and INFO} {
        r flushall
        set ::recs {}
        for {set i 0} {$i < 4} {incr i} {
            mp_add_step $i
            mp_profile
            lappend ::recs [mp_record {9 10}]
            # Keys of every profile differ (the dataset grows), and times.
            if {$i < 3} { mp_next_second }
        }
        set hist [mp_history]
        assert_equal 4 [llength $hist]
        set times [mp_column $hist time]
        assert_equal [lsort -integer -decreasing $times] $times
        assert {[lindex $times 0] > [lindex $times end]}
        # Keys equal DBSIZE at each profile, newest first.
        set sizes {}
        foreach rec [lreverse $::recs] {
            set total 0
            dict for {db n} [dict get $rec dbsize] { incr total $n }
            lappend sizes $total
        }
        assert_equal $sizes [mp_column $hist keys]
        assert_equal {112 84 56 28} $sizes
        # Each summary equals INFO rdb_stats and REPORT of its profile.
        foreach sum $hist rec [lreverse $::recs] n {4 3 2 1} {
            mp_assert_summary $sum $rec "profile $n"
        }
        # 24 depth-1 prefixes, cut at 20, largest first.
        assert {[llength [mp_depth1 [dict get [lindex $::recs end] report] 1000]] > 20}
        assert_equal 20 [llength [dict get [lindex $hist 0] prefixes]]
        # The newest summary is the profile INFO rdb_stats shows now.
        assert_equal [mp_info rdb_stats_last_time] [dict get [lindex $hist 0] time]
        # The same under RESP3.
        r hello 3
        assert_equal $hist [mp_history]
        r hello 2
    }

    test {MEMORY PROFILE HISTORY COUNT n: the n newest} {
        set hist [mp_history]
        assert_equal [lrange $hist 0 1] [mp_history count 2]
        assert_equal [lrange $hist 0 0] [mp_history COUNT 1]
        assert_equal $hist [mp_history count 4]
        assert_equal $hist [mp_history count 100]
        assert_equal $hist [mp_history count 0]
    }

    test {MEMORY DOCTOR growth over the four profiles: previous and oldest kept} {
        set growth [mp_growth_part]
        assert_match "Growth (4 profiles kept, MEMORY PROFILE HISTORY lists them):\n*" $growth
        set prev [mp_expected_growth "the previous profile" [lindex $::recs 2] [lindex $::recs 3]]
        set oldest [mp_expected_growth "the oldest profile kept" [lindex $::recs 0] [lindex $::recs 3]]
        assert {[string first $prev $growth] >= 0}
        assert {[string first $oldest $growth] >= 0}
    }

    test {A failed profile adds nothing to the history} {
        set before [mp_history]
        set growth [mp_growth_part]
        r set failed:1 v
        r config set memory-profile-report-fault 1
        mp_profile
        r config set memory-profile-report-fault 0
        assert_equal err [mp_info rdb_stats_status]
        assert_equal $before [mp_history]
        assert_equal $growth [mp_growth_part]
        r del failed:1
    }

    test {memory-profile-history bounds the history: 2 keeps the 2 newest, 0 none} {
        set hist [mp_history]
        r config set memory-profile-history 2
        assert_equal [lrange $hist 0 1] [mp_history]
        # Two profiles: the previous one only, no "oldest" line.
        set growth [mp_growth_part]
        assert_match "Growth (2 profiles kept, *" $growth
        assert_no_match {*the oldest profile kept*} $growth
        # A new profile pushes the oldest out.
        r set more:1 v
        mp_profile
        set rec [mp_record {9 10}]
        set now [mp_history]
        assert_equal 2 [llength $now]
        mp_assert_summary [lindex $now 0] $rec "newest"
        assert_equal [lindex $hist 0] [lindex $now 1]
        # Growing the bound back does not bring the dropped ones back.
        r config set memory-profile-history 24
        assert_equal $now [mp_history]
        r config set memory-profile-history 0
        assert_equal {} [mp_history]
        assert_no_match {*Growth (*} [r memory doctor]
        # A profile taken with 0 keeps nothing either, yet is published.
        r set more:2 v
        mp_profile
        assert_equal ok [mp_info rdb_stats_status]
        assert_equal {} [mp_history]
        assert_no_match {*Growth (*} [r memory doctor]
        assert_error {*must be between 0 and 1000*} {r config set memory-profile-history 1001}
        assert_error {*must be between 0 and 1000*} {r config set memory-profile-history -1}
    }

    test {memory-profile-history survives CONFIG REWRITE and a restart; the history does not} {
        r config set memory-profile-history 7
        mp_profile
        mp_profile
        assert_equal 2 [llength [mp_history]]
        r config rewrite
        restart_server 0 true false
        assert_equal 7 [lindex [r config get memory-profile-history] 1]
        # The history lives in memory only: empty after a restart.
        assert_equal {} [mp_history]
        assert_equal none [mp_info rdb_stats_status]
        mp_profile
        set rec [mp_record {9 10}]
        set hist [mp_history]
        assert_equal 1 [llength $hist]
        mp_assert_summary [lindex $hist 0] $rec "after restart"
        assert_no_match {*Growth (*} [r memory doctor]
    }
}

start_server [list tags {"memprofile external:skip"} overrides {save "" enable-debug-command yes}] {
    test {MEMORY DOCTOR growth: known growth under a new prefix, named by rank only} {
        r select 9
        # A larger first-level prefix than the one that grows, so the growing
        # one ranks second; a small one and keys without a delimiter.
        for {set i 0} {$i < 4} {incr i} { r set base:$i [string repeat b 1500000] }
        for {set i 0} {$i < 10} {incr i} { r set aaa:$i v$i }
        r set zqnodelim [string repeat p 50]
        mp_profile
        set old [mp_record {9}]
        mp_next_second
        r debug populate 20000 grow 100
        set enc [r object encoding grow:0]
        assert {$enc in {raw embstr}}
        mp_profile
        set new [mp_record {9}]
        assert_equal 20000 [expr {[dict get $new info rdb_stats_keys] - [dict get $old info rdb_stats_keys]}]

        set rows [mp_depth1 [dict get $new report]]
        set rank [expr {[lsearch -exact [mp_column $rows prefix] grow:] + 1}]
        assert_equal 2 $rank
        set grow [lindex $rows [expr {$rank - 1}]]
        assert_equal 20000 [dict get $grow keys]
        assert_equal 0 [dict get $grow error_bytes]

        set user [expr {[dict get $new info rdb_stats_bytes] - [dict get $old info rdb_stats_bytes]}]
        # Only the new keys changed: the prefix's bytes are the whole growth.
        assert_equal $user [dict get $grow bytes]
        set secs [expr {[dict get $new info rdb_stats_last_time] - [dict get $old info rdb_stats_last_time]}]
        assert {$secs >= 1}
        set growth [mp_growth_part]
        assert_match "Growth (2 profiles kept, MEMORY PROFILE HISTORY lists them):\n*" $growth
        assert_no_match {*the oldest profile kept*} $growth
        # The user data line: the difference of rdb_stats_bytes, as printed
        # (two decimals of the unit), and per hour.
        assert {[regexp {Since the previous profile \((\d+) s earlier\): user data \+([0-9.]+)([BKMG]) \(\+([0-9.]+)([BKMG]) per hour\), RSS ([-+][0-9.]+[BKMG])\.} \
            $growth -> got_secs num unit hnum hunit rss]}
        assert_equal $secs $got_secs
        set scale [dict get {B 1 K 1024 M 1048576 G 1073741824} $unit]
        assert {abs($num * $scale - $user) <= 0.005 * $scale}
        assert_equal [mp_delta $user] "+$num$unit"
        set hour [expr {int(double($user) * 3600 / $secs)}]
        assert_equal [mp_delta $hour] "+$hnum$hunit"
        assert_equal [mp_delta [expr {[dict get $new info mem_rss] - [dict get $old info mem_rss]}]] $rss
        # Most of it: the string type, the new keys' encoding, the prefix by
        # rank, each with its change.
        set strings [expr {[dict get $new info rdb_stats_string_bytes] - [dict get $old info rdb_stats_string_bytes]}]
        set encbytes [expr {[dict get $new info rdb_stats_string_${enc}_bytes] - [dict get $old info rdb_stats_string_${enc}_bytes]}]
        assert_equal $user $strings
        assert_equal $user $encbytes
        set most "   Most of it: type string [mp_delta $user], encoding string_$enc [mp_delta $user], the first-level prefix ranked $rank [mp_delta $user].\n"
        assert {[string first $most $growth] >= 0}
        # The whole text as computed from INFO rdb_stats and REPORT.
        assert {[string first [mp_expected_growth "the previous profile" $old $new] $growth] >= 0}
        mp_assert_no_names {grow: base: aaa: grow:0 grow:19999 base:0 aaa:0 zqnodelim}
        set ::growth_recs [list $old $new]
    }

    test {MEMORY DOCTOR growth: a third profile, by another type, previous and oldest} {
        lassign $::growth_recs p1 p2
        set fields {}
        for {set i 0} {$i < 3000} {incr i} { lappend fields field-$i [string repeat h 20] }
        r hset more:h {*}$fields
        mp_next_second
        mp_profile
        set p3 [mp_record {9}]
        set growth [mp_growth_part]
        assert_match "Growth (3 profiles kept, *" $growth
        set prev [mp_expected_growth "the previous profile" $p2 $p3]
        set oldest [mp_expected_growth "the oldest profile kept" $p1 $p3]
        assert {[string first $prev $growth] >= 0}
        assert {[string first $oldest $growth] >= 0}
        # Since the previous: the hash, in its hashtable encoding, under more:.
        set rows [mp_depth1 [dict get $p3 report]]
        set rank [expr {[lsearch -exact [mp_column $rows prefix] more:] + 1}]
        assert {$rank > 0}
        assert_match "*Since the previous profile*Most of it: type hash +*, encoding hash_hashtable +*, the first-level prefix ranked $rank +*" $growth
        # Since the oldest: the strings under grow: still lead.
        set grank [expr {[lsearch -exact [mp_column $rows prefix] grow:] + 1}]
        assert_match "*Since the oldest profile kept*Most of it: type string +*, encoding string_* +*, the first-level prefix ranked $grank +*" $growth
        mp_assert_no_names {grow: base: aaa: more: more:h field- zqnodelim}
    }

    test {MEMORY DOCTOR growth: RSS growing past used_memory is named} {
        # Memory allocated then freed: used_memory returns, RSS keeps the
        # allocator's pages for a while.
        r memory purge
        mp_profile
        set old [mp_record {9}]
        # Large values freed by DEL (FLUSHALL would purge the allocator).
        set names {}
        for {set i 0} {$i < 16} {incr i} {
            r set tmp:$i [string repeat t 4000000]
            lappend names tmp:$i
        }
        r del {*}$names
        mp_profile
        set new [mp_record {9}]
        set rss [expr {[dict get $new info mem_rss] - [dict get $old info mem_rss]}]
        set used [expr {[dict get $new info rdb_stats_used_memory] - [dict get $old info rdb_stats_used_memory]}]
        set growth [mp_growth_part]
        set expected [mp_expected_growth "the previous profile" $old $new]
        assert {[string first $expected $growth] >= 0}
        if {$rss > 0 && $rss > $used + [dict get $new info mem_rss] / 20} {
            assert_match "*   RSS changed by [mp_delta $rss] while used_memory changed by [mp_delta $used]: the allocator holds*" $growth
        } else {
            assert_no_match {*while used_memory changed by*} $growth
            puts "RSS did not grow past used_memory here (rss $rss, used $used): line absent as it should be"
        }
    }

    test {MEMORY DOCTOR names no key and no prefix; HISTORY (admin) does} {
        mp_assert_no_names {grow: base: aaa: more: tmp: zqnodelim}
        set named {}
        foreach sum [mp_history] { lappend named {*}[mp_column [dict get $sum prefixes] prefix] }
        foreach p {grow: base: aaa: more:} { assert {[lsearch -exact $named $p] >= 0} }
    }
}
