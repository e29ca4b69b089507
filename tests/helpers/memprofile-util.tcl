# Helpers shared by the memory profiling tests.

# Server overrides of the byte-exact tests that measure keys by deleting
# or flushing them: no save, no latency histograms, latency monitor events
# or command logs allocating between two measures, no background rehash,
# and synchronous freeing, so that what DEL or FLUSHDB frees is gone when it
# replies. (The test suite's default latency-monitor-threshold of 1 ms makes
# the first command of each kind that takes longer, a FLUSHALL on a loaded
# machine, allocate a 1600-byte event series for good.)
set ::mp_exact_free_overrides {
    save ""
    latency-tracking no
    latency-monitor-threshold 0
    activerehashing no
    commandlog-execution-slower-than -1
    commandlog-request-larger-than -1
    commandlog-reply-larger-than -1
    enable-debug-command yes
    lazyfree-lazy-user-flush no
    lazyfree-lazy-user-del no
}

# One field of INFO rdb_stats.
proc mp_info {field {r r}} {
    getInfoProperty [{*}$r info rdb_stats] $field
}

# All of INFO rdb_stats as a dict.
proc mp_info_dict {{r r}} {
    set d [dict create]
    foreach line [split [{*}$r info rdb_stats] "\r\n"] {
        if {[regexp {^([a-z0-9_]+):(.*)$} $line -> k v]} { dict set d $k $v }
    }
    return $d
}

# Run BGSAVE STAT_MEMORY and wait for the child to be reaped.
proc mp_profile {{r r}} {
    assert_equal {Background saving started} [{*}$r bgsave stat_memory]
    waitForBgsave $r
    wait_for_condition 200 50 {[mp_info rdb_stats_in_progress $r] == 0} else {
        fail "profiling save still in progress"
    }
}

# rdb_stats_last_time (and a summary's time) has a resolution of a second:
# wait until the clock has passed the published profile's second, so that a
# profile started after this has a later time (half a second on average,
# instead of a fixed second).
proc mp_next_second {{r r}} {
    set t [mp_info rdb_stats_last_time $r]
    wait_for_condition 100 50 {[clock seconds] > $t} else { fail "the clock did not pass $t" }
}

