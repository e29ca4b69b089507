# Memory profiling: config, save points, replication, failures, MEMORY DOCTOR.

source tests/helpers/memprofile-util.tcl

# The profile's fork-instant figures and the INFO memory fields that count
# the same memory the same way.
set ::mp_overhead_pairs {
    mem_um_clients_io mem_clients_normal
    mem_sys_aof_buffer mem_aof_buffer
    mem_sys_repl_buffer mem_clients_slaves
    mem_sys_repl_backlog mem_replication_backlog
}
# 9.1's buffers of their own in MEMORY STATS and INFO memory.
set ::mp_overhead_pairs_9 {
    mem_sys_repl_pending mem_replicas_repl_buffer
    mem_sys_slot_import mem_cluster_slot_import
    mem_sys_slot_export mem_cluster_slot_export
}

# Take a profile with INFO memory read right before BGSAVE STAT_MEMORY and
# right after its reply, with no other traffic from the test, and check that
# each fork-instant figure equals its INFO memory field. The fork happens
# between the two reads; the reads themselves leave nothing behind (the
# test's client is back to an empty query and reply buffer when the next
# command arrives). A server cron pass between the reads can still change a
# field (clientsCron resizing the client's reply buffer, a backlog trim): the
# sample is then taken again, since the value at the fork is not known.
proc mp_assert_overhead_matches_info {r} {
    set pairs $::mp_overhead_pairs
    if {[mp_base9 $r]} { lappend pairs {*}$::mp_overhead_pairs_9 }
    for {set attempt 0} {$attempt < 5} {incr attempt} {
        set before [{*}$r info memory]
        assert_equal {Background saving started} [{*}$r bgsave stat_memory]
        set after [{*}$r info memory]
        waitForBgsave $r
        wait_for_condition 100 50 {[mp_info rdb_stats_in_progress $r] == 0} else {
            fail "profiling save still in progress"
        }
        assert_equal ok [mp_info rdb_stats_status $r]
        set stable 1
        foreach {field info_field} $pairs {
            set b [getInfoProperty $before $info_field]
            set a [getInfoProperty $after $info_field]
            if {$b ne $a} {
                if {$::verbose} { puts "$info_field changed from $b to $a across BGSAVE STAT_MEMORY" }
                set stable 0
            }
        }
        if {!$stable} continue
        if {$::verbose} {
            foreach {field info_field} $pairs {
                puts "\n$field [mp_info $field $r], INFO memory $info_field [getInfoProperty $before $info_field]"
            }
        }
        foreach {field info_field} $pairs {
            assert_equal [getInfoProperty $before $info_field] [mp_info $field $r] "$field vs INFO memory $info_field"
        }
        return
    }
    fail "INFO memory changed across each of 5 BGSAVE STAT_MEMORY"
}

