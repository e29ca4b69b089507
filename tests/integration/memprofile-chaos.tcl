# Chaos: a profiling child stopped, killed, starved of disk or memory, the
# parent killed under it, and the dataset changing under a profile. Each
# case leaves the server serving, with the previous profile intact when the
# new one cannot be published.

source tests/helpers/memprofile-util.tcl

# Start a profile-only child paced by rdb-key-save-delay (microseconds per
# key), and wait until it walks.
proc mp_chaos_start_slow {{delay 1000}} {
    r config set rdb-key-save-delay $delay
    assert_equal {Memory profiling started} [r memory profile start]
    r config set rdb-key-save-delay 0
    wait_for_condition 100 50 {[mp_info rdb_stats_progress_keys] > 0} else { fail "the child does not walk" }
    return [get_child_pid 0]
}

# The server serves: a write and a read.
proc mp_chaos_serves {} {
    r set chaos:probe [clock milliseconds]
    assert_equal 1 [r exists chaos:probe]
    r del chaos:probe
}

# The published figures, but those a later profile would change anyway.
proc mp_chaos_published {} {
    set d [mp_info_dict]
    foreach f {rdb_stats_status rdb_stats_in_progress rdb_stats_progress_keys} { dict unset d $f }
    return $d
}

proc mp_chaos_same_as {prev} {
    dict for {k v} $prev { assert_equal $v [mp_info $k] $k }
}

# A profile-only child, waited for.
proc mp_start_profile_and_wait {} {
    assert_equal {Memory profiling started} [r memory profile start]
    wait_for_condition 300 50 {[mp_info rdb_stats_in_progress] == 0} else { fail "profile-only child still running" }
}

proc mp_chaos_gone {pid} {
    wait_for_condition 100 50 {[catch {exec kill -0 $pid}]} else { fail "child $pid still exists" }
}

