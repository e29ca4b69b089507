# MEMORY PROFILE START / CANCEL: a profile-only child that writes no file,
# yields to persistence, and memory-profile-interval.

source tests/helpers/memprofile-util.tcl

# Start a profile-only child and wait for it to be reaped.
proc mp_start_profile {{r r}} {
    assert_equal {Memory profiling started} [{*}$r memory profile start]
    wait_for_condition 300 50 {[mp_info rdb_stats_in_progress $r] == 0} else {
        fail "profile-only child still running"
    }
}

# Start a profile-only child slowed down by rdb-key-save-delay (which also
# paces the profile-only walk). The child keeps the delay it had at the
# fork; children forked later (the save that kills it) run at full speed.
proc mp_start_slow_profile_only {} {
    r config set rdb-key-save-delay 1000
    assert_equal {Memory profiling started} [r memory profile start]
    r config set rdb-key-save-delay 0
    wait_for_condition 100 50 {[mp_info rdb_stats_in_progress] == 1} else { fail "no profile-only child" }
}

proc mp_stop_slowing {} {
    r config set rdb-key-save-delay 0
}

# The figures of a profile that do not depend on how it was taken.
proc mp_profile_figures {} {
    set rep [r memory profile report count 0]
    foreach f {status source time duration_ms used_memory breakdown} { dict unset rep $f }
    # The TTL left moves on between two profiles.
    set keys {}
    foreach k [dict get $rep topkeys] { dict unset k ttl_ms; lappend keys $k }
    dict set rep topkeys $keys
    return $rep
}

