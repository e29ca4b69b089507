# Budgets (memory-profile-budgets, memory-profile-budget-warning) and the
# forecast: the configs' checks, each budget's figure against the figure
# INFO publishes for its target, the levels at their exact boundaries with
# one log line per change, MEMORY DOCTOR's order, and the forecast against
# the least-squares slope this test computes from MEMORY PROFILE HISTORY.

source tests/helpers/memprofile-util.tcl

# Lines of the server's log that match a glob pattern.
proc budget_log_lines {pattern} {
    set fp [open [srv 0 stdout] r]
    set n 0
    foreach line [split [read $fp] "\n"] {
        if {[string match $pattern $line]} { incr n }
    }
    close $fp
    return $n
}

# One budget's INFO figures as a dict: limit bytes level growth forecast.
proc budget_info {field} {
    set d [mp_info_dict]
    set out [dict create]
    foreach {k suffix} {limit limit bytes bytes level level growth growth_bytes_per_hour forecast forecast_seconds} {
        set name rdb_stats_budget_${field}_$suffix
        if {[dict exists $d $name]} { dict set out $k [dict get $d $name] }
    }
    return $out
}

proc budget_level {field} {
    mp_info rdb_stats_budget_${field}_level
}

proc budget_profile {} {
    assert_match {*started*} [r memory profile start]
    wait_for_condition 200 50 {[mp_info rdb_stats_in_progress] == 0} else { fail "profile still running" }
}

# The least-squares slope, in bytes per hour, of one figure over summaries
# of MEMORY PROFILE HISTORY (newest first), as the forecast states it:
# times in hours relative to the newest profile, at most 6 hours back.
proc budget_slope {rows figure} {
    set t0 [dict get [lindex $rows 0] time_ms]
    set xs {}
    set ys {}
    foreach row $rows {
        set t [dict get $row time_ms]
        if {$t0 - $t > 6 * 3600 * 1000} break
        lappend xs [expr {($t - $t0) / 3600000.0}]
        lappend ys [{*}$figure $row]
    }
    set n [llength $xs]
    set mx [expr {[tcl::mathop::+ {*}$xs] / double($n)}]
    set my [expr {[tcl::mathop::+ {*}$ys] / double($n)}]
    set sxy 0.0
    set sxx 0.0
    foreach x $xs y $ys {
        set sxy [expr {$sxy + ($x - $mx) * ($y - $my)}]
        set sxx [expr {$sxx + ($x - $mx) * ($x - $mx)}]
    }
    expr {round($sxy / $sxx)}
}

proc budget_used_memory {row} { dict get $row used_memory }
proc budget_group_g {row} { dict get $row groups g bytes }