tags {"memprofile external:skip"} {

start_server {overrides {save "" appendonly no enable-debug-command yes}} {
    r debug populate 3000 chaos 40
    r hset chaos:hash {*}[lrepeat 50 f v] a 1 b 2
    r select 9

    test {A profiling child stopped longer than a profile takes: the server serves, the profile is whole once continued} {
        mp_start_profile_and_wait
        set keys [mp_info rdb_stats_keys]
        set pid [mp_chaos_start_slow 300]
        exec kill -STOP $pid
        # A whole profile of these keys takes under a second at this pace.
        set until [expr {[clock milliseconds] + 1500}]
        while {[clock milliseconds] < $until} {
            mp_chaos_serves
            assert_equal 1 [mp_info rdb_stats_in_progress]
            after 100
        }
        exec kill -CONT $pid
        wait_for_condition 200 50 {[mp_info rdb_stats_in_progress] == 0} else { fail "the continued child did not end" }
        assert_equal ok [mp_info rdb_stats_status]
        assert_equal $keys [mp_info rdb_stats_keys]
    }

    test {MEMORY PROFILE CANCEL of a stopped child: it ends at once, nothing published, the previous profile stays} {
        set prev [mp_chaos_published]
        set count [mp_log_count]
        set pid [mp_chaos_start_slow]
        exec kill -STOP $pid
        set t0 [clock milliseconds]
        assert_equal {Memory profiling cancelled} [r memory profile cancel]
        assert {[clock milliseconds] - $t0 < 2000}
        mp_chaos_gone $pid
        mp_chaos_serves
        assert_equal 0 [mp_info rdb_stats_in_progress]
        assert_equal err [mp_info rdb_stats_status]
        assert_equal $count [mp_log_count]
        mp_chaos_same_as $prev
    }

    test {BGSAVE while the profile-only child is stopped: the child is killed and the save runs at once} {
        set prev [mp_chaos_published]
        set pid [mp_chaos_start_slow]
        exec kill -STOP $pid
        assert_equal {Background saving started} [r bgsave]
        mp_chaos_gone $pid
        waitForBgsave r
        assert_equal ok [s rdb_last_bgsave_status]
        mp_chaos_same_as $prev
    }

    test {CONFIG SET of every memory-profile-* config while a child runs: it keeps what it forked with, the next profile takes the new values} {
        set pid [mp_chaos_start_slow 1000]
        set saved {}
        foreach {name value} {
            memory-profile-top-keys 1 memory-profile-prefix-depth 1 memory-profile-prefix-capacity 16
            memory-profile-prefix-delimiters "/" memory-profile-history 1 memory-profile-interval 0
        } {
            lappend saved $name [lindex [r config get $name] 1]
            r config set $name $value
        }
        wait_for_condition 200 50 {[mp_info rdb_stats_in_progress] == 0} else { fail "the child did not end" }
        assert_equal ok [mp_info rdb_stats_status]
        # Forked with the defaults: top keys of every type, up to 32 each.
        set rep [r memory profile report count 0]
        assert {[llength [dict get $rep topkeys]] > 7}
        mp_next_second
        mp_start_profile_and_wait
        set rep [r memory profile report count 0]
        assert {[llength [dict get $rep topkeys]] <= 7}
        foreach p [dict get $rep prefixes] { assert_equal 1 [dict get $p depth] }
        assert_equal 1 [llength [r memory profile history]]
        foreach {name value} $saved { r config set $name $value }
    }

    test {SWAPDB, DEBUG RELOAD and FLUSHALL ASYNC during a profile-only child: the server serves, the data is intact} {
        r select 9
        set digest [r debug digest]
        set n [r dbsize]
        foreach cmd {{swapdb 9 1} {swapdb 9 1} {debug reload} {flushall async}} {
            set pid [mp_chaos_start_slow 1000]
            r {*}$cmd
            mp_chaos_serves
            switch -- [lindex $cmd 0] {
                swapdb {
                    set here [r dbsize]
                    r select 1
                    assert_equal $n [expr {$here + [r dbsize]}]
                    r select 9
                }
                debug { assert_equal $digest [r debug digest] }
                flushall { assert_equal 0 [r dbsize] }
            }
            wait_for_condition 200 50 {[mp_info rdb_stats_in_progress] == 0} else { fail "child still runs after $cmd" }
            mp_chaos_gone $pid
        }
    }
}

# The parent killed with SIGKILL under a profile-only child; restarted from
# its config file.
start_server {overrides {save "" appendonly no enable-debug-command yes}} {
    r debug populate 3000 chaos 40
    r config set memory-profile-top-keys 5
    r config rewrite

    test {The parent killed during a profile-only child: the orphan exits on its own, no file is left, configs are as written} {
        set dir [lindex [r config get dir] 1]
        set before [lsort [glob -nocomplain -directory $dir *]]
        set pid [mp_chaos_start_slow 300]
        set ppid [srv 0 pid]
        exec kill -KILL $ppid
        wait_for_condition 100 50 {[catch {exec kill -0 $ppid}]} else { fail "the parent survived SIGKILL" }
        # The orphan finishes its walk, finds the report pipe closed, exits.
        wait_for_condition 200 50 {[catch {exec kill -0 $pid}]} else { fail "the orphaned child $pid is still running" }
        set after [lsort [glob -nocomplain -directory $dir *]]
        foreach f $after {
            assert {![string match *temp-*.rdb $f]}
        }
        restart_server 0 true false
        assert_equal 5 [lindex [r config get memory-profile-top-keys] 1]
        assert_equal 0 [mp_info rdb_stats_in_progress]
        mp_start_profile_and_wait
        assert_equal ok [mp_info rdb_stats_status]
    }
}

# The disk fills up during BGSAVE STAT_MEMORY: a size-limited tmpfs as dir.
set ::mp_tmpfs [file normalize tests/tmp/memprof-tmpfs-[pid]]
proc mp_tmpfs_unusable {} {
    if {$::tcl_platform(os) ne {Linux}} { return "not Linux" }
    file mkdir $::mp_tmpfs
    if {[catch {exec mount -t tmpfs -o size=256k tmpfs $::mp_tmpfs} err]} {
        return "cannot mount a tmpfs (not root, or no mount permission): $err"
    }
    return ""
}

set why [mp_tmpfs_unusable]
if {$why ne ""} {
    puts "Skipped (disk full during BGSAVE STAT_MEMORY): $why"
} else {
    start_server {overrides {save "" appendonly no enable-debug-command yes enable-protected-configs yes}} {
        r debug populate 20000 chaos 100
        set olddir [lindex [r config get dir] 1]
        r config set dir $::mp_tmpfs

        test {The disk fills up during BGSAVE STAT_MEMORY: the save fails, nothing is published, the status says why} {
            set count [mp_log_count]
            assert_equal {Background saving started} [r bgsave stat_memory]
            wait_for_condition 200 50 {[s rdb_bgsave_in_progress] == 0} else { fail "the save did not end" }
            assert_equal err [s rdb_last_bgsave_status]
            assert_equal 0 [mp_info rdb_stats_in_progress]
            assert_equal err [mp_info rdb_stats_status]
            assert_equal $count [mp_log_count]
            verify_log_message 0 "*No space left on device*" 0
            verify_log_message 0 "*memory profile not published*" 0
            mp_chaos_serves
            assert_equal {} [glob -nocomplain -directory $::mp_tmpfs temp-*.rdb]
        }
        r config set dir $olddir
    }
    catch {exec umount $::mp_tmpfs}
    catch {file delete $::mp_tmpfs}
}

# The child killed by the kernel's OOM killer: the cgroup v1 memory
# controller, a group whose limit is below what the child needs.
set ::mp_mem_root /sys/fs/cgroup/memory
set why [mp_cgroup_unusable $::mp_mem_root memory.limit_in_bytes]
if {$why ne ""} {
    puts "Skipped (the child killed by the OOM killer): $why"
} else {
    start_server {overrides {save "" appendonly no enable-debug-command yes}} {
        # 20000 keys of distinct first segments: the child's prefix summary
        # at depth 1 fills one entry per key, on pages it first writes after
        # it is moved into the group.
        r eval {for i = 1, 20000 do server.call('set', 'k' .. i .. ':x', 'v') end} 0
        r config set memory-profile-prefix-capacity 65536

        test {The profiling child killed by the OOM killer in a memory cgroup: nothing published, the previous profile stays} {
            mp_start_profile_and_wait
            set prev [mp_chaos_published]
            set count [mp_log_count]
            set pid [mp_chaos_start_slow 100]
            set group $::mp_mem_root/valkey-memprof-[pid]-[clock clicks]
            file mkdir $group
            mp_write_file $group/memory.limit_in_bytes 524288
            catch {mp_write_file $group/memory.memsw.limit_in_bytes 524288}
            mp_write_file $group/cgroup.procs $pid
            wait_for_condition 300 50 {[mp_info rdb_stats_in_progress] == 0} else {
                fail "the child was not OOM-killed"
            }
            catch {exec rmdir $group}
            mp_chaos_gone $pid
            mp_chaos_serves
            assert_equal err [mp_info rdb_stats_status]
            assert_equal $count [mp_log_count]
            mp_chaos_same_as $prev
            verify_log_message 0 "*memory profile not published*terminated by a signal*" 0
        }
    }
}

}
