# Memory profiling under faults, bad input, ACL restrictions and redaction.
# Every case checks that the server keeps serving, that no stale or partial
# profile is published, and that the data survives.

source tests/helpers/memprofile-util.tcl

# Start a profiling save that stays in progress (slowed by rdb-key-save-delay)
# and return the child's pid.
proc mp_start_slow_profile {{delay 2000}} {
    r config set rdb-key-save-delay $delay
    assert_equal {Background saving started} [r bgsave stat_memory]
    wait_for_condition 100 50 {[mp_info rdb_stats_in_progress] == 1 && [get_child_pid 0] ne ""} else {
        fail "no profiling child"
    }
    return [get_child_pid 0]
}

# After a profiling save that did not complete: status err, nothing new in
# the log, the previous figures kept, the server serving.
# Before a transport fault: the caller's prev (INFO rdb_stats), count (log
# lines of published profiles) and lines (of the server log); no RDB file;
# the fault set.
proc mp_fault_begin {fault rdb} {
    uplevel 1 {
        set prev [mp_info_dict]
        set count [mp_log_count]
        set lines [count_log_lines 0]
    }
    file delete $rdb
    r config set memory-profile-report-fault $fault
}

proc mp_assert_not_published {prev log_count} {
    wait_for_condition 100 50 {[mp_info rdb_stats_in_progress] == 0} else { fail "still in progress" }
    assert_equal PONG [r ping]
    assert_equal err [mp_info rdb_stats_status]
    assert_equal $log_count [mp_log_count]
    set now [mp_info_dict]
    dict for {k v} $prev {
        if {$k ne "rdb_stats_status"} { assert_equal $v [dict get $now $k] $k }
    }
}

