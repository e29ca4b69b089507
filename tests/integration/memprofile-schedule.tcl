# Memory profiling and the other children: scheduled profiling saves (MULTI,
# BGSAVE CANCEL, BGSAVE SCHEDULE, a failed fork), BGSAVE STAT_MEMORY during
# an AOF rewrite, the AOF rewrite itself, and a report whose payload reaches
# the parent after its record.

source tests/helpers/memprofile-util.tcl

# Start an AOF rewrite that stays in progress for about a second per 1000
# keys (each key slowed by rdb-key-save-delay in the rewrite child only) and
# return total_forks once it runs: later children are counted from there.
proc mp_start_slow_rewrite {} {
    r config set rdb-key-save-delay 1000
    assert_match {Background append only file rewriting *} [r bgrewriteaof]
    wait_for_condition 100 50 {[s aof_rewrite_in_progress] == 1} else {
        fail "no AOF rewrite child"
    }
    # The child keeps its copy of the delay; the children after it run at
    # full speed.
    r config set rdb-key-save-delay 0
    return [s total_forks]
}

# Wait until the rewrite is over and the save scheduled behind it has
# forked (one more fork than 'forks') and exited.
proc mp_wait_scheduled_save {forks} {
    wait_for_condition 200 50 {
        [s aof_rewrite_in_progress] == 0 &&
        [s total_forks] > $forks &&
        [s rdb_bgsave_in_progress] == 0 &&
        [mp_info rdb_stats_in_progress] == 0
    } else {
        fail "the scheduled save did not run"
    }
    assert_equal ok [s rdb_last_bgsave_status]
}

# Wait until no child runs: an earlier failed test may have left one.
proc mp_wait_no_child {} {
    wait_for_condition 200 50 {
        [s aof_rewrite_in_progress] == 0 && [s rdb_bgsave_in_progress] == 0 &&
        [mp_info rdb_stats_in_progress] == 0
    } else {
        fail "a child is still running"
    }
}

# The profile's figures that depend on the dataset only (not on the clients,
# the buffers or the time of the fork).
proc mp_data_figures {{r r}} {
    set d [dict create]
    dict for {k v} [mp_info_dict $r] {
        if {[regexp {^rdb_stats_.*_(keys|bytes)$} $k] || $k in {rdb_stats_keys rdb_stats_bytes
            mem_kv_user_data mem_kv_expiration mem_kv_hash_metadata mem_um_kvstore}} {
            dict set d $k $v
        }
    }
    return $d
}

# The cgroup v1 pids controller, used to make fork() fail: a group whose
# pids.max is the number of the server's threads leaves no room for a child.
set ::mp_pids_root /sys/fs/cgroup/pids

# Why fork() cannot be made to fail here, or "" when it can.
proc mp_pids_cgroup_unusable {} {
    mp_cgroup_unusable $::mp_pids_root pids.max
}

# Move process 'pid' into a new group allowing no more tasks than it has
# now. Returns the group, to pass to mp_release_forks.
proc mp_confine_forks {pid} {
    set group $::mp_pids_root/valkey-memprof-$pid-[clock clicks]
    file mkdir $group
    if {[catch {
        mp_write_file $group/cgroup.procs $pid
        mp_write_file $group/pids.max [mp_read_file $group/pids.current]
    } err]} {
        mp_release_forks $pid $group
        error $err
    }
    return $group
}

proc mp_release_forks {pid group} {
    catch {mp_write_file $::mp_pids_root/cgroup.procs $pid}
    catch {exec rmdir $group}
}

