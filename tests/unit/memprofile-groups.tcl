# Key groups (memory-profile-groups): the config's checks, and each group's
# keys and bytes against the allocator's cost of the keys it holds.

source tests/helpers/memprofile-util.tcl

# The groups of the exactness case: nested (sess and users in app, all of
# them in a and in all), the empty prefix (all), a binary prefix (bin), a
# group nothing matches (none), and one whose prefix must never leave the
# config (secret).
set ::groups_conf {sess app:s: app app: users app:u: a a bin "\x00\xff" all "" none zz: secret grpsecret:}

# The allocator's cost of the keys of one db: the drop of used_memory when
# FLUSHDB SYNC frees them, minus the drop of the keyspace and expires tables
# (mp_allocator_view). Returns {keys bytes}.
proc groups_measure_db {db} {
    r select $db
    set keys [r dbsize]
    lassign [mp_allocator_view] a0 l0
    r flushdb sync
    lassign [mp_allocator_view] a1 l1
    r select 9
    list $keys [expr {($a0 - $a1) - ($l0 - $l1)}]
}

# A group's figures from INFO rdb_stats: {keys bytes}, or {} when absent.
proc groups_info {name} {
    set d [mp_info_dict]
    if {![dict exists $d rdb_stats_group_${name}_keys]} { return {} }
    list [dict get $d rdb_stats_group_${name}_keys] [dict get $d rdb_stats_group_${name}_bytes]
}