tags {"memprofile external:skip"} {

start_server {overrides {save "" appendonly no enable-debug-command yes latency-tracking no latency-monitor-threshold 0}} {
    r debug populate 3000 user 40
    r hset big:hash {*}[lrepeat 300 f v] f1 x f2 y
    for {set i 0} {$i < 300} {incr i} { r hset big:hash field:$i value:$i }
    for {set i 0} {$i < 300} {incr i} { r sadd big:set member:$i; r zadd big:zset $i m:$i }
    r rpush list a b c
    r setex ttl:1 3000 v
    r select 3
    r set other 1
    r select 9

    test {MEMORY PROFILE START: a profile without an RDB file, with save "" and no AOF} {
        set dir [lindex [r config get dir] 1]
        set rdb [file join $dir [lindex [r config get dbfilename] 1]]
        file delete -force $rdb
        set digest [r debug digest]
        set lastsave [r lastsave]
        set saves [s rdb_saves]
        mp_start_profile
        assert_equal ok [mp_info rdb_stats_status]
        assert_equal profile [mp_info rdb_stats_source]
        # db 9 and the one key in db 3.
        assert_equal [expr {[r dbsize] + 1}] [mp_info rdb_stats_keys]
        assert_equal profile [dict get [r memory profile report] source]
        # No file, no save counted, the data untouched.
        assert {![file exists $rdb]}
        assert_equal $lastsave [r lastsave]
        assert_equal $saves [s rdb_saves]
        assert_equal $digest [r debug digest]
        verify_log_message 0 "*Memory profiling started by pid*" 0
    } {} {needs:debug}

    test {A profile-only child measures what a profiling save measures, to the byte} {
        # Two different walks: the save sizes elements inside its own loops,
        # the profile-only child walks them itself.
        mp_start_profile
        set only [mp_profile_figures]
        mp_profile
        set saved [mp_profile_figures]
        assert_equal $saved $only
        assert_equal bgsave [mp_info rdb_stats_source]
    }

    test {MEMORY PROFILE START works with an unwritable dir} {
        set dir [lindex [r config get dir] 1]
        set gone [file join $dir gone-[pid]]
        file mkdir $gone
        r config set dir $gone
        file delete -force $gone
        mp_start_profile
        assert_equal ok [mp_info rdb_stats_status]
        # A save fails there; the profile did not.
        catch {r save} err
        assert_match {*ERR*} $err
        r config set dir $dir
    }

    test {While it runs: in progress with keys walked, not an RDB save; a second START errs} {
        mp_start_slow_profile_only
        wait_for_condition 100 50 {[mp_info rdb_stats_progress_keys] > 0} else { fail "no progress reported" }
        assert_equal 0 [s rdb_bgsave_in_progress]
        assert_error {*already in progress*} {r memory profile start}
        assert_equal {Memory profiling cancelled} [r memory profile cancel]
        mp_stop_slowing
        assert_equal 0 [mp_info rdb_stats_progress_keys]
    }

    test {MEMORY PROFILE CANCEL kills the child: nothing published, the previous profile stays} {
        mp_start_profile
        set prev [mp_info_dict]
        set count [mp_log_count]
        mp_start_slow_profile_only
        set pid [get_child_pid 0]
        assert_equal {Memory profiling cancelled} [r memory profile cancel]
        mp_stop_slowing
        assert_equal 0 [mp_info rdb_stats_in_progress]
        assert_equal err [mp_info rdb_stats_status]
        assert_equal $count [mp_log_count]
        dict for {k v} $prev {
            if {$k ne "rdb_stats_status"} { assert_equal $v [mp_info $k] $k }
        }
        # The child is gone, not left behind.
        assert {[catch {exec kill -0 $pid}]}
        verify_log_message 0 "*Memory profiling child * killed: MEMORY PROFILE CANCEL*" 0
        assert_error {*No memory profile is in progress*} {r memory profile cancel}
    }

    test {memory-profile-walk-floor (for make bench): the walk alone, nothing published, the previous profile stays} {
        mp_start_profile
        set prev [mp_info_dict]
        set count [mp_log_count]
        r config set memory-profile-walk-floor yes
        assert_equal {Memory profiling started} [r memory profile start]
        wait_for_condition 200 50 {[mp_info rdb_stats_in_progress] == 0} else { fail "the walk did not end" }
        r config set memory-profile-walk-floor no
        assert_equal err [mp_info rdb_stats_status]
        assert_equal $count [mp_log_count]
        dict for {k v} $prev {
            if {$k ne "rdb_stats_status"} { assert_equal $v [mp_info $k] $k }
        }
        verify_log_message 0 "*walked * keys (memory-profile-walk-floor: nothing accounted, no report)*" 0
        verify_log_message 0 "*not published: memory-profile-walk-floor is set*" 0
        # A BGSAVE STAT_MEMORY does not walk the floor: it profiles.
        r config set memory-profile-walk-floor yes
        mp_profile
        r config set memory-profile-walk-floor no
        assert_equal ok [mp_info rdb_stats_status]
    }

    test {Bad forms of START and CANCEL} {
        assert_error {*syntax error*} {r memory profile start now}
        assert_error {*syntax error*} {r memory profile cancel all}
        assert_error {*unknown subcommand*} {r memory profile stop}
    }

    test {BGSAVE during a profile-only child proceeds at once; the child is killed} {
        mp_start_slow_profile_only
        assert_equal {Background saving started} [r bgsave]
        mp_stop_slowing
        waitForBgsave r
        assert_equal err [mp_info rdb_stats_status]
        assert_equal ok [s rdb_last_bgsave_status]
        verify_log_message 0 "*killed: BGSAVE was asked for*" 0
    }

    test {A profile-only child that finished before a BGSAVE came is published, not killed} {
        set count [mp_log_count]
        set killed [count_log_message 0 "killed: BGSAVE was asked for"]
        set lines [count_log_lines 0]
        assert_equal err [mp_info rdb_stats_status]
        # One write: the server runs the three commands back to back without
        # turning its event loop, so nothing reaps the child in between. It
        # walks its keys in milliseconds and exits during the sleep; BGSAVE
        # finds it exited and not reaped.
        set rd [valkey_deferring_client]
        $rd write [format_command memory profile start][format_command debug sleep 1][format_command bgsave]
        $rd flush
        assert_equal {Memory profiling started} [$rd read]
        assert_equal OK [$rd read]
        assert_equal {Background saving started} [$rd read]
        $rd close
        waitForBgsave r
        assert_equal ok [s rdb_last_bgsave_status]
        # Published before the save started: a whole profile, of the START.
        assert_equal ok [mp_info rdb_stats_status]
        assert_equal profile [mp_info rdb_stats_source]
        assert_equal [expr {$count + 1}] [mp_log_count]
        assert_equal [expr {[r dbsize] + 1}] [mp_info rdb_stats_keys]
        assert_equal $killed [count_log_message 0 "killed: BGSAVE was asked for"]
        verify_log_message 0 "*Memory profiling child * had finished when BGSAVE was asked for: its profile is published*" $lines
    } {} {needs:debug}

    test {BGREWRITEAOF during a profile-only child proceeds at once} {
        mp_start_slow_profile_only
        assert_equal {Background append only file rewriting started} [r bgrewriteaof]
        mp_stop_slowing
        waitForBgrewriteaof r
        assert_equal err [mp_info rdb_stats_status]
    }

    test {START when another child runs errs as BGSAVE does} {
        r config set rdb-key-save-delay 1000
        r bgrewriteaof
        wait_for_condition 100 50 {[s aof_rewrite_in_progress] == 1} else { fail "no rewrite" }
        assert_error {*Another child process is active*} {r memory profile start}
        mp_stop_slowing
        waitForBgrewriteaof r
        r config set rdb-key-save-delay 1000
        r bgsave
        assert_error {*Background save already in progress*} {r memory profile start}
        mp_stop_slowing
        waitForBgsave r
    }

    test {START inside MULTI/EXEC is scheduled, as BGSAVE is: the profile sees the whole transaction} {
        # BGSAVE first: scheduled, forked by serverCron after the EXEC.
        set forks [s total_forks]
        r multi
        r bgsave
        r set tx:bgsave 1
        assert_equal {{Background saving scheduled} OK} [r exec]
        wait_for_condition 100 50 {[s total_forks] == $forks + 1} else { fail "the scheduled BGSAVE did not start" }
        waitForBgsave r
        set count [mp_log_count]
        r multi
        r memory profile start
        r set tx:profile 1
        assert_equal {{Memory profiling scheduled} OK} [r exec]
        wait_for_condition 100 50 {[mp_log_count] == $count + 1} else { fail "the scheduled profile was not published" }
        assert_equal [expr {$forks + 2}] [s total_forks]
        assert_equal ok [mp_info rdb_stats_status]
        assert_equal profile [mp_info rdb_stats_source]
        # Both keys the transactions set, and the one key of db 3.
        assert_equal [expr {[r dbsize] + 1}] [mp_info rdb_stats_keys]
        verify_log_message 0 "*Memory profiling scheduled to run after transaction execution*" 0
        # With a profile-only child running, it errs there as outside.
        mp_start_slow_profile_only
        r multi
        r memory profile start
        catch {r exec} err
        assert_match {*A memory profile is already in progress*} $err
        assert_equal {Memory profiling cancelled} [r memory profile cancel]
        r del tx:bgsave tx:profile
    }

    # A slowed BGSAVE, then MEMORY PROFILE START inside MULTI/EXEC: scheduled.
    proc mp_schedule_start_behind_save {} {
        r config set rdb-key-save-delay 1000
        r bgsave
        mp_stop_slowing
        r multi
        r memory profile start
        assert_equal {{Memory profiling scheduled}} [r exec]
    }

    test {A scheduled START waits for the running child; CANCEL unschedules it} {
        mp_schedule_start_behind_save
        assert_equal {Scheduled memory profiling cancelled} [r memory profile cancel]
        assert_error {*No memory profile is in progress*} {r memory profile cancel}
        set forks [s total_forks]
        assert_equal {Background saving cancelled} [r bgsave cancel]
        waitForBgsave r
        # A few serverCron ticks (hz 10): nothing forks.
        after 500
        assert_equal $forks [s total_forks]
        assert_equal 0 [mp_info rdb_stats_in_progress]

        # Scheduled behind a running save, it starts when that ends.
        set count [mp_log_count]
        mp_schedule_start_behind_save
        assert_equal 1 [s rdb_bgsave_in_progress]
        assert_equal 0 [mp_info rdb_stats_in_progress]
        assert_equal {Background saving cancelled} [r bgsave cancel]
        waitForBgsave r
        wait_for_condition 100 50 {[mp_log_count] == $count + 1} else { fail "the scheduled profile was not published" }
        assert_equal profile [mp_info rdb_stats_source]
        assert_equal [expr {$forks + 2}] [s total_forks]
    }

    test {START from a script errs as BGSAVE does: the same flags (NOSCRIPT, NO_ASYNC_LOADING)} {
        set forks [s total_forks]
        catch {r eval {return redis.call('bgsave')} 0} bgsave_err
        catch {r eval {return redis.call('memory', 'profile', 'start')} 0} start_err
        assert_match {*not allowed from script*} $start_err
        # The same error, but for the script's name.
        regsub {script: [0-9a-f]+} $bgsave_err {script: *} bgsave_err
        regsub {script: [0-9a-f]+} $start_err {script: *} start_err
        assert_equal $bgsave_err $start_err
        assert_equal $forks [s total_forks]
        assert_equal 0 [mp_info rdb_stats_in_progress]
        assert_equal [lsort [lindex [r command info bgsave] 0 2]] [lsort [lindex [r command info memory|profile] 0 2]]
    }

    test {A save point that comes due kills the profile-only child and saves} {
        mp_start_slow_profile_only
        set saves [s rdb_saves]
        r config set save "1 1"
        r set trigger 1
        wait_for_condition 100 50 {[s rdb_saves] > $saves} else { fail "the save point did not save" }
        r config set save ""
        mp_stop_slowing
        waitForBgsave r
        verify_log_message 0 "*killed: a save point is due*" 0
    }

    test {An AOF rewrite that comes due kills the profile-only child and rewrites} {
        r config set appendonly yes
        waitForBgrewriteaof r
        r config set auto-aof-rewrite-min-size 1024
        r config set auto-aof-rewrite-percentage 10
        set rewrites [s aof_rewrites]
        mp_start_slow_profile_only
        # Grow the AOF by far more than 10% of its rewritten size.
        set size [s aof_base_size]
        set n [expr {$size / 1000 + 10}]
        for {set i 0} {$i < $n} {incr i} { r set grow:$i [string repeat x 1000] }
        wait_for_condition 100 50 {[s aof_rewrites] > $rewrites} else { fail "the AOF was not rewritten" }
        waitForBgrewriteaof r
        assert_equal err [mp_info rdb_stats_status]
        verify_log_message 0 "*killed: an AOF rewrite is due*" 0
        r config set auto-aof-rewrite-percentage 0
        r config set appendonly no
        for {set i 0} {$i < $n} {incr i} { r del grow:$i }
    }

    test {memory-profile-interval: profiles on its own, kept by CONFIG REWRITE across a restart} {
        assert_error {*must be between*} {r config set memory-profile-interval -1}
        r config set memory-profile-interval 1
        set last [mp_info rdb_stats_last_time]
        wait_for_condition 100 100 {[mp_info rdb_stats_last_time] > $last && [mp_info rdb_stats_status] eq "ok"} else {
            fail "no scheduled profile"
        }
        assert_equal profile [mp_info rdb_stats_source]
        r config rewrite
        restart_server 0 true false
        assert_equal {memory-profile-interval 1} [r config get memory-profile-interval]
        wait_for_condition 100 100 {[mp_info rdb_stats_status] eq "ok"} else {
            fail "no scheduled profile after the restart"
        }
        r config set memory-profile-interval 0
    }
}

# After three failed rewrites upstream limits automatic AOF rewrites
# (aofRewriteLimited()): a rewrite that is due does not run, so it must not
# kill profile-only children either.
start_server {overrides {save "" appendonly yes enable-debug-command yes}} {
    test {While AOF rewrites are limited, a profile-only child completes} {
        r debug populate 1000
        r bgrewriteaof
        waitForBgrewriteaof r
        set base [s aof_base_size]
        r config set auto-aof-rewrite-min-size 1024
        r config set auto-aof-rewrite-percentage 100
        r config set rdb-key-save-delay 10000000
        for {set i 0} {$i < 3} {incr i} {
            r bgrewriteaof
            wait_for_condition 100 50 {[get_child_pid 0] ne ""} else { fail "no rewrite child" }
            catch {exec kill -9 [get_child_pid 0]}
            waitForBgrewriteaof r
        }
        assert_equal 3 [s aof_rewrites_consecutive_failures]
        # The AOF more than doubles: a rewrite is due, and limited.
        r set grow [string repeat x [expr {2 * $base}]]
        wait_for_condition 100 50 {[count_log_message 0 "triggered the limit"] == 1} else {
            fail "automatic rewrites were not limited"
        }
        # 1001 keys at 1 ms each: the child walks for a second, ten cron ticks.
        r config set rdb-key-save-delay 1000
        set count [mp_log_count]
        assert_equal {Memory profiling started} [r memory profile start]
        r config set rdb-key-save-delay 0
        wait_for_condition 100 100 {[mp_info rdb_stats_in_progress] == 0} else { fail "profile-only child still running" }
        assert_equal ok [mp_info rdb_stats_status]
        assert_equal profile [mp_info rdb_stats_source]
        assert_equal [expr {$count + 1}] [mp_log_count]
        assert_equal 1001 [mp_info rdb_stats_keys]
        assert_equal 0 [count_log_message 0 "Memory profiling child .* killed"]
        assert_equal 0 [s aof_rewrite_in_progress]
        assert_equal 3 [s aof_rewrites_consecutive_failures]
        # memory-profile-interval completes too (it would never, were its
        # children killed for the rewrite that does not run).
        set last [mp_info rdb_stats_last_time]
        r config set rdb-key-save-delay 1000
        r config set memory-profile-interval 1
        wait_for_condition 100 100 {[mp_info rdb_stats_last_time] > $last} else { fail "no scheduled profile" }
        r config set memory-profile-interval 0
        r config set rdb-key-save-delay 0
        wait_for_condition 100 100 {[mp_info rdb_stats_in_progress] == 0} else { fail "profile-only child still running" }
        r config set auto-aof-rewrite-percentage 0
        assert_equal ok [mp_info rdb_stats_status]
        assert_equal profile [mp_info rdb_stats_source]
        assert_equal 0 [count_log_message 0 "Memory profiling child .* killed"]
        assert_equal 1 [count_log_message 0 "triggered the limit"]
    } {} {needs:debug}
}

start_server {tags {"repl"} overrides {save "" enable-debug-command yes}} {
    set primary [srv 0 client]
    set primary_host [srv 0 host]
    set primary_port [srv 0 port]
    $primary debug populate 20000
    start_server {overrides {save ""}} {
        test {A replica's full sync during a profile-only child proceeds at once} {
            # The child takes the delay at the fork: 20000 keys at 1 ms
            # keep it walking for 20 s, while the sync's own child, forked
            # later, must not inherit the delay.
            $primary config set rdb-key-save-delay 1000
            assert_equal {Memory profiling started} [$primary memory profile start]
            $primary config set rdb-key-save-delay 0
            assert_equal 1 [mp_info rdb_stats_in_progress $primary]
            r replicaof $primary_host $primary_port
            wait_for_condition 100 50 {[mp_info rdb_stats_in_progress $primary] == 0} else {
                fail "the profile-only child was not killed"
            }
            wait_for_condition 200 50 {[s master_link_status] eq "up"} else { fail "replica did not sync" }
            assert_equal [$primary dbsize] [r dbsize]
            assert_equal err [mp_info rdb_stats_status $primary]
            verify_log_message -1 "*killed: a replica waits for a full sync*" 0
        }
    }
}

}