tags {"memprofile external:skip"} {

start_server {overrides {save "" enable-debug-command yes appendonly no}} {
    r debug populate 2000
    r hset h a 1 b 2
    r zadd z 1 a 2 b
    r expire key:1 1000
    mp_profile

    test {MULTI BGSAVE STAT_MEMORY EXEC during an AOF rewrite: the save scheduled behind it profiles} {
        mp_wait_no_child
        set count [mp_log_count]
        set forks [mp_start_slow_rewrite]
        r multi
        r bgsave stat_memory
        assert_equal {{Background saving scheduled}} [r exec]
        mp_wait_scheduled_save $forks
        assert_equal [expr {$count + 1}] [mp_log_count]
        assert_equal ok [mp_info rdb_stats_status]
        assert_equal [r dbsize] [mp_info rdb_stats_keys]
    }

    foreach followup {multi schedule} {
        test "A cancelled scheduled BGSAVE STAT_MEMORY leaves no request behind: a later plain BGSAVE ($followup) does not profile" {
            mp_wait_no_child
            set count [mp_log_count]
            set last [mp_info rdb_stats_last_time]
            # rdb_stats_last_time has a resolution of a second: a profile
            # started by mistake would show a later one.
            mp_next_second
            set forks [mp_start_slow_rewrite]
            r multi
            r bgsave stat_memory
            assert_equal {{Background saving scheduled}} [r exec]
            assert_equal {Scheduled background saving cancelled} [r bgsave cancel]
            # A plain save scheduled while the rewrite still runs.
            if {$followup eq {multi}} {
                r multi
                r bgsave
                assert_equal {{Background saving scheduled}} [r exec]
            } else {
                assert_equal {Background saving scheduled} [r bgsave schedule]
            }
            assert_equal 1 [s aof_rewrite_in_progress]
            mp_wait_scheduled_save $forks
            assert_equal $count [mp_log_count]
            assert_equal $last [mp_info rdb_stats_last_time]
            assert_equal ok [mp_info rdb_stats_status]
        }
    }

    test {BGSAVE STAT_MEMORY during an AOF rewrite: the error says how to profile then; plain BGSAVE keeps its error} {
        mp_wait_no_child
        set count [mp_log_count]
        set forks [mp_start_slow_rewrite]
        assert_error {*can't BGSAVE STAT_MEMORY right now*MULTI/EXEC*rdb-save-stat-memory yes*} {r bgsave stat_memory}
        assert_error {ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.} {r bgsave}
        assert_equal 1 [s aof_rewrite_in_progress]
        # Neither error scheduled anything.
        assert_error {*not in progress or scheduled*} {r bgsave cancel}
        waitForBgrewriteaof r
        # Nothing to wait for: what must not start would start from the
        # cron within a few ticks (hz 10) of the rewrite's end.
        after 500
        assert_equal $forks [s total_forks]
        assert_equal $count [mp_log_count]
        assert_equal 0 [mp_info rdb_stats_in_progress]
    }

    test {A report announced while the child still runs is published once, after the child's exit, whole} {
        mp_wait_no_child
        # The child writes its report into the shared region, announces it on
        # the childinfo pipe, then lives on for 5 seconds: the parent drains
        # the pipe once a second while a child runs, so it reads the announce
        # before the child exits. Nothing may be published before the exit
        # status says the save succeeded.
        if {[catch {r config set memory-profile-report-delay 5000000} err]} {
            fail "memory-profile-report-delay: $err"
        }
        set count [mp_log_count]
        set prev [mp_info rdb_stats_last_time]
        set start [clock milliseconds]
        assert_equal {Background saving started} [r bgsave stat_memory]
        r config set memory-profile-report-delay 0
        # 2.5 s in, past two of the parent's drains of the pipe and 2.5 s
        # before the child may exit (a loaded machine once ran a 1.2 s wait
        # past a 1.5 s delay). The log is read before INFO: if INFO still
        # shows the child running, it was running when the log was read; and
        # the fields checked all come from one INFO reply.
        after 2500
        set logged [mp_log_count]
        set info [r info persistence rdb_stats]
        assert_equal 1 [getInfoProperty $info rdb_bgsave_in_progress]
        assert_equal 1 [getInfoProperty $info rdb_stats_in_progress]
        assert_equal $count $logged
        assert_equal $prev [getInfoProperty $info rdb_stats_last_time]
        waitForBgsave r
        wait_for_condition 200 50 {[mp_info rdb_stats_in_progress] == 0} else { fail "profiling save still in progress" }
        assert_morethan_equal [expr {[clock milliseconds] - $start}] 5000
        assert_equal ok [mp_info rdb_stats_status]
        assert_equal [expr {$count + 1}] [mp_log_count]
        assert_equal [r dbsize] [mp_info rdb_stats_keys]
        set delayed [mp_data_figures]
        # The same data profiled without the delay.
        mp_profile
        assert_equal [expr {$count + 2}] [mp_log_count]
        assert_equal [mp_data_figures] $delayed
    }

    test {BGREWRITEAOF with rdb-save-stat-memory yes never profiles; a rewrite after a profile keeps it, the AOF loads back} {
        mp_wait_no_child
        mp_profile
        set prev [mp_info_dict]
        set count [mp_log_count]
        r config set rdb-save-stat-memory yes
        # Turning AOF on starts a rewrite, BGREWRITEAOF another one.
        r config set appendonly yes
        waitForBgrewriteaof r
        r bgrewriteaof
        waitForBgrewriteaof r
        assert_equal 0 [mp_info rdb_stats_in_progress]
        r config set rdb-save-stat-memory no
        assert_equal $count [mp_log_count]
        assert_equal $prev [mp_info_dict]
        set digest [r debug digest]
        r debug loadaof
        assert_equal $digest [r debug digest]
        assert_equal $prev [mp_info_dict]
        r config set appendonly no
    }

    set reason [mp_pids_cgroup_unusable]
    if {$reason ne {}} {
        puts "memprofile: failed-fork case not run: $reason"
    } else {
        test {A scheduled BGSAVE STAT_MEMORY whose fork fails profiles when the retry forks} {
            mp_wait_no_child
            set pid [srv 0 pid]
            set count [mp_log_count]
            set forks [mp_start_slow_rewrite]
            r multi
            r bgsave stat_memory
            assert_equal {{Background saving scheduled}} [r exec]
            set loglines [count_log_lines 0]
            set group [mp_confine_forks $pid]
            # Always release the server, also when an assertion fails.
            if {[catch {
                assert_equal 1 [s aof_rewrite_in_progress]
                # The rewrite ends; the scheduled save's fork fails and stays
                # scheduled for a retry.
                wait_for_log_messages 0 {"*Can't save in background: fork:*"} $loglines 200 50
                assert_equal 0 [s aof_rewrite_in_progress]
                assert_equal 0 [s rdb_bgsave_in_progress]
                assert_equal err [s rdb_last_bgsave_status]
                assert_equal 0 [mp_info rdb_stats_in_progress]
                assert_equal $count [mp_log_count]
            } err]} {
                mp_release_forks $pid $group
                error $err $::errorInfo
            }
            mp_release_forks $pid $group
            # The retry, at most CONFIG_BGSAVE_RETRY_DELAY (5 s) later.
            mp_wait_scheduled_save $forks
            assert_equal [expr {$count + 1}] [mp_log_count]
            assert_equal ok [mp_info rdb_stats_status]
            assert_equal [r dbsize] [mp_info rdb_stats_keys]
        }
    }
}

}
