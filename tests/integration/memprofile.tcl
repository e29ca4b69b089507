# Memory profiling: config, save points, replication, failures, MEMORY DOCTOR.

source tests/helpers/memprofile-util.tcl

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
        wait_for_condition 100 10 {[mp_log_count] == $before + 1} else { fail "plain BGSAVE did not profile" }
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
        wait_for_condition 100 10 {[mp_info rdb_stats_in_progress] == 0} else { fail "still in progress" }
        assert_equal err [s rdb_last_bgsave_status]
        assert_equal err [mp_info rdb_stats_status]
        assert_equal $before [mp_log_count]
        set now [mp_info_dict]
        foreach k [dict keys $prev] {
            if {$k in {rdb_stats_status}} continue
            assert_equal [dict get $prev $k] [dict get $now $k] $k
        }
        assert_match {*last profiling save failed*} [r memory doctor]
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
        wait_for_condition 100 10 {[mp_info rdb_stats_in_progress] == 0} else { fail "still in progress" }
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
        assert_match {*No profile yet. Run BGSAVE STAT_MEMORY*} [r memory doctor]
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

            test "A profiling save with a replica attached shows the replication backlog (diskless $diskless)" {
                $primary bgsave stat_memory
                waitForBgsave $primary
                wait_for_condition 100 10 {[mp_info rdb_stats_status $primary] eq {ok}} else {
                    fail "no profile"
                }
                assert_morethan [mp_info mem_sys_repl_backlog $primary] 0
                assert_equal 2000 [mp_info rdb_stats_keys $primary]
                # The replica still works and catches up.
                $primary set after-profile 1
                wait_for_condition 100 50 {[r get after-profile] eq {1}} else { fail "replica stalled" }
            }
        }
    }
}

}