# Whether the tree under test is the 9.x base, before any server runs (for
# configs that only 9.x knows): from its src/version.h.
proc mp_tree_base9 {} {
    set fp [open src/version.h r]
    set text [read $fp]
    close $fp
    expr {[regexp {VALKEY_VERSION "([0-9]+)\.} $text -> major] && $major >= 9}
}

# Whether the server is built on the 9.x base (fixtures that depend on the
# base say so: embedding thresholds, hash field TTLs).
proc mp_base9 {{r r}} {
    expr {[lindex [split [getInfoProperty [{*}$r info server] valkey_version] .] 0] >= 9}
}

# The shortest string value that is RAW under any key: 8.1 embeds a value
# while the whole object is <= 64 bytes, 9.1 while it is <= 128 bytes.
proc mp_raw_min {} {
    expr {[mp_base9] ? 130 : 60}
}

proc mp_is_jemalloc {} {
    string match {*jemalloc*} [s mem_allocator]
}

# The bytes an allocator hands out beyond a request that is a multiple of 16
# bytes, such as each allocation of a keyspace table (a bucket table, 64
# bytes times a power of two, or a chained bucket of 64 bytes), which
# MEMORY STATS counts at its request: 0 with jemalloc (those requests are
# size classes), 0 with AddressSanitizer's and valgrind's malloc (the usable
# size is the request), and 8 with glibc's malloc, whose chunk is the
# request plus an 8-byte header rounded up to 16 (below its mmap threshold,
# 128 KB: a table of 2048 buckets, some 14000 keys; the byte-exact tests
# stay far below it). glibc may hand out a whole free chunk 16 bytes larger
# than needed, when the rest is too small to split off: rare, and within
# the bounds of a byte per key.
proc mp_table_slack {} {
    if {[mp_is_jemalloc] || $::valgrind} { return 0 }
    if {[catch {exec ldd src/valkey-server} libs] == 0 && [string match {*libasan*} $libs]} { return 0 }
    return 8
}

# The keyspace tables' allocations beyond their requests: the slack of
# mp_table_slack for each chained bucket and, if 'tables', each bucket table
# of the keys and expires of every db with keys (DEBUG HTSTATS). HTSTATS
# shows no table of a db without keys, which may still hold one (its last
# key deleted with resizing off): a caller that deletes keys one by one
# under DEBUG DICT-RESIZING 0, where no bucket table comes or goes, passes
# 0. In cluster mode HTSTATS adds the slot tables up into one: their chained
# buckets are counted, their bucket tables once a section (the tests keep
# the same slot tables at both measures).
proc mp_keyspace_slack {{tables 1}} {
    set slack [mp_table_slack]
    if {$slack == 0} { return 0 }
    set n 0
    foreach db [regexp -all -inline {db\d+} [r info keyspace]] {
        set st [r debug htstats [string range $db 2 end] full]
        if {$tables} { incr n [regexp -all {table size: } $st] }
        foreach {- c} [regexp -all -inline {child buckets: (\d+)} $st] { incr n $c }
    }
    expr {$n * $slack}
}

# The allocator's accounting for the dataset at one instant: used_memory
# and the keyspace tables (MEMORY STATS overhead.db.hashtable.lut, at their
# requests, plus their slack on this allocator). Nothing runs between the
# reads but DEBUG HTSTATS, which changes no table.
proc mp_allocator_view {{tables 1}} {
    # Nothing left for the lazyfree thread to free: on a loaded machine it
    # can lag behind a DEBUG RELOAD or an asynchronous flush.
    wait_lazyfree_done r
    set stats [r memory stats]
    set lut [expr {[dict get $stats overhead.db.hashtable.lut] + [mp_keyspace_slack $tables]}]
    # The whole reply comes third, for mp_stats_changes.
    list [dict get $stats total.allocated] $lut $stats
}

# The MEMORY STATS fields that differ between two snapshots of
# mp_allocator_view (or ht_snapshot), as "field a -> b" items: what a
# failed exactness assertion adds to its message, so that a failure on a
# loaded machine says what else moved.
proc mp_stats_changes {a b} {
    set sa [lindex $a 2]
    set sb [lindex $b 2]
    set out {}
    foreach {k v} $sa {
        if {![dict exists $sb $k]} continue
        set w [dict get $sb $k]
        if {[llength $v] > 1 && [llength $v] % 2 == 0} {
            foreach {k2 v2} $v {
                if {[dict exists $w $k2] && [dict get $w $k2] ne $v2} { lappend out "$k.$k2 $v2 -> [dict get $w $k2]" }
            }
        } elseif {$v ne $w} {
            lappend out "$k $v -> $w"
        }
    }
    join $out ", "
}

# Wait until only the test's own connection is left.
proc mp_wait_single_client {} {
    wait_for_condition 100 50 {[s connected_clients] == 1} else {
        fail "loading connection did not go away"
    }
}

# The figures of the last two profile lines in the log of server srv_idx,
# as a dict: total_keys total_bytes <type>_keys <type>_bytes and the
# breakdown figures (user expire hash_meta kvstore clients aof_buf repl_buf
# repl_backlog).
proc mp_log_figures {{srv_idx 0}} {
    set fp [open [srv $srv_idx stdout] r]
    set content [read $fp]
    close $fp
    set stats ""
    set breakdown ""
    foreach line [split $content "\n"] {
        if {[string match {*RDB object stats: *} $line]} { set stats $line }
        if {[string match {*RDB memory breakdown: *} $line]} { set breakdown $line }
    }
    set d [dict create]
    if {![regexp {RDB object stats: total keys=(\d+) mem_bytes=(\d+) \|(.*)$} $stats -> k b rest]} {
        return $d
    }
    dict set d total_keys $k
    dict set d total_bytes $b
    foreach item [split [string trim $rest]] {
        if {[regexp {^([a-z]+)=(\d+)/(\d+)B$} $item -> t n bytes]} {
            dict set d ${t}_keys $n
            dict set d ${t}_bytes $bytes
        }
    }
    regexp {kv\[user=(\d+)B expire=(\d+)B hash_meta=(\d+)B\] user_meta\[kvstore=(\d+)B clients=(\d+)B\] sys\[aof_buf=(\d+)B repl_buf=(\d+)B repl_backlog=(\d+)B\]$} \
        $breakdown -> user expire hmeta kvs clients aof rbuf rback
    foreach f {user expire hmeta kvs clients aof rbuf rback} n {user expire hash_meta kvstore clients aof_buf repl_buf repl_backlog} {
        if {[info exists $f]} { dict set d $n [set $f] }
    }
    return $d
}

# Number of profile lines in the log so far.
proc mp_log_count {{srv_idx 0}} {
    set fp [open [srv $srv_idx stdout] r]
    set n [regexp -all {RDB object stats: } [read $fp]]
    close $fp
    return $n
}

proc mp_write_file {path value} {
    set fd [open $path w]
    puts -nonewline $fd $value
    close $fd
}

proc mp_read_file {path} {
    set fd [open $path r]
    set v [string trim [read $fd]]
    close $fd
    return $v
}

# Why a group of the cgroup v1 controller mounted at 'root' with the file
# 'knob' cannot be made here, or "" when it can (the fork-failure and OOM
# tests skip with this reason).
proc mp_cgroup_unusable {root knob} {
    if {$::tcl_platform(os) ne {Linux}} { return "not Linux" }
    if {![file writable $root/cgroup.procs]} {
        return "$root/cgroup.procs is not writable (no cgroup v1 controller there, or not root)"
    }
    set probe $root/valkey-memprof-probe-[pid]
    if {[catch {file mkdir $probe} err]} { return "cannot create a group under $root: $err" }
    set ok [file exists $probe/$knob]
    catch {exec rmdir $probe}
    if {!$ok} { return "$root has no $knob" }
    return ""
}