tags {"memprofile external:skip"} {

start_server {overrides {save "" enable-debug-command yes}} {
    test {rdb-save-stat-memory: default no, CONFIG SET validates, CONFIG REWRITE keeps it across a restart} {
        assert_equal {rdb-save-stat-memory no} [r config get rdb-save-stat-memory]
        foreach bad {maybe 2 {} yesno} {
            assert_error {*argument must be 'yes' or 'no'*} [list r config set rdb-save-stat-memory $bad]
        }
        r config set rdb-save-stat-memory yes
        r config rewrite
        set fp [open [srv 0 config_file] r]
        set conf [read $fp]
        close $fp
        assert_match {*rdb-save-stat-memory yes*} $conf
        restart_server 0 true false
        assert_equal {rdb-save-stat-memory yes} [r config get rdb-save-stat-memory]
    }

    test {rdb-save-stat-memory yes: plain BGSAVE profiles, no makes it plain again} {
        r flushall sync
        r set a 1
        r config set rdb-save-stat-memory yes
        set before [mp_log_count]
        r bgsave
        waitForBgsave r
        wait_for_condition 100 50 {[mp_log_count] == $before + 1} else { fail "plain BGSAVE did not profile" }
        assert_equal 1 [mp_info rdb_stats_keys]
        r config set rdb-save-stat-memory no
        r bgsave
        waitForBgsave r
        after 100
        assert_equal [expr {$before + 1}] [mp_log_count]
    }

    test {rdb-save-stat-memory yes: a save point profiles} {
        r config set rdb-save-stat-memory yes
        r config set save "1 1"
        set before [mp_log_count]
        r set savepoint 1
        wait_for_condition 100 50 {[mp_log_count] == $before + 1} else {
            fail "the save point did not profile"
        }
        waitForBgsave r
        assert_equal ok [mp_info rdb_stats_status]
        assert_equal [r dbsize] [mp_info rdb_stats_keys]
        r config set save ""
        r config set rdb-save-stat-memory no
    }

    test {DEBUG RELOAD with rdb-save-stat-memory yes keeps the data and does not profile} {
        r config set rdb-save-stat-memory yes
        r debug populate 5000
        set digest [r debug digest]
        set before [mp_log_count]
        r debug reload
        assert_equal $digest [r debug digest]
        assert_equal $before [mp_log_count]
        r config set rdb-save-stat-memory no
    }

    test {A profiling save that fails sets status err and keeps the previous figures} {
        r flushall sync
        r debug populate 300
        mp_profile
        set prev [mp_info_dict]
        set before [mp_log_count]
        set dir [lindex [r config get dir] 1]
        set gone [file join $dir gone]
        file mkdir $gone
        r config set dir $gone
        file delete -force $gone
        r set more 1
        r bgsave stat_memory
        waitForBgsave r
        wait_for_condition 100 50 {[mp_info rdb_stats_in_progress] == 0} else { fail "still in progress" }
        assert_equal err [s rdb_last_bgsave_status]
        assert_equal err [mp_info rdb_stats_status]
        assert_equal $before [mp_log_count]
        set now [mp_info_dict]
        foreach k [dict keys $prev] {
            if {$k in {rdb_stats_status}} continue
            assert_equal [dict get $prev $k] [dict get $now $k] $k
        }
        assert_match {*last profile failed or was stopped*} [r memory doctor]
        r config set dir $dir
        mp_profile
        assert_equal ok [mp_info rdb_stats_status]
        assert_equal 301 [mp_info rdb_stats_keys]
    }

    test {BGSAVE CANCEL of a profiling save: status err, nothing published} {
        r config set rdb-key-save-delay 10000
        set before [mp_log_count]
        r bgsave stat_memory
        assert_equal 1 [mp_info rdb_stats_in_progress]
        r bgsave cancel
        waitForBgsave r
        wait_for_condition 100 50 {[mp_info rdb_stats_in_progress] == 0} else { fail "still in progress" }
        r config set rdb-key-save-delay 0
        assert_equal err [mp_info rdb_stats_status]
        assert_equal $before [mp_log_count]
        assert_equal PONG [r ping]
    }

    test {MEMORY DOCTOR: how to take a profile, then the dominant type and its settings} {
        r flushall sync
        # The wording without any profile is checked on a fresh server below.
        for {set i 0} {$i < 40} {incr i} {
            set args {}
            for {set j 0} {$j < 600} {incr j} { lappend args f$j [string repeat v 40] }
            r hset h:$i {*}$args
        }
        assert_equal hashtable [r object encoding h:0]
        r debug populate 100 small
        mp_profile
        set doc [r memory doctor]
        assert_match {*Memory composition*} $doc
        assert_match {*User data by type: hash *} $doc
        assert_match {*hashes in their hashtable encoding*hash-max-listpack-entries (now 512)*} $doc
        assert_match {*Largest categories: user data *} $doc
        assert_match {*The profile explains *% of used_memory*} $doc
    }

    test {The log parser reads this server's log, plain and gzip-rotated, and agrees with INFO} {
        mp_profile
        set log [srv 0 stdout]
        set n [mp_log_count]
        set rotated [file join [lindex [r config get dir] 1] rotated.log.1.gz]
        exec gzip -c $log > $rotated
        set out [exec python3 utils/memprof_log.py $rotated $log]
        # Every profile twice (the rotated copy and the live file), none partial.
        assert_equal [expr {2 * $n}] [llength [split [string trim $out] "\n"]]
        set last [exec python3 utils/memprof_log.py --last $log]
        set info [mp_info_dict]
        foreach {json field} {keys rdb_stats_keys bytes rdb_stats_bytes hash_keys rdb_stats_hash_keys
                              hash_bytes rdb_stats_hash_bytes string_bytes rdb_stats_string_bytes
                              mem_kv_user_data mem_kv_user_data mem_kv_expiration mem_kv_expiration
                              mem_um_kvstore mem_um_kvstore mem_um_clients_io mem_um_clients_io
                              mem_sys_repl_backlog mem_sys_repl_backlog} {
            assert {[regexp "\"$json\": (\\d+)" $last -> v]}
            assert_equal [dict get $info $field] $v $json
        }
        file delete $rotated
    }
}

start_server {overrides {save ""}} {
    test {MEMORY DOCTOR without a profile says how to take one} {
        assert_match {*No profile yet. Run BGSAVE STAT_MEMORY*MEMORY PROFILE START*} [r memory doctor]
    }
}

# With AOF on and a replica attached, the clients, AOF and replication figures
# equal INFO memory's read at the same moment: with the replica in sync, then
# with the replica stalled behind a large replication buffer and a client
# holding a large unread reply.
start_server {overrides {save "" appendonly yes repl-ping-replica-period 3600}} {
    set primary [srv 0 client]
    set primary_host [srv 0 host]
    set primary_port [srv 0 port]
    $primary config set repl-diskless-sync no
    $primary config set repl-backlog-size 1mb
    $primary config set client-output-buffer-limit "replica 0 0 0"
    $primary debug populate 2000
    waitForBgrewriteaof $primary

    start_server {overrides {save ""}} {
        r replicaof $primary_host $primary_port
        wait_for_condition 100 100 {[s master_link_status] eq {up}} else { fail "replica did not sync" }

        test {With AOF and a replica in sync, the profile's clients, AOF and replication figures are INFO memory's} {
            assert_equal 1 [status $primary aof_enabled]
            assert_equal 1 [status $primary connected_slaves]
            # Writes the replica and the AOF have both taken.
            for {set i 0} {$i < 100} {incr i} { $primary set k:$i [string repeat a 1000] }
            wait_for_ofs_sync $primary r
            mp_assert_overhead_matches_info $primary
        }

        test {With a stalled replica and a client not reading its reply, the same figures are INFO memory's} {
            set replica_pid [srv 0 pid]
            pause_process $replica_pid
            set payload [string repeat r 10000]
            set rd [valkey_deferring_client -1]
            for {set i 0} {$i < 1000} {incr i} { $rd set r:$i $payload }
            $rd flush
            for {set i 0} {$i < 1000} {incr i} { $rd read }
            # A client that sends GETs and reads no reply.
            $primary set big [string repeat x 100000]
            for {set i 0} {$i < 100} {incr i} { $rd get big }
            $rd flush
            wait_for_condition 100 50 {[status $primary mem_clients_normal] > 2000000} else {
                fail "the reply did not pile up: [status $primary mem_clients_normal]"
            }
            # The situations to measure are there (a check of the setup, not
            # of the profile).
            assert_morethan [status $primary mem_clients_slaves] 1000000
            mp_assert_overhead_matches_info $primary
            resume_process $replica_pid
            $rd close
            wait_for_ofs_sync $primary r
            assert_equal [$primary debug digest] [r debug digest]
        }
    }
}

foreach diskless {no yes} {
    start_server {overrides {save "" rdb-save-stat-memory yes}} {
        set primary [srv 0 client]
        set primary_host [srv 0 host]
        set primary_port [srv 0 port]
        $primary config set repl-diskless-sync $diskless
        $primary config set repl-diskless-sync-delay 0
        $primary debug populate 2000
        set before [mp_log_count]

        start_server {overrides {save ""}} {
            test "Replication full sync (diskless $diskless) never profiles, even with rdb-save-stat-memory yes" {
                r replicaof $primary_host $primary_port
                wait_for_condition 100 100 {[s master_link_status] eq {up}} else {
                    fail "replica did not sync"
                }
                assert_equal [$primary debug digest] [r debug digest]
                assert_equal $before [mp_log_count -1]
                assert_equal none [mp_info rdb_stats_status $primary]
                assert_equal 0 [mp_info rdb_stats_in_progress $primary]
            }

            test "A profiling save with a replica attached: replication figures as INFO memory counts them (diskless $diskless)" {
                # DEBUG POPULATE is not propagated: put something in the
                # backlog, so that two empty backlogs are not what is compared.
                for {set i 0} {$i < 20} {incr i} { $primary set backlog [string repeat b 1000] }
                wait_for_ofs_sync $primary r
                mp_assert_overhead_matches_info $primary
                assert_morethan [status $primary mem_replication_backlog] 16000
                assert_equal 2001 [mp_info rdb_stats_keys $primary]
                # The replica still works and catches up.
                $primary set after-profile 1
                wait_for_condition 100 50 {[r get after-profile] eq {1}} else { fail "replica stalled" }
            }
        }
    }
}

}
