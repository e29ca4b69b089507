# BGSAVE STAT_MEMORY: command surface and exactness against the allocator.

source tests/helpers/memprofile-util.tcl

set mp_overrides {
    save ""
    latency-tracking no
    commandlog-execution-slower-than -1
    commandlog-request-larger-than -1
    commandlog-reply-larger-than -1
    enable-debug-command yes
}

start_server [list tags {"memprofile external:skip"} overrides $mp_overrides] {
    test {BGSAVE STAT_MEMORY: bad forms are syntax errors} {
        foreach args {
            {stat_memory schedule} {schedule stat_memory} {stat_memory cancel}
            {cancel stat_memory} {stat_memory stat_memory} {stat_memoryx} {stat-memory}
            {foo} {stat_memory foo} {schedule foo}
        } {
            assert_error {*syntax error*} [list r bgsave {*}$args]
        }
        # Nothing was started by any of them.
        assert_equal 0 [s rdb_bgsave_in_progress]
        assert_equal none [mp_info rdb_stats_status]
    }

    test {BGSAVE STAT_MEMORY is in COMMAND DOCS with its history} {
        set docs [r command docs bgsave]
        assert_match {*STAT_MEMORY*} $docs
        assert_match {*Added the `STAT_MEMORY` option*} $docs
    }

    test {INFO rdb_stats: every field present and zero before the first profile} {
        set d [mp_info_dict]
        assert_equal none [dict get $d rdb_stats_status]
        set expected {rdb_stats_status rdb_stats_in_progress rdb_stats_last_time rdb_stats_duration_ms
            rdb_stats_used_memory rdb_stats_keys rdb_stats_bytes}
        foreach t {string list set zset hash stream module} {
            lappend expected rdb_stats_${t}_keys rdb_stats_${t}_bytes
        }
        foreach e {string_int string_embstr string_raw list_listpack list_quicklist set_intset set_listpack
                   set_hashtable zset_listpack zset_skiplist hash_listpack hash_hashtable stream_stream} {
            lappend expected rdb_stats_${e}_keys rdb_stats_${e}_bytes
        }
        lappend expected mem_kv_user_data mem_kv_expiration mem_kv_hash_metadata mem_um_kvstore \
            mem_um_clients_io mem_sys_aof_buffer mem_sys_repl_buffer mem_sys_repl_backlog
        assert_equal [lsort $expected] [lsort [dict keys $d]]
        dict for {k v} $d {
            if {$k ne "rdb_stats_status"} { assert_equal 0 $v "$k" }
        }
    }

    test {INFO rdb_stats is shown by INFO all and everything, not by plain INFO} {
        assert_no_match {*rdb_stats_status*} [r info]
        assert_no_match {*rdb_stats_status*} [r info default]
        assert_match {*# Rdb_stats*rdb_stats_status:*} [r info all]
        assert_match {*# Rdb_stats*rdb_stats_status:*} [r info everything]
        assert_match {*# Rdb_stats*} [r info RDB_STATS]
        assert_match {*# Keyspace*# Rdb_stats*} [r info rdb_stats keyspace]
    }

    # Each case: a slot, the encoding OBJECT ENCODING must report, the number
    # of keys, and a script that creates them on the connection $c.
    set cases {
        string_int int 3000 {
            for {set i 0} {$i < 3000} {incr i} { $c set k:$i [expr {1000000 + $i}] }
        }
        string_embstr embstr 3000 {
            for {set i 0} {$i < 3000} {incr i} { $c set k:$i "value-$i" }
        }
        string_raw raw 1000 {
            for {set i 0} {$i < 1000} {incr i} { $c set k:$i [string repeat x [expr {60 + $i % 300}]] }
        }
        list_listpack listpack 1000 {
            for {set i 0} {$i < 1000} {incr i} { $c rpush k:$i a b c [expr {$i * 7}] "element-$i" }
        }
        list_quicklist quicklist 40 {
            $c config set list-max-listpack-size 16
            $c config set list-compress-depth 1
            for {set i 0} {$i < 40} {incr i} {
                set elems {}
                for {set j 0} {$j < 200} {incr j} { lappend elems "compressible-[string repeat a 40]-$j" }
                $c rpush k:$i {*}$elems
                # One plain node: an element larger than the node limit.
                $c rpush k:$i [string repeat b 10000]
            }
        }
        set_intset intset 1000 {
            for {set i 0} {$i < 1000} {incr i} { $c sadd k:$i 1 2 3 [expr {$i * 1000}] 70000 }
        }
        set_listpack listpack 1000 {
            for {set i 0} {$i < 1000} {incr i} { $c sadd k:$i a b c "m-$i" }
        }
        set_hashtable hashtable 30 {
            for {set i 0} {$i < 30} {incr i} {
                set elems {}
                for {set j 0} {$j < 300} {incr j} { lappend elems "member-$i-$j-[string repeat m [expr {$j % 50}]]" }
                $c sadd k:$i {*}$elems
            }
        }
        zset_listpack listpack 1000 {
            for {set i 0} {$i < 1000} {incr i} { $c zadd k:$i 1 a 2 b 3.5 "z-$i" }
        }
        zset_skiplist skiplist 30 {
            for {set i 0} {$i < 30} {incr i} {
                set args {}
                for {set j 0} {$j < 300} {incr j} { lappend args [expr {$j * 1.5}] "zm-$i-$j" }
                $c zadd k:$i {*}$args
            }
        }
        hash_listpack listpack 1000 {
            for {set i 0} {$i < 1000} {incr i} { $c hset k:$i f1 v1 f2 [expr {$i * 3}] "field-$i" "value-$i" }
        }
        hash_hashtable hashtable 30 {
            for {set i 0} {$i < 30} {incr i} {
                set args {}
                for {set j 0} {$j < 300} {incr j} {
                    # Short values are embedded in the entry, long ones are not.
                    lappend args "f-$j" [string repeat v [expr {($j % 3 == 0) ? 200 : 10}]]
                }
                $c hset k:$i {*}$args
            }
        }
        stream_stream stream 50 {
            for {set i 0} {$i < 50} {incr i} {
                for {set j 0} {$j < 200} {incr j} { $c xadd k:$i * field $j other "payload-$j" }
                $c xgroup create k:$i g1 0
                $c xgroup create k:$i g2 0
                $c xreadgroup group g1 alice count 50 streams k:$i >
                $c xreadgroup group g1 bob count 20 streams k:$i >
                $c xreadgroup group g2 carol count 10 streams k:$i >
            }
        }
    }

    foreach {slot encoding nkeys script} $cases {
        test "Profile of $slot: $nkeys keys, bytes equal the allocator's accounting" {
            r flushall sync
            r config set list-max-listpack-size -2
            r config set list-compress-depth 0
            set c [valkey_client]
            eval $script
            $c close
            mp_wait_single_client
            assert_equal $encoding [r object encoding k:0]

            mp_profile
            lassign [mp_allocator_view] used1 lut1
            set keys [mp_info rdb_stats_${slot}_keys]
            set bytes [mp_info rdb_stats_${slot}_bytes]
            set total_keys [mp_info rdb_stats_keys]
            set total_bytes [mp_info rdb_stats_bytes]
            r flushall sync
            lassign [mp_allocator_view] used0 lut0

            assert_equal $nkeys $keys
            assert_equal $nkeys $total_keys
            assert_equal $bytes $total_bytes
            assert_equal ok [mp_info rdb_stats_status]
            if {[mp_is_jemalloc]} {
                set truth [expr {($used1 - $used0) - ($lut1 - $lut0)}]
                set err [expr {abs($bytes - $truth) / double($truth)}]
                if {$::verbose} { puts "$slot: profile $bytes allocator $truth error [format %.4f%% [expr {$err * 100}]]" }
                assert {$err <= 0.005}
            }
        }
    }

    test {Exact after DEBUG RELOAD: objects made by the RDB loader, with and without TTLs} {
        r flushall sync
        r config set list-max-listpack-size -2
        r config set list-compress-depth 0
        set c [valkey_client]
        for {set i 0} {$i < 300} {incr i} {
            $c set int:$i [expr {$i * 1000}]
            $c set emb:$i "v$i"
            $c set raw:$i [string repeat r [expr {50 + $i}]]
            $c rpush list:$i a b $i
            $c sadd iset:$i 1 2 $i
            $c hset hash:$i f v g $i
            $c zadd zset:$i 1 a 2 $i
            if {$i % 3 == 0} {
                foreach k [list int:$i emb:$i raw:$i list:$i iset:$i hash:$i zset:$i] { $c expire $k 100000 }
            }
        }
        for {set i 0} {$i < 5} {incr i} {
            set members {}
            set scored {}
            for {set j 0} {$j < 200} {incr j} {
                lappend members m$i-$j
                lappend scored $j e$i-$j
            }
            $c sadd bigset:$i {*}$members
            $c zadd bigzset:$i {*}$scored
            $c rpush biglist:$i {*}[lrepeat 2000 elem]
            $c xadd stream:$i * a 1 b 2
            $c expire bigset:$i 100000
        }
        $c close
        mp_wait_single_client
        r debug reload
        mp_profile
        lassign [mp_allocator_view] used1 lut1
        set bytes [mp_info rdb_stats_bytes]
        assert_equal 2120 [mp_info rdb_stats_keys]
        r flushall sync
        lassign [mp_allocator_view] used0 lut0
        if {[mp_is_jemalloc]} {
            set truth [expr {($used1 - $used0) - ($lut1 - $lut0)}]
            if {$::verbose} { puts "after reload: profile $bytes allocator $truth" }
            assert {abs($bytes - $truth) <= $truth * 0.005}
        }
    }

    test {The log lines equal INFO rdb_stats of the same profile} {
        r flushall sync
        r set s1 123
        r set s2 hello
        r rpush l1 a b c
        r sadd set1 1 2 3
        r zadd z1 1 a
        r hset h1 f v
        r xadd x1 * f v
        mp_profile
        set log [mp_log_figures]
        set d [mp_info_dict]
        assert_equal [dict get $d rdb_stats_keys] [dict get $log total_keys]
        assert_equal [dict get $d rdb_stats_bytes] [dict get $log total_bytes]
        foreach t {string list set zset hash stream} {
            assert_equal [dict get $d rdb_stats_${t}_keys] [dict get $log ${t}_keys] $t
            assert_equal [dict get $d rdb_stats_${t}_bytes] [dict get $log ${t}_bytes] $t
        }
        assert_equal 2 [dict get $log string_keys]
        # Types with no keys are left out of the line.
        assert {![dict exists $log module_keys]}
        foreach {info log_name} {mem_kv_user_data user mem_kv_expiration expire mem_kv_hash_metadata hash_meta
                                 mem_um_kvstore kvstore mem_um_clients_io clients mem_sys_aof_buffer aof_buf
                                 mem_sys_repl_buffer repl_buf mem_sys_repl_backlog repl_backlog} {
            assert_equal [dict get $d $info] [dict get $log $log_name] $info
        }
        assert_equal 0 [dict get $log hash_meta]
        assert_equal [dict get $d rdb_stats_bytes] [dict get $d mem_kv_user_data]
    }

    test {Keys with TTLs across dbs and streams with groups: totals equal the sum of DBSIZE} {
        r flushall sync
        set total 0
        foreach db {0 3 9 15} {
            r select $db
            for {set i 0} {$i < 200} {incr i} {
                r set k:$i v:$i
                if {$i % 2} { r expire k:$i 10000 }
            }
            r xadd st * a 1
            r xgroup create st grp 0
            r xreadgroup group grp c1 streams st >
            incr total [r dbsize]
        }
        r select 9
        mp_profile
        assert_equal $total [mp_info rdb_stats_keys]
        assert_equal 4 [mp_info rdb_stats_stream_keys]
        set with_ttl [mp_info mem_kv_expiration]
        r flushall sync
        foreach db {0 3 9 15} {
            r select $db
            for {set i 0} {$i < 200} {incr i} { r set k:$i v:$i }
        }
        r select 9
        mp_profile
        # The expires tables hold 400 keys in the first profile, none now.
        assert_morethan $with_ttl [mp_info mem_kv_expiration]
        assert_morethan [mp_info mem_kv_expiration] 0
    }

    test {An RDB written by BGSAVE STAT_MEMORY loads back to the same digest} {
        r flushall sync
        r debug populate 20000 key 32
        r rpush biglist {*}[lrepeat 500 elem]
        r sadd bigset {*}[lmap i [lrepeat 300 x] {incr j}]
        r hset h a 1 b 2
        r zadd zs 1 a 2 b
        r xadd x * a 1
        r expire key:1 1000
        set digest [r debug digest]
        mp_profile
        assert_equal ok [mp_info rdb_stats_status]
        set dir [lindex [r config get dir] 1]
        set rdb [file join $dir [lindex [r config get dbfilename] 1]]
        set check [exec src/valkey-check-rdb $rdb]
        assert_match {*RDB looks OK*} $check
        r debug reload nosave
        assert_equal $digest [r debug digest]
    }

    test {Plain BGSAVE and SAVE do not profile} {
        set before [mp_log_count]
        set last [mp_info rdb_stats_last_time]
        r bgsave
        waitForBgsave r
        r save
        assert_equal $before [mp_log_count]
        assert_equal $last [mp_info rdb_stats_last_time]
    }

    test {BGSAVE STAT_MEMORY while a save runs replies as plain BGSAVE} {
        r config set rdb-key-save-delay 200
        r bgsave
        assert_error {*already in progress*} {r bgsave stat_memory}
        r bgsave cancel
        waitForBgsave r
        r config set rdb-key-save-delay 0
    }

    test {BGSAVE STAT_MEMORY inside MULTI is scheduled and still profiles} {
        set before [mp_log_count]
        r multi
        r bgsave stat_memory
        set reply [r exec]
        assert_match {*scheduled*} $reply
        wait_for_condition 200 100 {[mp_log_count] == $before + 1} else {
            fail "the scheduled save did not profile"
        }
        waitForBgsave r
    }

    test {A cancelled scheduled BGSAVE STAT_MEMORY leaves nothing behind} {
        waitForBgsave r
        r flushall sync
        r config set appendonly no
        r config set rdb-key-save-delay 1000
        r debug populate 1000 sched
        r bgrewriteaof
        wait_for_condition 100 10 {[s aof_rewrite_in_progress] == 1} else { fail "no rewrite" }
        r multi
        r bgsave stat_memory
        assert_match {*scheduled*} [r exec]
        assert_equal {Scheduled background saving cancelled} [r bgsave cancel]
        r config set rdb-key-save-delay 0
        wait_for_condition 100 50 {[s aof_rewrite_in_progress] == 0} else { fail "rewrite still running" }
        set before [mp_log_count]
        r bgsave
        waitForBgsave r
        after 100
        assert_equal $before [mp_log_count]
    }

    test {A profiling child killed mid-save publishes nothing and the server keeps serving} {
        r flushall sync
        r debug populate 1000
        mp_profile
        set prev [mp_info_dict]
        set before [mp_log_count]
        r debug populate 1000 other
        r config set rdb-key-save-delay 1000
        r bgsave stat_memory
        wait_for_condition 100 10 {[mp_info rdb_stats_in_progress] == 1} else { fail "not in progress" }
        after 100
        set pid [get_child_pid 0]
        exec kill -9 $pid
        waitForBgsave r
        r config set rdb-key-save-delay 0
        assert_equal PONG [r ping]
        assert_equal err [mp_info rdb_stats_status]
        assert_equal 0 [mp_info rdb_stats_in_progress]
        assert_equal $before [mp_log_count]
        set now [mp_info_dict]
        foreach k [dict keys $prev] {
            if {$k in {rdb_stats_status rdb_stats_in_progress}} continue
            assert_equal [dict get $prev $k] [dict get $now $k] $k
        }
        # A new profile afterwards works and is published.
        mp_profile
        assert_equal ok [mp_info rdb_stats_status]
        assert_equal 2000 [mp_info rdb_stats_keys]
    }
}
