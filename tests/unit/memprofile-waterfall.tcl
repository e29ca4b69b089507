# The RSS waterfall of a profile: the process's resident memory at the fork,
# line by line, against INFO memory taken at the same moment.

source tests/helpers/memprofile-util.tcl

# The waterfall lines of MEMORY DOCTOR as a list of {name bytes}, and the
# RSS its total line states.
proc mp_doctor_waterfall {} {
    set lines {}
    set rss ""
    set in 0
    foreach line [split [r memory doctor] "\n"] {
        if {[string match {RSS at the fork, line by line*} $line]} { set in 1; continue }
        if {!$in} continue
        if {[regexp {^ \* total +(-?\d+) \(RSS (\d+)\)} $line -> total rss]} break
        if {[regexp {^ \* (.+?) +(-?\d+) +-?[\d.]+%} $line -> name bytes]} { lappend lines [list $name $bytes] }
    }
    list $lines $rss
}

tags {"memprofile external:skip"} {

start_server {overrides {save "" enable-debug-command yes latency-tracking no activedefrag no}} {
    test {Waterfall: zeros before the first profile} {
        foreach f {mem_rss mem_startup mem_other_allocations mem_allocator_frag mem_allocator_dirty
                   mem_allocator_muzzy mem_allocator_retained mem_rss_other} {
            assert_equal 0 [mp_info $f] $f
        }
    }

    test {Waterfall on a fragmented dataset: adds up to RSS, names at least 95% of it, agrees with INFO memory} {
        # Fragmentation: fill, then delete every other key, so that the
        # allocator's pages are half empty.
        r debug populate 200000 frag 200
        for {set i 0} {$i < 200000} {incr i 2} { r del frag:$i }
        # Let the allocator statistics settle, then read INFO memory and fork
        # with nothing in between that allocates.
        after 300
        set mem [r info memory]
        mp_profile
        set d [mp_info_dict]
        set rss [dict get $d mem_rss]

        # The figures INFO memory gives too, taken by the parent just before.
        assert_equal [getInfoProperty $mem used_memory_startup] [dict get $d mem_startup]
        set info_rss [getInfoProperty $mem used_memory_rss]
        assert_range $rss [expr {$info_rss - 1048576}] [expr {$info_rss + 1048576}]
        if {[mp_is_jemalloc]} {
            set frag [expr {[getInfoProperty $mem allocator_active] - [getInfoProperty $mem allocator_allocated]}]
            assert_range [dict get $d mem_allocator_frag] [expr {$frag - 65536}] [expr {$frag + 65536}]
            assert_equal [getInfoProperty $mem allocator_muzzy] [dict get $d mem_allocator_muzzy]
            # Half of the values are gone: fragmentation is large.
            assert_morethan [dict get $d mem_allocator_frag] 10000000
        }

        # The INFO figures and the profile's own add up to RSS exactly.
        set sum 0
        foreach f {mem_kv_user_data mem_kv_expiration mem_kv_hash_metadata mem_um_kvstore mem_um_clients_io
                   mem_sys_aof_buffer mem_sys_repl_buffer mem_sys_repl_backlog mem_startup mem_other_allocations
                   mem_allocator_frag mem_allocator_dirty mem_allocator_muzzy mem_rss_other} {
            incr sum [dict get $d $f]
        }
        assert_equal $rss $sum

        # MEMORY DOCTOR shows the same lines, and they add up to RSS.
        lassign [mp_doctor_waterfall] lines doctor_rss
        assert_equal $rss $doctor_rss
        set sum 0
        set other 0
        foreach l $lines {
            lassign $l name bytes
            incr sum $bytes
            if {$name eq "other allocations"} { set other $bytes }
        }
        assert_equal $rss $sum
        assert_equal [dict get $d mem_other_allocations] $other
        # Every line but "other" names at least 95% of RSS.
        assert {$other * 100 <= $rss * 5}
        assert_match {*names *% of RSS*} [r memory doctor]
        if {[mp_is_jemalloc]} {
            assert_match {*activedefrag*} [r memory doctor]
        }

        # The REPORT's breakdown carries the same figures.
        set report [r memory profile report]
        set breakdown [dict get $report breakdown]
        foreach f {mem_rss mem_startup mem_other_allocations mem_allocator_frag mem_allocator_dirty
                   mem_allocator_muzzy mem_allocator_retained mem_rss_other} {
            assert_equal [dict get $d $f] [dict get $breakdown $f] $f
        }
    }
}

}