start_server [list tags {"memprofile external:skip"} overrides $::mp_exact_free_overrides] {
    r debug replybuffer resizing 0

    test {memory-profile-budgets: bad values are refused with a reason, the old value stays} {
        r config set memory-profile-budgets {type:hash 1mb}
        foreach {value reason} {
            {type:hash}                 {*expected pairs of a target and a limit*}
            {type:hash 1mb db:0}        {*expected pairs of a target and a limit*}
            {hash 1mb}                  {*a budget's target is group:<name>, type:<type>*}
            {keys:a 1mb}                {*a budget's target is group:<name>, type:<type>*}
            {group:Upper 1mb}           {*a group: budget names a group*}
            {group: 1mb}                {*a group: budget names a group*}
            {type:blob 1mb}             {*a type: budget names a type*}
            {encoding:hash_zip 1mb}     {*an encoding: budget names an encoding*}
            {encoding:module 1mb}       {*an encoding: budget names an encoding*}
            {db:x 1mb}                  {*a db: budget names a database number*}
            {db:-1 1mb}                 {*a db: budget names a database number*}
            {category:mem_nope 1mb}     {*a category: budget names a field*}
            {type:hash lots}            {*a budget's limit is a number of bytes*}
            {type:hash 0}               {*a budget's limit is a number of bytes*}
            {type:hash 1mb type:hash 2mb} {*a budget's target appears twice*}
            {type:hash "1mb}            {*unbalanced quotes*}
        } {
            assert_error $reason [list r config set memory-profile-budgets $value]
        }
        set many {}
        for {set i 0} {$i < 65} {incr i} { lappend many db:$i 1mb }
        assert_error {*at most 64 budgets*} [list r config set memory-profile-budgets [join $many " "]]
        assert_equal {type:hash 1mb} [lindex [r config get memory-profile-budgets] 1]
        foreach bad {0 101 -5 x} {
            assert_error {*} [list r config set memory-profile-budget-warning $bad]
        }
        assert_equal 80 [lindex [r config get memory-profile-budget-warning] 1]
        # Every kind of target is accepted, 64 budgets too.
        r config set memory-profile-budgets {group:sessions 512mb type:zset 2gb encoding:hash_listpack 1kb db:15 10 category:mem_rss 1gb category:mem_allocator_frag 100mb}
        set most {}
        for {set i 0} {$i < 64} {incr i} { lappend most db:$i 1mb }
        r config set memory-profile-budgets [join $most " "]
        r config set memory-profile-budgets ""
    }

    test {memory-profile-budgets: CONFIG REWRITE keeps it and the warning level} {
        r config set memory-profile-budgets {group:g 2mb category:mem_rss 1gb}
        r config set memory-profile-budget-warning 70
        r config rewrite
        restart_server 0 true false
        assert_equal {group:g 2mb category:mem_rss 1gb} [lindex [r config get memory-profile-budgets] 1]
        assert_equal 70 [lindex [r config get memory-profile-budget-warning] 1]
        r config set memory-profile-budget-warning 80
        r config set memory-profile-budgets ""
    }

    test {Budgets: none in INFO before a profile; each target reads the figure INFO publishes for it} {
        r flushall sync
        r config set memory-profile-groups {g grp: h hsh:}
        r config set memory-profile-budgets {group:g 1gb type:string 1gb encoding:hash_listpack 1gb db:9 1gb db:3 1gb category:mem_kv_user_data 1gb category:mem_rss 1gb group:absent 1gb}
        assert_equal {} [budget_info group_g]
        for {set i 0} {$i < 200} {incr i} { r set grp:$i [string repeat v [expr {$i % 70}]] }
        for {set i 0} {$i < 30} {incr i} { r hset hsh:$i a b c [string repeat d $i] }
        budget_profile
        set d [mp_info_dict]
        foreach {field figure} {
            group_g rdb_stats_group_g_bytes
            type_string rdb_stats_string_bytes
            encoding_hash_listpack rdb_stats_hash_listpack_bytes
            db_9 rdb_stats_db9_bytes
            category_mem_kv_user_data mem_kv_user_data
            category_mem_rss mem_rss
        } {
            set b [budget_info $field]
            assert_equal 1073741824 [dict get $b limit] "$field limit"
            assert_equal [dict get $d $figure] [dict get $b bytes] "$field bytes"
            assert_equal ok [dict get $b level] "$field level"
        }
        assert {[dict get $d rdb_stats_group_g_bytes] > 0}
        # A db without keys holds 0 bytes; a group the profile did not count
        # is not known.
        assert_equal 0 [dict get [budget_info db_3] bytes]
        assert_equal {limit 1073741824 bytes -1 level unknown growth 0 forecast -1} [budget_info group_absent]
        # The user data is the sum of the types.
        set sum 0
        foreach t {string list set zset hash stream module} { incr sum [dict get $d rdb_stats_${t}_bytes] }
        assert_equal $sum [dict get [budget_info category_mem_kv_user_data] bytes]
    }

    test {Budgets: levels flip at the exact boundaries, each change logged once, never with a key prefix} {
        r config set memory-profile-groups {g grp:secretprefix: other zz:}
        r flushall sync
        for {set i 0} {$i < 100} {incr i} { r set grp:secretprefix:$i [string repeat v 40] }
        budget_profile
        set bytes [mp_info rdb_stats_group_g_bytes]
        assert {$bytes > 0}
        set logged_warning [budget_log_lines {*Memory budget group:g is warning*}]
        set logged_over [budget_log_lines {*# Memory budget group:g is over*}]
        set logged_ok [budget_log_lines {*Memory budget group:g is ok*}]
        # ok: bytes below 80% of the limit (limit > bytes * 5 / 4).
        set edge [expr {$bytes * 5 / 4}]
        r config set memory-profile-budgets "group:g [expr {$edge + 1}]"
        assert_equal ok [budget_level group_g]
        # warning: at 80% exactly or above, below the limit.
        r config set memory-profile-budgets "group:g $edge"
        assert_equal warning [budget_level group_g]
        r config set memory-profile-budgets "group:g [expr {$bytes + 1}]"
        assert_equal warning [budget_level group_g]
        # over: at the limit.
        r config set memory-profile-budgets "group:g $bytes"
        assert_equal over [budget_level group_g]
        # The warning level moves with its config.
        r config set memory-profile-budgets "group:g [expr {$bytes * 2}]"
        assert_equal ok [budget_level group_g]
        r config set memory-profile-budget-warning 50
        assert_equal warning [budget_level group_g]
        r config set memory-profile-budget-warning 80
        assert_equal ok [budget_level group_g]
        # Each change logged exactly once: ok -> warning (once; the second
        # warning limit did not change the level) -> over -> ok -> warning ->
        # ok.
        assert_equal [expr {$logged_warning + 2}] [budget_log_lines {*Memory budget group:g is warning*}]
        assert_equal [expr {$logged_over + 1}] [budget_log_lines {*# Memory budget group:g is over*}]
        assert_equal [expr {$logged_ok + 2}] [budget_log_lines {*Memory budget group:g is ok*}]

        # At a profile: the data grows past the limit, the level flips at
        # that profile and not before, and once.
        r config set memory-profile-budgets "group:g [expr {$bytes * 3 / 2}]"
        for {set i 100} {$i < 200} {incr i} { r set grp:secretprefix:$i [string repeat v 40] }
        assert_equal ok [budget_level group_g]
        budget_profile
        assert_equal over [budget_level group_g]
        assert_equal [expr {$logged_over + 2}] [budget_log_lines {*# Memory budget group:g is over*}]
        budget_profile
        assert_equal [expr {$logged_over + 2}] [budget_log_lines {*# Memory budget group:g is over*}]
        r flushall sync
        budget_profile
        assert_equal ok [budget_level group_g]
        assert_equal [expr {$logged_ok + 3}] [budget_log_lines {*Memory budget group:g is ok*}]

        # The prefix never leaves CONFIG GET.
        assert_no_match {*secretprefix*} [r info everything]
        assert_no_match {*secretprefix*} [r memory doctor]
        assert_equal 0 [budget_log_lines {*secretprefix*}]
    }

    test {MEMORY DOCTOR lists the budgets in warning or over, largest share first} {
        r flushall sync
        for {set i 0} {$i < 100} {incr i} { r set grp:secretprefix:$i [string repeat v 40] }
        for {set i 0} {$i < 20} {incr i} { r hset h$i a b }
        budget_profile
        set g [mp_info rdb_stats_group_g_bytes]
        set h [mp_info rdb_stats_hash_bytes]
        # type:hash at 90%, group:g at 200%, type:string at 10%.
        r config set memory-profile-budgets "type:hash [expr {$h * 10 / 9}] group:g [expr {$g / 2}] type:string [expr {$g * 10}]"
        set doctor [r memory doctor]
        assert_match "*Budgets (3 set, warning from 80%):\n * group:g is over: *(200.0%)*\n * type:hash is warning: *(9*%)*" $doctor
        assert_no_match {*type:string is*} $doctor
        assert_match {*Budgets only report: maxmemory evicts or refuses writes*} $doctor
        r config set memory-profile-budgets "type:string [expr {$g * 10}]"
        assert_match "*Budgets (1 set, warning from 80%):\n * Every budget is under its warning level.*" [r memory doctor]
        r config set memory-profile-budgets ""
        assert_no_match {*Budgets (*} [r memory doctor]
    }
}

start_server [list tags {"memprofile external:skip"} overrides $::mp_exact_free_overrides] {
    r debug replybuffer resizing 0

    test {Forecast: not known before 3 profiles spanning 10 seconds} {
        r config set memory-profile-groups {g grp:}
        r config set memory-profile-budgets {group:g 100mb}
        budget_profile
        budget_profile
        set d [mp_info_dict]
        assert_equal 0 [dict get $d rdb_stats_forecast_profiles]
        assert_equal 0 [dict get $d rdb_stats_growth_bytes_per_hour]
        assert_equal -1 [dict get $d rdb_stats_forecast_maxmemory_seconds]
        assert_equal -1 [dict get [budget_info group_g] forecast]
        assert_match {*Not enough history: it takes 3 profiles spanning 10 seconds*} [r memory doctor]
    }

    test {Forecast: the growth equals the least-squares slope of the history, and the times to the limits follow} {
        r flushall sync
        # Four profiles at least 3.5 s apart with growing data: the history
        # then spans more than 10 s.
        for {set round 0} {$round < 4} {incr round} {
            for {set i 0} {$i < 2000} {incr i} { r set grp:$round:$i [string repeat v 100] }
            budget_profile
            if {$round < 3} { after 3500 }
        }
        set rows [r memory profile history]
        set used [budget_slope $rows budget_used_memory]
        set grp [budget_slope $rows budget_group_g]
        assert {$used > 0 && $grp > 0}
        set n [llength $rows]
        set d [mp_info_dict]
        assert_equal $n [dict get $d rdb_stats_forecast_profiles]
        assert_range [dict get $d rdb_stats_growth_bytes_per_hour] [expr {$used - 1}] [expr {$used + 1}]
        assert_range [dict get $d rdb_stats_group_g_growth_bytes_per_hour] [expr {$grp - 1}] [expr {$grp + 1}]
        assert_equal -1 [dict get $d rdb_stats_forecast_maxmemory_seconds]
        set b [budget_info group_g]
        assert_equal [dict get $d rdb_stats_group_g_growth_bytes_per_hour] [dict get $b growth]
        set rate [dict get $b growth]
        set expect [expr {int((104857600 - [dict get $b bytes]) * 3600.0 / $rate)}]
        assert_range [dict get $b forecast] [expr {$expect - 1}] [expr {$expect + 1}]
        # maxmemory ahead of used_memory.
        set newest [dict get [lindex $rows 0] used_memory]
        set max [expr {$newest + 50000000}]
        r config set maxmemory $max
        set rate [mp_info rdb_stats_growth_bytes_per_hour]
        set expect [expr {int(($max - $newest) * 3600.0 / $rate)}]
        assert_range [mp_info rdb_stats_forecast_maxmemory_seconds] [expr {$expect - 1}] [expr {$expect + 1}]
        assert_match "*Forecast (least squares over the profiles of the last 6 hours):\n * From $n profiles over * seconds: used_memory at +*/h, maxmemory (*) is reached in about *" [r memory doctor]
        # A limit already reached: 0 seconds.
        r config set memory-profile-budgets "group:g 1000"
        assert_equal 0 [dict get [budget_info group_g] forecast]
        assert_equal over [budget_level group_g]
        r config set maxmemory 0
        assert_equal -1 [mp_info rdb_stats_forecast_maxmemory_seconds]
    }
}

start_server [list tags {"memprofile external:skip"} overrides $::mp_exact_free_overrides] {
    # The fragmentation figures come from jemalloc (not the sanitizers' libc
    # malloc builds).
    if {[mp_is_jemalloc]} {
        test {Forecast: DOCTOR names fragmentation growing while the user data stays flat} {
            # Each round frees every other key of the newest generation (holes
            # in its pages: fragmentation) and writes about as many bytes in a
            # larger size class (new pages), so the user data stays flat.
            set del {for i = 0, tonumber(ARGV[1]) - 1, 2 do redis.call('del', ARGV[2] .. ':' .. i) end}
            set count 100000
            set size 40
            r debug populate $count g0 $size
            budget_profile
            set flat {}
            for {set round 1} {$round <= 4} {incr round} {
                r eval $del 0 $count g[expr {$round - 1}]
                set next [expr {$size * 2 + 16}]
                set count [expr {($count / 2) * ($size + 24) / ($next + 24)}]
                set size $next
                r debug populate $count g$round $size
                after 2600
                budget_profile
                lappend flat [list [mp_info mem_kv_user_data] [mp_info mem_allocator_frag]]
            }
            set doctor [r memory doctor]
            if {$::verbose} { puts "user data and fragmentation per round: $flat" }
            if {![string match {*the leak that is not a leak*} $doctor]} {
                fail "no fragmentation pattern named; user data and fragmentation per round: $flat\n$doctor"
            }
            assert_match {*MEMORY PURGE returns the dirty pages now; activedefrag yes*} $doctor
            # Growing data with little fragmentation is not that pattern.
            r flushall sync
            for {set round 0} {$round < 4} {incr round} {
                r debug populate 20000 n$round 100
                budget_profile
                after 3500
            }
            assert_no_match {*the leak that is not a leak*} [r memory doctor]
        }
    }
}