tags {"memprofile external:skip"} {

start_server {overrides {save "" enable-debug-command yes}} {
    r debug populate 2000
    r hset h a 1 b 2
    r xadd s * f v
    mp_profile

    # A damaged report (the hidden memory-profile-report-fault config makes
    # the child damage what it wrote, as a buggy or hostile child could) is
    # refused by the parent with a reason, whatever the damage: the server
    # keeps serving, the previous profile stays, the RDB itself is fine.
    # Fault 8's header announces as many prefixes as the compile-time
    # maxima allow (8 depths x 65536, about 21 MB of records to allocate),
    # far more than the configs at the fork (3 x 4096) sized the region for.
    foreach {fault reason} {
        1 {its checksum does not match}
        2 {a list is longer than the configs at the fork allow}
        3 {its announced length is out of bounds}
        4 {its header is not of this version}
        5 {a record is malformed or out of range}
        6 {a record is malformed or out of range}
        7 {its TTL buckets do not add up to its totals}
        8 {a list is longer than the configs at the fork allow}
    } {
        test "A damaged report is refused (fault $fault: $reason)" {
            r config set memory-profile-report-fault $fault
            set digest [r debug digest]
            set prev [mp_info_dict]
            set count [mp_log_count]
            # The last case's DEBUG RELOAD freed its dataset: wait until the
            # lazyfree thread has (it can lag on a loaded machine).
            wait_lazyfree_done r
            set used [s used_memory]
            # The allocator's peak of the main thread's allocated bytes
            # (allocated minus freed) since it started: it sees what the
            # parent allocates while it reads the report, even when it frees
            # it at once.
            if {[mp_is_jemalloc]} { set peak [r debug mallctl thread.peak.read] }
            assert_equal {Background saving started} [r bgsave stat_memory]
            waitForBgsave r
            r config set memory-profile-report-fault 0
            mp_assert_not_published $prev $count
            assert_equal ok [s rdb_last_bgsave_status]
            verify_log_message 0 "*RDB memory profile not published: $reason*" 0
            # Refusing it leaves nothing behind in the parent, and reading
            # it allocated no more than the report's own size.
            wait_lazyfree_done r
            assert_range [s used_memory] [expr {$used - 65536}] [expr {$used + 65536}]
            if {[mp_is_jemalloc]} {
                assert_range [r debug mallctl thread.peak.read] $peak [expr {$peak + 65536}]
            }
            r debug reload
            assert_equal $digest [r debug digest]
        }
    }
    mp_profile
    assert_equal ok [mp_info rdb_stats_status]

    test {Configs lowered while the child runs: its report is read with the limits it was made for} {
        set count [mp_log_count]
        mp_start_slow_profile 100
        r config set memory-profile-top-keys 1
        r config set memory-profile-prefix-depth 1
        r config set memory-profile-prefix-capacity 1
        r config set rdb-key-save-delay 0
        waitForBgsave r
        wait_for_condition 100 50 {[mp_info rdb_stats_in_progress] == 0} else { fail "still in progress" }
        r config set memory-profile-top-keys 32
        r config set memory-profile-prefix-depth 3
        r config set memory-profile-prefix-capacity 4096
        assert_equal ok [mp_info rdb_stats_status]
        assert_equal [expr {$count + 1}] [mp_log_count]
        # 32 strings, the hash and the stream; key: and the empty prefix.
        set rep [r memory profile report count 0]
        assert_equal 34 [llength [dict get $rep topkeys]]
        assert_equal {key: {}} [lmap p [dict get $rep prefixes] {dict get $p prefix}]
    }

    foreach sig {KILL USR1} {
        test "Profiling child killed with SIG$sig: nothing published, data intact" {
            set digest [r debug digest]
            set prev [mp_info_dict]
            set count [mp_log_count]
            set pid [mp_start_slow_profile]
            after 50
            exec kill -$sig $pid
            waitForBgsave r
            r config set rdb-key-save-delay 0
            mp_assert_not_published $prev $count
            assert_equal $digest [r debug digest]
            # The next profile is whole again.
            mp_profile
            assert_equal ok [mp_info rdb_stats_status]
            assert_equal [r dbsize] [mp_info rdb_stats_keys]
            r debug reload
            assert_equal $digest [r debug digest]
        }
    }

    test {SIGTERM to a profiling child does not stop the save: the profile is published whole} {
        set count [mp_log_count]
        set pid [mp_start_slow_profile 200]
        exec kill -TERM $pid
        waitForBgsave r
        r config set rdb-key-save-delay 0
        wait_for_condition 100 50 {[mp_info rdb_stats_in_progress] == 0} else { fail "still in progress" }
        assert_equal ok [mp_info rdb_stats_status]
        assert_equal [expr {$count + 1}] [mp_log_count]
        assert_equal [r dbsize] [mp_info rdb_stats_keys]
    }

    test {FLUSHALL during a profiling save: nothing published, the server serves} {
        set prev [mp_info_dict]
        set count [mp_log_count]
        mp_start_slow_profile
        r flushall
        waitForBgsave r
        r config set rdb-key-save-delay 0
        mp_assert_not_published $prev $count
        assert_equal 0 [r dbsize]
        r debug populate 500
        mp_profile
        assert_equal 500 [mp_info rdb_stats_keys]
    }

    test {A profiling save while a client holds a large output buffer shows it under clients} {
        set rd [valkey_deferring_client]
        r set big [string repeat x 100000]
        # Pipeline many GETs and read none of the replies.
        for {set i 0} {$i < 200} {incr i} { $rd get big }
        $rd flush
        wait_for_condition 100 50 {[s mem_clients_normal] > 5000000} else {
            fail "output buffer did not grow: [s mem_clients_normal]"
        }
        mp_profile
        assert_morethan [mp_info mem_um_clients_io] 5000000
        $rd close
        mp_wait_single_client
    }

    test {Bad input: INFO with odd section names, BGSAVE forms, CONFIG values} {
        foreach section {rdb_stats RDB_STATS Rdb_Stats rdb rdb_stats_keys rdb_stats,all {} "rdb stats" "rdb_stats\x00"} {
            catch {r info $section}
        }
        assert_equal PONG [r ping]
        assert_match {*rdb_stats_status:ok*} [r info rdb_stats rdb_stats]
        assert_equal {} [r info rdb_stats_keys]
        foreach args {{stat_memory stat_memory} {STAT_MEMORY SCHEDULE} {stat_memory ""} {""} {stat_memory 1}} {
            assert_error {*syntax error*} [list r bgsave {*}$args]
        }
        foreach bad {{} 1 on enabled -1} {
            assert_error {*rdb-save-stat-memory*} [list r config set rdb-save-stat-memory $bad]
        }
        assert_equal {rdb-save-stat-memory no} [r config get rdb-save-stat-memory]
        assert_equal PONG [r ping]
    }

    test {SHUTDOWN during a profiling save: clean exit, the data loads back} {
        r debug populate 3000 shut
        set digest [r debug digest]
        mp_start_slow_profile
        # The child keeps its delay; the shutdown's own save runs at full speed.
        r config set rdb-key-save-delay 0
        catch {r shutdown save}
        wait_for_condition 100 50 {![process_is_alive [srv 0 pid]]} else { fail "server did not exit" }
        verify_log_message 0 "*ready to exit, bye bye*" 0
        restart_server 0 true false
        assert_equal $digest [r debug digest]
        assert_equal none [mp_info rdb_stats_status]
    }
}

# Faults of the transport (memory-profile-report-fault 10 to 11, hidden, in
# the parent and the child): the save's own outcome never depends on the
# profile's, the status and the log say what happened, and nothing is left
# behind.
start_server {overrides {save "" enable-debug-command yes}} {
    r debug populate 1000
    set rdb [file join [lindex [r config get dir] 1] [lindex [r config get dbfilename] 1]]

    # The server's shared anonymous mappings (MAP_SHARED | MAP_ANONYMOUS
    # shows as /dev/zero in /proc/<pid>/maps): the report region is one,
    # while a profile is in flight.
    proc mp_shared_maps {} {
        set fd [open /proc/[srv 0 pid]/maps r]
        set n 0
        foreach line [split [read $fd] "\n"] {
            if {[regexp {^\S+ rw-s .*/dev/zero} $line]} { incr n }
        }
        close $fd
        return $n
    }

    test {The report region is mapped while a profile is in flight, and only then} {
        assert_equal 0 [mp_shared_maps]
        mp_start_slow_profile
        assert_equal 1 [mp_shared_maps]
        r bgsave cancel
        waitForBgsave r
        r config set rdb-key-save-delay 0
        assert_equal 0 [mp_shared_maps]
        mp_profile
        assert_equal ok [mp_info rdb_stats_status]
        assert_equal 0 [mp_shared_maps]
    }

    test {A failed fork releases the report region (BGSAVE STAT_MEMORY, MEMORY PROFILE START)} {
        set lines [count_log_lines 0]
        r config set memory-profile-report-fault 11
        assert_error {ERR*} {r bgsave stat_memory}
        assert_equal 0 [mp_shared_maps]
        assert_error {*Can't start a memory profile: fork: *} {r memory profile start}
        assert_equal 0 [mp_shared_maps]
        r config set memory-profile-report-fault 0
        assert_equal err [s rdb_last_bgsave_status]
        assert_equal err [mp_info rdb_stats_status]
        assert_equal 0 [mp_info rdb_stats_in_progress]
        verify_log_message 0 "*RDB memory profile not published: the fork failed: *" $lines
        # The next ones fork and publish.
        mp_profile
        assert_equal ok [s rdb_last_bgsave_status]
        assert_equal ok [mp_info rdb_stats_status]
        assert_equal 0 [mp_shared_maps]
    }

    test {Without a report region BGSAVE STAT_MEMORY saves without a profile, and says so} {
        set digest [r debug digest]
        mp_fault_begin 10 $rdb
        assert_equal {Background saving started} [r bgsave stat_memory]
        waitForBgsave r
        r config set memory-profile-report-fault 0
        assert_equal ok [s rdb_last_bgsave_status]
        assert {[file exists $rdb]}
        mp_assert_not_published $prev $count
        verify_log_message 0 "*RDB memory profile not published: its report region of * bytes could not be mapped: *" $lines
        verify_log_message 0 "*Background save goes on without a memory profile*" $lines
        r debug reload
        assert_equal $digest [r debug digest]
    } {} {needs:debug}

    test {Without a report region MEMORY PROFILE START errs} {
        mp_profile
        set prev [mp_info_dict]
        set count [mp_log_count]
        r config set memory-profile-report-fault 10
        assert_error {*Can't start a memory profile: its report region of * bytes could not be mapped*} {r memory profile start}
        r config set memory-profile-report-fault 0
        mp_assert_not_published $prev $count
    }

    test {Without a childinfo pipe the save succeeds; the profile is not published, and the log says why} {
        set digest [r debug digest]
        mp_profile
        foreach cmd {{bgsave stat_memory} {memory profile start}} {
            mp_fault_begin 9 $rdb
            r {*}$cmd
            waitForBgsave r
            wait_for_condition 100 50 {[mp_info rdb_stats_in_progress] == 0} else { fail "still in progress" }
            r config set memory-profile-report-fault 0
            if {$cmd eq {bgsave stat_memory}} {
                assert_equal ok [s rdb_last_bgsave_status]
                assert {[file exists $rdb]}
            } else {
                assert {![file exists $rdb]}
            }
            mp_assert_not_published $prev $count
            verify_log_message 0 "*the report could not be announced to the parent: there is no childinfo pipe*" $lines
            verify_log_message 0 "*RDB memory profile not published: the child's report did not arrive*" $lines
        }
        r debug reload
        assert_equal $digest [r debug digest]
    } {} {needs:debug}
}

start_server {overrides {save "" enable-debug-command yes hide-user-data-from-log yes}} {
    test {ACL: a user without @admin cannot start a profile} {
        r acl setuser noadmin on nopass +@all -@admin
        r acl setuser nobgsave on nopass +@all -bgsave
        set c [valkey_client]
        $c auth noadmin x
        assert_error {*NOPERM*} {$c bgsave stat_memory}
        $c auth nobgsave x
        assert_error {*NOPERM*} {$c bgsave stat_memory}
        # Reading the profile is allowed where INFO is.
        assert_match {*rdb_stats_status:none*} [$c info rdb_stats]
        $c close
        assert_equal none [mp_info rdb_stats_status]
    }

    test {No key name in INFO rdb_stats, MEMORY DOCTOR or the log, with hide-user-data-from-log} {
        foreach t {string list set zset hash stream} {
            set k "secret-$t-key-name"
            switch $t {
                string { r set $k secret-value }
                list { r rpush $k secret-element }
                set { r sadd $k secret-member }
                zset { r zadd $k 1 secret-member }
                hash { r hset $k secret-field secret-value }
                stream { r xadd $k * secret-field secret-value }
            }
        }
        mp_profile
        assert_no_match {*secret*} [r info rdb_stats]
        assert_no_match {*secret*} [r memory doctor]
        set fp [open [srv 0 stdout] r]
        set log [read $fp]
        close $fp
        assert_match {*RDB object stats: total keys=6 *} $log
        assert_no_match {*secret*} $log
    }
}

# Replication: a full sync requested while a profiling save runs, and right
# after one. The profile is published once, the replication save never
# profiles, and the replica gets the same data.
start_server {overrides {save "" rdb-save-stat-memory no}} {
    set primary [srv 0 client]
    set primary_host [srv 0 host]
    set primary_port [srv 0 port]
    $primary config set repl-diskless-sync no
    $primary debug populate 5000

    start_server {overrides {save ""}} {
        test {Replica full sync requested while a profiling save runs} {
            set count [mp_log_count -1]
            $primary config set rdb-key-save-delay 200
            $primary bgsave stat_memory
            r replicaof $primary_host $primary_port
            after 200
            $primary config set rdb-key-save-delay 0
            wait_for_condition 200 100 {[s master_link_status] eq {up}} else { fail "replica did not sync" }
            wait_for_condition 100 50 {[mp_info rdb_stats_in_progress $primary] == 0} else { fail "in progress" }
            assert_equal ok [mp_info rdb_stats_status $primary]
            assert_equal [expr {$count + 1}] [mp_log_count -1]
            assert_equal 5000 [mp_info rdb_stats_keys $primary]
            assert_equal [$primary debug digest] [r debug digest]
        }

        test {Replica full sync right after a profiling save} {
            r replicaof no one
            $primary set extra 1
            mp_profile $primary
            set count [mp_log_count -1]
            set last [mp_info rdb_stats_last_time $primary]
            r replicaof $primary_host $primary_port
            wait_for_condition 200 100 {[s master_link_status] eq {up}} else { fail "replica did not sync" }
            assert_equal $count [mp_log_count -1]
            assert_equal $last [mp_info rdb_stats_last_time $primary]
            assert_equal [$primary debug digest] [r debug digest]
        }

        test {A profiling save while a stalled replica holds a large replication buffer} {
            $primary config set repl-backlog-size 1mb
            $primary config set client-output-buffer-limit "replica 0 0 0"
            set replica_pid [srv 0 pid]
            pause_process $replica_pid
            set payload [string repeat r 10000]
            set rd [valkey_deferring_client -1]
            for {set i 0} {$i < 1000} {incr i} { $rd set r:$i $payload }
            $rd flush
            for {set i 0} {$i < 1000} {incr i} { $rd read }
            $rd close
            mp_profile $primary
            resume_process $replica_pid
            assert_morethan [mp_info mem_sys_repl_buffer $primary] 2000000
            assert_morethan [mp_info mem_sys_repl_backlog $primary] 1000000
            wait_for_ofs_sync $primary r
            assert_equal [$primary debug digest] [r debug digest]
        }
    }
}

# A module data type is counted under module, with the bytes its mem_usage
# callback reports plus the object and module value headers.
set mallocsize [file normalize tests/modules/mallocsize.so]
if {[file exists $mallocsize]} {
    # The byte-exact overrides: nothing else (a command log entry, a
    # latency histogram, a rehash) allocates between the two measures.
    start_server [list overrides [concat $::mp_exact_free_overrides [list loadmodule $mallocsize]]] {
        # The clients cron resizes reply buffers by powers of two: off, so
        # that it cannot move used_memory between the two measures.
        r debug replybuffer resizing 0
        test {Module data type keys are counted under module} {
            # Twice, measured the second time: what the server's first
            # profile and flush leave allocated for good is then in both of
            # the second round's snapshots.
            for {set round 0} {$round < 2} {incr round} {
                set c [valkey_client]
                # setstr, not setraw: setraw's buffer is uninitialised, which
                # valgrind reports when the save checksums it.
                for {set i 0} {$i < 200} {incr i} { $c mallocsize.setstr mod:$i [string repeat m 2000] }
                $c close
                mp_wait_single_client
                mp_profile
                lassign [mp_allocator_view] used1 lut1
                set keys [mp_info rdb_stats_module_keys]
                set bytes [mp_info rdb_stats_module_bytes]
                assert_match {*module=200/*} [exec grep {RDB object stats} [srv 0 stdout]]
                r flushall sync
                lassign [mp_allocator_view] used0 lut0
            }
            assert_equal 200 $keys
            assert_equal 200 [mp_info rdb_stats_keys]
            set truth [expr {($used1 - $used0) - ($lut1 - $lut0)}]
            # A module value is sized by its mem_usage callback, and this
            # module's counts its string by ValkeyModule_MallocSizeString(),
            # which takes the string's object at sizeof(robj), its request
            # of 16 bytes: glibc's malloc gives that allocation 8 bytes more
            # (mp_table_slack), which the callback cannot see. The profile
            # is short by exactly that much a key there, and exact
            # elsewhere. Absolute: a byte per key plus 256, as for every
            # encoding.
            set short [expr {$keys * [mp_table_slack]}]
            assert {abs($bytes + $short - $truth) <= $keys + 256}
        }
    }
} else {
    puts "memprofile: $mallocsize not built, module case not run"
}

}
