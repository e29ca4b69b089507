# Atomic slot migration (9.1): keys of a slot being imported, a profile-only
# child giving way to a migration's snapshot, databases in cluster mode.

source tests/helpers/memprofile-util.tcl

# The migration of node 'idx' whose slot ranges hold 'slot', or "".
proc sm_job {idx slot} {
    foreach m [R $idx CLUSTER GETSLOTMIGRATIONS] {
        # slot_ranges: "start-end" or "slot", space separated.
        foreach range [split [dict get $m slot_ranges] " "] {
            lassign [split $range -] start end
            if {$end eq ""} { set end $start }
            if {$slot >= $start && $slot <= $end} { return $m }
        }
    }
    return ""
}

proc sm_wait_state {idx slot state} {
    wait_for_condition 100 100 {
        [sm_job $idx $slot] ne "" && [dict get [sm_job $idx $slot] state] eq $state
    } else {
        fail "migration of slot $slot on node $idx not in state $state: [sm_job $idx $slot]"
    }
}

proc sm_prevent_pause {value} {
    for {set i 0} {$i < [llength $::servers]} {incr i} { R $i DEBUG SLOTMIGRATION PREVENT-PAUSE $value }
}

# 8.1 has neither atomic slot migration nor databases in cluster mode: the
# file runs on 9.1 only.
if {[mp_tree_base9]} {
start_cluster 2 0 {tags {"memprofile external:skip cluster"} overrides {cluster-databases 4 save ""}} {
    set source 1
    set target 0
    set slot 16383
    set tag "{6ZJ}"
    set target_id [R $target CLUSTER MYID]
    set tr [srv [expr {-1 * $target}] client]

    test {Keys of a slot being imported are counted and reported apart; per-slot figures add up over dbs} {
        # 30 keys in db 0 and 20 in db 2 of the slot, on the source.
        for {set i 0} {$i < 30} {incr i} { R $source set "$tag:a:$i" [string repeat a 500] }
        R $source select 2
        for {set i 0} {$i < 20} {incr i} { R $source set "$tag:b:$i" [string repeat b 700] }
        R $source select 0
        # The target's own keys, in its own slots (db 0 and db 1).
        for {set i 0} {$i < 40} {incr i} { R $target set "{06S}:own:$i" [string repeat o 300] }
        R $target select 1
        for {set i 0} {$i < 10} {incr i} { R $target set "{06S}:one:$i" v$i }
        R $target select 0

        # The snapshot reaches the target, then the migration waits before
        # the pause: the slot stays importing there, its keys loaded.
        sm_prevent_pause 1
        assert_equal OK [R $source CLUSTER MIGRATESLOTS SLOTSRANGE $slot $slot NODE $target_id]
        sm_wait_state $source $slot waiting-to-pause
        assert_equal {Memory profiling started} [R $target memory profile start]
        wait_for_condition 100 50 {[mp_info rdb_stats_in_progress $tr] == 0 &&
                                    [mp_info rdb_stats_status $tr] eq "ok"} else {
            fail "the profile on the target was not published"
        }
        # Importing keys hold memory: counted, and apart.
        assert_equal 50 [mp_info rdb_stats_importing_keys $tr]
        assert_equal 100 [mp_info rdb_stats_keys $tr]
        assert_morethan [mp_info rdb_stats_importing_bytes $tr] [expr {30 * 500 + 20 * 700}]
        assert_match {*50 keys (*) are in slots being imported*} [R $target memory doctor]
        # The slots' figures add up over all dbs: the imported slot holds
        # the keys of dbs 0 and 2, its bytes are the importing bytes.
        set rep [R $target memory profile report count 0]
        set slots [dict get $rep slots]
        set found 0
        foreach s $slots {
            if {[dict get $s slot] == $slot} {
                assert_equal 50 [dict get $s keys]
                assert_equal [mp_info rdb_stats_importing_bytes $tr] [dict get $s bytes]
                set found 1
            }
        }
        assert_equal 1 $found
        set k 0
        foreach s $slots { incr k [dict get $s keys] }
        assert_equal 100 $k
        # Per db: db 0 has the target's 40 and 30 imported, db 1 10, db 2 20.
        set dbs [dict get $rep dbs]
        assert_equal 70 [dict get [dict get $dbs db0] keys]
        assert_equal 10 [dict get [dict get $dbs db1] keys]
        assert_equal 20 [dict get [dict get $dbs db2] keys]

        sm_prevent_pause 0
        wait_for_condition 100 100 {[sm_job $source $slot] eq "" ||
                                     [dict get [sm_job $source $slot] state] eq "success"} else {
            fail "migration did not finish: [sm_job $source $slot]"
        }
        # Once migrated, the same keys are no longer importing.
        wait_for_condition 50 100 {[R $target cluster countkeysinslot $slot] == 30} else {
            fail "slot $slot not served by the target"
        }
        mp_profile $tr
        assert_equal 0 [mp_info rdb_stats_importing_keys $tr]
        assert_equal 100 [mp_info rdb_stats_keys $tr]
    }

    test {A profile-only child gives way to a slot migration's snapshot} {
        # Back to the source, with the target running a slow profile-only
        # child: the migration's snapshot forks on the target's side only
        # as a source, so migrate from the target while it profiles.
        R $target config set rdb-key-save-delay 100000
        assert_equal {Memory profiling started} [R $target memory profile start]
        assert_equal 1 [mp_info rdb_stats_in_progress $tr]
        set source_id [R $source CLUSTER MYID]
        assert_equal OK [R $target CLUSTER MIGRATESLOTS SLOTSRANGE $slot $slot NODE $source_id]
        # Without giving way the snapshot would wait for the child
        # (100 keys x 100 ms); it starts at once instead.
        wait_for_condition 50 100 {[string match {*Memory profiling child*killed*slot migration*} \
                                      [exec cat [srv [expr {-1 * $target}] stdout]]]} else {
            fail "the profile-only child did not give way"
        }
        R $target config set rdb-key-save-delay 0
        wait_for_condition 100 100 {[R $source cluster countkeysinslot $slot] == 30} else {
            fail "slot $slot did not migrate back: [sm_job $target $slot]"
        }
        assert_equal 0 [mp_info rdb_stats_in_progress $tr]
        # The killed profile kept the previous one, status err.
        assert_equal err [mp_info rdb_stats_status $tr]
        assert_equal 100 [mp_info rdb_stats_keys $tr]
    }
}
}