start_server [list tags {"memprofile external:skip"} overrides $::mp_exact_free_overrides] {
    r debug replybuffer resizing 0

    test {memory-profile-groups: bad values are refused with a reason, the old value stays} {
        r config set memory-profile-groups {ok pre:}
        foreach {value reason} {
            {a}                       {*expected pairs of a group name and a key prefix*}
            {a b c}                   {*expected pairs of a group name and a key prefix*}
            {Upper x:}                {*a group name is 1 to 32 bytes of a-z, 0-9 and _*}
            {a-b x:}                  {*a group name is 1 to 32 bytes of a-z, 0-9 and _*}
            {"" x:}                   {*a group name is 1 to 32 bytes of a-z, 0-9 and _*}
            {a x: b y: a z:}          {*a group name appears twice*}
            {a "x:}                   {*unbalanced quotes*}
        } {
            assert_error $reason [list r config set memory-profile-groups $value]
        }
        assert_error {*a group name is 1 to 32 bytes*} \
            [list r config set memory-profile-groups "[string repeat n 33] x:"]
        assert_error {*a group prefix is at most 1024 bytes*} \
            [list r config set memory-profile-groups "long [string repeat p 1025]"]
        set many {}
        for {set i 0} {$i < 33} {incr i} { lappend many g$i p$i: }
        assert_error {*at most 32 groups*} [list r config set memory-profile-groups [join $many " "]]
        assert_error {*NUL byte*} [list r config set memory-profile-groups "a \x00"]
        assert_equal {ok pre:} [lindex [r config get memory-profile-groups] 1]
        # 32 groups of 32-byte names and a 1024-byte prefix are accepted.
        set most {}
        for {set i 0} {$i < 31} {incr i} { lappend most [format %032d $i] p$i: }
        lappend most last [string repeat p 1024]
        r config set memory-profile-groups [join $most " "]
        r config set memory-profile-groups ""
        assert_equal {} [lindex [r config get memory-profile-groups] 1]
    }

    test {Key groups: each group's keys and bytes equal its keys' allocator cost (nested, binary, several dbs)} {
        r flushall sync
        r debug dict-resizing 0
        r config set memory-profile-groups $::groups_conf
        # One db per set of keys that belong to the same groups, so that
        # FLUSHDB measures each set apart.
        set c [valkey_client]
        $c select 0
        for {set i 0} {$i < 100} {incr i} { $c set app:s:$i [string repeat v [expr {$i % 90}]] }
        for {set i 0} {$i < 20} {incr i} { $c hset app:s:h$i f1 a f2 [string repeat b $i] }
        for {set i 0} {$i < 10} {incr i} { $c setex app:s:t$i 1000 x$i }
        $c select 1
        for {set i 0} {$i < 50} {incr i} { $c zadd app:u:$i 1 a 2 b 3 [string repeat c $i] }
        $c select 2
        for {set i 0} {$i < 30} {incr i} { $c rpush app:x:$i a b c d [string repeat e $i] }
        $c select 3
        for {set i 0} {$i < 40} {incr i} { $c set "\x00\xff$i" [string repeat z [expr {$i * 5}]] }
        $c select 4
        for {set i 0} {$i < 60} {incr i} { $c sadd other:$i 1 2 3 m$i }
        for {set i 0} {$i < 10} {incr i} { $c set "\x00\xfe$i" v }
        $c select 5
        for {set i 0} {$i < 25} {incr i} { $c set app:s:d5:$i [string repeat w 200] }
        $c select 6
        for {set i 0} {$i < 15} {incr i} { $c set grpsecret:$i v$i }
        $c select 7
        for {set i 0} {$i < 12} {incr i} { $c set ab:$i v$i }
        $c close
        mp_wait_single_client
        r select 9

        mp_profile
        set got [dict create]
        foreach {name -} $::groups_conf { dict set got $name [groups_info $name] }

        set truth [dict create]
        foreach db {0 1 2 3 4 5 6 7} { dict set truth $db [groups_measure_db $db] }
        # The dbs whose keys each group holds (db 4's "\x00\xfe" keys are in
        # none but all).
        set members {sess {0 5} app {0 1 2 5} users {1} a {0 1 2 5 7} bin {3} all {0 1 2 3 4 5 6 7}
                     none {} secret {6}}
        foreach {name dbs} $members {
            set keys 0
            set bytes 0
            foreach db $dbs {
                lassign [dict get $truth $db] k b
                incr keys $k
                incr bytes $b
            }
            lassign [dict get $got $name] gk gb
            if {$::verbose} { puts "group $name: profile $gk keys $gb bytes, allocator $keys keys $bytes bytes" }
            assert_equal $keys $gk "group $name: keys"
            set bound [expr {$keys + 256}]
            assert_range $gb [expr {$bytes - $bound}] [expr {$bytes + $bound}] \
                "group $name: profile $gb bytes, allocator $bytes bytes"
        }
        # Exact to the byte against the profile's own totals: all is every key.
        assert_equal [list [mp_info rdb_stats_keys] [mp_info rdb_stats_bytes]] [dict get $got all]
        assert_equal {0 0} [dict get $got none]
        r debug dict-resizing 1
    }

    test {Key groups: in MEMORY PROFILE REPORT and HISTORY, in the config's order} {
        r flushall sync
        r set app:s:1 a
        r set app:u:1 bb
        r set other c
        mp_profile
        set rep [r memory profile report]
        set groups [dict get $rep groups]
        assert_equal {sess app users a bin all none secret} [dict keys $groups]
        foreach name [dict keys $groups] {
            lassign [groups_info $name] k b
            assert_equal [list keys $k bytes $b] [dict get $groups $name]
        }
        assert_equal 2 [dict get $groups app keys]
        set h [lindex [r memory profile history count 1] 0]
        assert_equal $groups [dict get $h groups]
        # RESP3: a map of maps.
        r hello 3
        set rep3 [r memory profile report]
        r hello 2
        assert_equal [dict get $groups sess] [dict get $rep3 groups sess]
    }

    test {Key groups: a prefix reaches neither INFO, MEMORY DOCTOR nor the log} {
        r flushall sync
        r set grpsecret:1 v
        mp_profile
        assert_equal {1} [lindex [groups_info secret] 0]
        assert_no_match {*grpsecret*} [r info everything]
        assert_no_match {*grpsecret*} [r memory doctor]
        set fp [open [srv 0 stdout] r]
        set log [read $fp]
        close $fp
        assert_no_match {*grpsecret*} $log
    }

    test {Key groups: a change applies from the next profile; a group no longer configured leaves INFO} {
        r flushall sync
        r set app:s:1 a
        mp_profile
        assert_equal 1 [lindex [groups_info sess] 0]
        r config set memory-profile-groups {fresh app:}
        # The published profile still is the one taken with the old groups.
        assert_equal 1 [lindex [groups_info sess] 0]
        assert_equal {} [groups_info fresh]
        mp_profile
        assert_equal {} [groups_info sess]
        assert_equal 1 [lindex [groups_info fresh] 0]
        r config set memory-profile-groups ""
        mp_profile
        assert_no_match {*rdb_stats_group_*} [r info rdb_stats]
        assert_equal {} [dict get [r memory profile report] groups]
    }

    test {Key groups: a profile-only child counts them as a save does} {
        r flushall sync
        r config set memory-profile-groups {sess app:s: all ""}
        for {set i 0} {$i < 50} {incr i} { r set app:s:$i [string repeat x $i] }
        for {set i 0} {$i < 20} {incr i} { r hset h:$i a b }
        mp_profile
        set saved [list [groups_info sess] [groups_info all]]
        r memory profile start
        wait_for_condition 200 50 {[mp_info rdb_stats_in_progress] == 0} else { fail "profile still running" }
        assert_equal profile [mp_info rdb_stats_source]
        assert_equal $saved [list [groups_info sess] [groups_info all]]
        assert_equal 50 [lindex [groups_info sess] 0]
    }

    test {memory-profile-groups: CONFIG REWRITE keeps it, binary prefix and all} {
        r config set memory-profile-groups {sess app:s: bin "\x00\xff" sp "a b"}
        set before [lindex [r config get memory-profile-groups] 1]
        r config rewrite
        restart_server 0 true false
        assert_equal $before [lindex [r config get memory-profile-groups] 1]
        r flushall sync
        r set "\x00\xffk" v
        r set "a b:c" v
        r set "a c" v
        mp_profile
        assert_equal 1 [lindex [groups_info bin] 0]
        assert_equal 1 [lindex [groups_info sp] 0]
        assert_equal 0 [lindex [groups_info sess] 0]
    }
}
