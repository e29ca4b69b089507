# valkey-cli --memprofile and valkey-cli --cluster memprofile, checked
# against MEMORY PROFILE REPORT, INFO rdb_stats, CLUSTER COUNTKEYSINSLOT and
# the fork counters of every node.

source tests/support/cli.tcl
source tests/helpers/memprofile-util.tcl

# A small JSON reader: objects become dicts, arrays lists, strings are
# decoded (\uXXXX to one character, so that the output of --quoted-json and
# the bytes of --json read in binary compare with the test client's names).
proc mpj_parse {s} {
    set ::mpj_s $s
    set ::mpj_i 0
    return [mpj_value]
}
proc mpj_ws {} {
    regexp -start $::mpj_i -indices {\A\s*} $::mpj_s m
    set ::mpj_i [expr {[lindex $m 1] + 1}]
}
proc mpj_value {} {
    mpj_ws
    set c [string index $::mpj_s $::mpj_i]
    if {$c eq "\{" || $c eq "\["} {
        set close [expr {$c eq "\{" ? "\}" : "\]"}]
        incr ::mpj_i
        set out {}
        mpj_ws
        if {[string index $::mpj_s $::mpj_i] eq $close} {
            incr ::mpj_i
            return $out
        }
        while 1 {
            if {$c eq "\{"} {
                lappend out [mpj_value]
                mpj_ws
                incr ::mpj_i ;# the colon
            }
            lappend out [mpj_value]
            mpj_ws
            set sep [string index $::mpj_s $::mpj_i]
            incr ::mpj_i
            if {$sep eq $close} break
            if {$sep ne ","} { error "JSON: unexpected '$sep' at $::mpj_i" }
        }
        return $out
    } elseif {$c eq "\""} {
        if {![regexp -start $::mpj_i -indices {\A"((?:[^"\\]|\\.)*)"} $::mpj_s all inner]} {
            error "JSON: bad string at $::mpj_i"
        }
        set ::mpj_i [expr {[lindex $all 1] + 1}]
        set raw [string range $::mpj_s [lindex $inner 0] [lindex $inner 1]]
        return [subst -nocommands -novariables $raw]
    } else {
        if {![regexp -start $::mpj_i {\A[-+0-9.eEa-z]+} $::mpj_s tok]} { error "JSON: bad value at $::mpj_i" }
        incr ::mpj_i [string length $tok]
        return $tok
    }
}

# Run valkey-cli; returns {exit-code stdout stderr}, stdout read in binary.
proc mp_cli {args} {
    set errfile [tmpfile mpcli-err]
    set fd [open "|src/valkey-cli $args 2>$errfile" r]
    fconfigure $fd -translation binary
    set out [read $fd]
    set code 0
    if {[catch {close $fd} e opts]} {
        set code [lindex [dict get $opts -errorcode] 2]
        if {$code eq ""} { set code 1 }
    }
    set efd [open $errfile r]
    set err [read $efd]
    close $efd
    file delete $errfile
    list $code $out $err
}

proc mp_stat {field {level 0}} {
    getInfoProperty [R $level info stats] $field
}

# The keys of a dict that is a list of {name value ...} pairs, as a sorted list.
proc mp_sorted_dict {d} {
    set out {}
    foreach k [lsort [dict keys $d]] { lappend out $k [dict get $d $k] }
    return $out
}

tags {"memprofile external:skip tls:skip"} {

start_server {overrides {save {} latency-tracking no latency-monitor-threshold 0}} {
    set host [srv 0 host]
    set port [srv 0 port]
    r flushall
    r eval {
        for i = 1, 3000 do redis.call('set', 'app:user:' .. i, string.rep('x', 64)) end
        for i = 1, 200 do redis.call('set', 'cache:page:' .. i, string.rep('y', 1000)) end
        for i = 1, 100 do redis.call('setex', 'app:session:' .. i, 1000, string.rep('z', 200)) end
        for i = 1, 2000 do redis.call('hset', 'bighash', 'field' .. i, i) end
        for i = 1, 50 do redis.call('rpush', 'queue:jobs', string.rep('j', 100)) end
        return 1
    } 0
    # Names with any byte: quote, backslash, newline, NUL, invalid and valid UTF-8.
    set weird "we\"ird\\name\n\x00\xff:end"
    set utf8 [encoding convertto utf-8 "caf\u00e9:x"]
    r set $weird [string repeat w 3000]
    r set $utf8 [string repeat v 2500]

    test {valkey-cli --memprofile --json prints the profile that MEMORY PROFILE REPORT returns} {
        set forks [mp_stat total_forks]
        lassign [mp_cli -h $host -p $port --memprofile --memprofile-count 0 --quoted-json] code out err
        assert_equal 0 $code
        # Not a terminal: no progress bar.
        assert_equal {} $err
        assert_equal [expr {$forks + 1}] [mp_stat total_forks]
        set j [mpj_parse $out]
        set rep [r memory profile report count 0]
        foreach f {status source time duration_ms used_memory keys bytes} {
            assert_equal [dict get $rep $f] [dict get $j $f]
        }
        assert_equal profile [dict get $j source]
        assert_equal [mp_info rdb_stats_keys] [dict get $j keys]
        assert_equal [mp_info rdb_stats_bytes] [dict get $j bytes]
        foreach f {types encodings dbs ttl breakdown} {
            assert_equal [dict get $rep $f] [dict get $j $f]
        }
        assert_equal [llength [dict get $rep histograms]] [llength [dict get $j histograms]]
        foreach {t rows} [dict get $rep histograms] {
            assert_equal $rows [dict get $j histograms $t]
        }
        foreach f {topkeys prefixes} {
            assert_equal [llength [dict get $rep $f]] [llength [dict get $j $f]]
            foreach a [dict get $rep $f] b [dict get $j $f] { assert_equal $a $b }
        }
        # The odd names came through byte for byte.
        set names {}
        foreach k [dict get $j topkeys] { lappend names [dict get $k key] }
        assert {[lsearch -exact $names $weird] >= 0}
        assert {[lsearch -exact $names $utf8] >= 0}
        assert_equal bighash [dict get [lindex [dict get $j topkeys] 0] key]
        set ::mp_single_json $out
    }

    test {valkey-cli --memprofile --json: UTF-8 passes through, other bytes are escaped} {
        lassign [mp_cli -h $host -p $port --memprofile --memprofile-max-age 3600 --memprofile-count 0 --json] code out err
        assert_equal 0 $code
        # The raw output holds the UTF-8 bytes of the name, and no byte 0xff.
        assert {[string first $utf8 $out] >= 0}
        assert {[string first "\xff" $out] < 0}
        assert {[string first {\u00ff} $out] >= 0}
        set names {}
        foreach k [dict get [mpj_parse $out] topkeys] { lappend names [dict get $k key] }
        assert {[lsearch -exact $names $weird] >= 0}
        assert {[lsearch -exact $names $utf8] >= 0}
    }

    test {valkey-cli --memprofile-max-age reuses a fresh profile (no fork), under RESP3 too} {
        set forks [mp_stat total_forks]
        set last [mp_info rdb_stats_last_time]
        lassign [mp_cli -3 -h $host -p $port --memprofile --memprofile-count 0 --quoted-json --memprofile-max-age 3600] code out err
        assert_equal 0 $code
        assert_equal $::mp_single_json $out
        assert_equal $forks [mp_stat total_forks]
        assert_equal $last [mp_info rdb_stats_last_time]
        # A profile older than the limit is not reused (a second old at least).
        mp_next_second
        lassign [mp_cli -h $host -p $port --memprofile --memprofile-max-age 0 --json] code out err
        assert_equal 0 $code
        assert_equal [expr {$forks + 1}] [mp_stat total_forks]
        assert {[mp_info rdb_stats_last_time] > $last}
    }

    test {valkey-cli --memprofile prints a summary naming the biggest keys} {
        lassign [mp_cli -h $host -p $port --memprofile --memprofile-count 3] code out err
        assert_equal 0 $code
        assert_match {*-------- summary -------*} $out
        assert_match "*Profiled [mp_info rdb_stats_keys] keys in the keyspace, holding [mp_info rdb_stats_bytes] bytes*" $out
        assert_match {*Biggest   hash found "bighash" has * bytes*} $out
        assert_match {*  1. "bighash" hash hashtable, * bytes*elements 2000,*} $out
        assert_match "*[mp_info rdb_stats_string_keys] strings with [mp_info rdb_stats_string_bytes] bytes*" $out
        assert_match {*depth 2:*"app:user:" 3000 keys*} $out
        assert_match {*within 1 hour*100 keys*} $out
        assert_match {*-------- largest memory categories -------*mem_kv_user_data*} $out
        # --memprofile-save profiles through BGSAVE STAT_MEMORY.
        lassign [mp_cli -h $host -p $port --memprofile --memprofile-save --memprofile-count 1] code out err
        assert_equal 0 $code
        assert_match {*source bgsave*} $out
        assert_equal bgsave [mp_info rdb_stats_source]
    }

    test {valkey-cli --memprofile: bad options} {
        foreach {opts msg} {
            {--memprofile --memprofile-count x} {Invalid value for --memprofile-count: 'x'*}
            {--memprofile --memprofile-count -2} {Invalid value for --memprofile-count: '-2'*}
            {--memprofile --memprofile-max-age 1h} {Invalid value for --memprofile-max-age: '1h'*}
            {--memprofile --memprofile-max-age} {Option --memprofile-max-age needs a value*}
        } {
            lassign [mp_cli -h $host -p $port {*}$opts] code out err
            assert_equal 1 $code
            assert_match $msg $err
        }
    }

    test {valkey-cli --memprofile: a user without @admin gets a clear NOPERM error} {
        r acl setuser mpuser on >pw ~* +@all -@admin
        lassign [mp_cli -h $host -p $port --user mpuser --pass pw --no-auth-warning --memprofile] code out err
        assert_equal 1 $code
        assert_match {permission denied: --memprofile needs INFO and MEMORY PROFILE*may not run MEMORY PROFILE START (NOPERM*} $err
        r acl deluser mpuser
    }

    test {valkey-cli --memprofile: a cancelled profile is an error, and the bar is on stderr only} {
        r config set rdb-key-save-delay 2000
        set errfile [tmpfile mpcli-err]
        set fd [open "|src/valkey-cli -h $host -p $port --memprofile 2>$errfile" r]
        wait_for_condition 100 50 {[mp_info rdb_stats_in_progress] == 1} else { fail "no profile started" }
        r config set rdb-key-save-delay 0
        assert_equal {Memory profiling cancelled} [r memory profile cancel]
        set out [read $fd]
        assert {[catch {close $fd}]}
        set efd [open $errfile r]
        set err [read $efd]
        close $efd
        assert_equal {} $out
        assert_match {the profile failed or was cancelled (rdb_stats_status:err)*} $err
    }

    test {valkey-cli --memprofile: Ctrl-C cancels the profile it started} {
        r config set rdb-key-save-delay 2000
        set errfile [tmpfile mpcli-err]
        set fd [open "|src/valkey-cli -h $host -p $port --memprofile 2>$errfile" r]
        wait_for_condition 100 50 {[mp_info rdb_stats_in_progress] == 1} else { fail "no profile started" }
        r config set rdb-key-save-delay 0
        exec kill -INT [pid $fd]
        set out [read $fd]
        assert {[catch {close $fd} e opts]}
        assert_equal 130 [lindex [dict get $opts -errorcode] 2]
        set efd [open $errfile r]
        set err [read $efd]
        close $efd
        assert_equal {} $out
        assert_match {interrupted: the profile was cancelled (MEMORY PROFILE CANCEL)*} $err
        wait_for_condition 100 50 {[mp_info rdb_stats_in_progress] == 0} else { fail "profile still running" }
        assert_equal err [mp_info rdb_stats_status]
    }

    test {valkey-cli --memprofile: Ctrl-C while START is in flight cancels the profile once START answers} {
        # A proxy between valkey-cli and the server holds the command that
        # carries START until told to go on, so that the signal reaches
        # valkey-cli after it sent START and before the reply.
        set script [tmpfile hold-proxy.tcl]
        set pport [find_available_port [expr {$port + 200}] 100]
        set f [open $script w]
        puts $f {
            lassign $argv lport uhost uport
            set held 0
            proc down {c} {
                set d [read $c]
                if {$::held == 1} {
                    append ::buf $d
                } elseif {$::held == 0 && [string first "\r\nSTART\r\n" $d] >= 0} {
                    set ::buf $d
                    set ::held 1
                    puts held
                } elseif {$d ne ""} {
                    puts -nonewline $::up $d
                }
                if {[eof $c]} { fileevent $c readable {} }
            }
            proc up {c} {
                set d [read $::up]
                if {$d ne ""} { catch {puts -nonewline $c $d} }
                if {[eof $::up]} { fileevent $::up readable {} }
            }
            proc release {} {
                if {[gets stdin line] < 0} { exit 0 }
                if {$::held == 1} {
                    puts -nonewline $::up $::buf
                    set ::held 2
                }
            }
            socket -server {apply {{c addr port} {
                set ::up [socket $::uhost $::uport]
                fconfigure $c -translation binary -buffering none -blocking 0
                fconfigure $::up -translation binary -buffering none -blocking 0
                fileevent $c readable [list down $c]
                fileevent $::up readable [list up $c]
            }}} -myaddr 127.0.0.1 $lport
            fconfigure stdout -buffering line
            fileevent stdin readable release
            puts ready
            vwait forever
        }
        close $f
        set proxy [open "|[info nameofexecutable] $script $pport $host $port" r+]
        fconfigure $proxy -buffering line
        assert_equal ready [gets $proxy]
        set forks [mp_stat total_forks]
        # The child, once forked, walks slowly: the CANCEL must stop it.
        r config set rdb-key-save-delay 2000
        set errfile [tmpfile mpcli-err]
        set fd [open "|src/valkey-cli -h 127.0.0.1 -p $pport --memprofile 2>$errfile" r]
        assert_equal held [gets $proxy]
        exec kill -INT [pid $fd]
        after 200
        # START goes on to the server only now.
        puts $proxy release
        set out [read $fd]
        set code 0
        if {[catch {close $fd} e opts]} { set code [lrange [dict get $opts -errorcode] 0 2] }
        r config set rdb-key-save-delay 0
        close $proxy
        set efd [open $errfile r]
        set err [read $efd]
        close $efd
        assert_equal {CHILDSTATUS * 130} [lreplace $code 1 1 *]
        assert_equal {} $out
        assert_match {interrupted: the profile was cancelled (MEMORY PROFILE CANCEL)*} $err
        # START forked the child, and it was gone before valkey-cli exited.
        assert_equal [expr {$forks + 1}] [mp_stat total_forks]
        assert_equal 0 [mp_info rdb_stats_in_progress]
        assert_equal err [mp_info rdb_stats_status]
        verify_log_message 0 "*Memory profiling child * killed: MEMORY PROFILE CANCEL*" 0
    }

    test {valkey-cli --memprofile: another child running} {
        r config set rdb-key-save-delay 100000
        r bgsave
        lassign [mp_cli -h $host -p $port --memprofile] code out err
        assert_equal 1 $code
        assert_match {another child process is running on the server*Background save already in progress*} $err
        r bgsave cancel
        r config set rdb-key-save-delay 0
        waitForBgsave r
    }

    test {valkey-cli --memprofile: a server without the feature} {
        # A stand-in for a server without it: INFO knows no rdb_stats
        # section, MEMORY no PROFILE subcommand.
        set script [tmpfile fake-server.tcl]
        set fport [find_available_port [expr {$port + 100}] 100]
        set f [open $script w]
        puts $f {
            proc reply {fd} {
                if {[gets $fd line] < 0} { close $fd; return }
                if {![string match {\**} $line]} return
                set args {}
                for {set i 0} {$i < [string range $line 1 end]} {incr i} {
                    gets $fd len
                    lappend args [string trimright [read $fd [expr {[string range $len 1 end] + 2}]] "\r\n"]
                }
                switch -- [string toupper [lindex $args 0]] {
                    INFO { puts -nonewline $fd "\$0\r\n\r\n" }
                    default { puts -nonewline $fd "-ERR unknown subcommand 'PROFILE'. Try MEMORY HELP.\r\n" }
                }
                flush $fd
            }
            socket -server {apply {{fd addr port} {
                fconfigure $fd -translation binary -buffering none
                fileevent $fd readable [list reply $fd]
            }}} -myaddr 127.0.0.1 [lindex $argv 0]
            vwait forever
        }
        close $f
        set pid [exec [info nameofexecutable] $script $fport &]
        wait_for_condition 50 100 {![catch {close [socket 127.0.0.1 $fport]}]} else { fail "no fake server" }
        lassign [mp_cli -h 127.0.0.1 -p $fport --memprofile] code out err
        exec kill $pid
        assert_equal 1 $code
        assert_match {the server does not support memory profiles*} $err
    }

    test {valkey-cli --memprofile-save: a save that does not profile is an error, not the last profile printed as new} {
        # The server says so itself: the status is err.
        r config set memory-profile-report-fault 10
        lassign [mp_cli -h $host -p $port --memprofile --memprofile-save --json] code out err
        r config set memory-profile-report-fault 0
        assert_equal 1 $code
        assert_equal {} $out
        assert_match {the profile failed or was cancelled (rdb_stats_status:err)*} $err
        waitForBgsave r

        # A server that replies as if it profiled and does not, with the
        # status of its last profile still ok (an older server): a relay to
        # the real one that answers BGSAVE itself. The cli must see that the
        # profile it reads was forked before its request.
        set script [tmpfile relay-server.tcl]
        set fport [find_available_port [expr {$port + 200}] 100]
        set f [open $script w]
        puts $f {
            lassign $argv port upstream
            # Copy one RESP reply from in to out.
            proc copy_reply {in out} {
                set line [gets $in]
                puts -nonewline $out "$line\n"
                set n [string range $line 1 end-1]
                switch -- [string index $line 0] {
                    $ - = - ! { if {$n >= 0} { puts -nonewline $out [read $in [expr {$n + 2}]] } }
                    * - ~ - > { for {set i 0} {$i < $n} {incr i} { copy_reply $in $out } }
                    % - | { for {set i 0} {$i < 2 * $n} {incr i} { copy_reply $in $out } }
                }
            }
            proc serve {fd up} {
                if {[gets $fd line] < 0} { close $fd; close $up; return }
                set req "$line\n"
                set args {}
                for {set i 0} {$i < [string range $line 1 end-1]} {incr i} {
                    set len [gets $fd]
                    set arg [read $fd [expr {[string range $len 1 end-1] + 2}]]
                    append req "$len\n$arg"
                    lappend args [string range $arg 0 end-2]
                }
                if {[string toupper [lindex $args 0]] eq "BGSAVE"} {
                    puts -nonewline $fd "+Background saving started\r\n"
                } else {
                    puts -nonewline $up $req
                    flush $up
                    copy_reply $up $fd
                }
                flush $fd
            }
            socket -server {apply {{fd addr port} {
                set up [socket 127.0.0.1 $::upstream]
                fconfigure $up -translation binary
                fconfigure $fd -translation binary
                fileevent $fd readable [list serve $fd $up]
            }}} -myaddr 127.0.0.1 $port
            vwait forever
        }
        close $f
        set pid [exec [info nameofexecutable] $script $fport $port &]
        wait_for_condition 50 100 {![catch {close [socket 127.0.0.1 $fport]}]} else { fail "no relay server" }
        # Through the relay, a profile that is taken is printed.
        lassign [mp_cli -h 127.0.0.1 -p $fport --memprofile --json] code out err
        assert_equal 0 $code
        set last [mp_info rdb_stats_last_time]
        assert_equal $last [dict get [mpj_parse $out] time]
        wait_for_condition 50 100 {[lindex [r time] 0] > $last} else { fail "the clock did not move" }
        # A save that does not profile: the last profile is not printed as new.
        set saves [s rdb_saves]
        lassign [mp_cli -h 127.0.0.1 -p $fport --memprofile --memprofile-save --json] code out err
        exec kill $pid
        assert_equal $saves [s rdb_saves]
        assert_equal ok [mp_info rdb_stats_status]
        assert_equal $last [mp_info rdb_stats_last_time]
        assert_equal 1 $code
        assert_equal {} $out
        assert_match "the server published no new profile: the last one was forked at $last, before the request at *" $err
    }
}

# ------------------------------------------------------------------------
# A cluster of 3 primaries and 3 replicas.

set ::singledb_saved $::singledb
set ::singledb 1
set base_conf [list cluster-enabled yes cluster-node-timeout 5000 save {} latency-tracking no latency-monitor-threshold 0]
start_multiple_servers 6 [list overrides $base_conf] {
    test {Create a cluster of 3 primaries and 3 replicas} {
        set addrs {}
        for {set i 0} {$i < 6} {incr i} { lappend addrs 127.0.0.1:[srv -$i port] }
        exec src/valkey-cli --cluster-yes --cluster create {*}$addrs --cluster-replicas 1 >/dev/null
        wait_for_condition 1000 50 {
            [CI 0 cluster_state] eq {ok} && [CI 1 cluster_state] eq {ok} && [CI 2 cluster_state] eq {ok} &&
            [CI 3 cluster_state] eq {ok} && [CI 4 cluster_state] eq {ok} && [CI 5 cluster_state] eq {ok}
        } else {
            fail "Cluster doesn't stabilize"
        }
        wait_for_cluster_propagation
    }

    # Server levels of the primaries and replicas, and who owns which slot.
    proc mp_topology {} {
        set ::mp_primaries {}
        set ::mp_replicas {}
        for {set i 0} {$i < 6} {incr i} {
            if {[s -$i role] eq "master"} { lappend ::mp_primaries $i } else { lappend ::mp_replicas $i }
        }
        array unset ::mp_owner
        foreach i $::mp_primaries {
            set id [R $i cluster myid]
            set ::mp_id($i) $id
            foreach line [split [R $i cluster nodes] "\n"] {
                if {[lindex $line 0] ne $id} continue
                foreach range [lrange $line 8 end] {
                    if {[string match {\[*} $range]} continue
                    set ab [split $range -]
                    set a [lindex $ab 0]
                    set b [lindex $ab end]
                    for {set s $a} {$s <= $b} {incr s} { set ::mp_owner($s) $i }
                }
            }
        }
    }

    test {Load keys of known sizes by prefix and slot, heavier on one primary} {
        mp_topology
        assert_equal 3 [llength $::mp_primaries]
        set heavy [lindex $::mp_primaries 0]
        set ::mp_used_slots [dict create]
        set ::mp_user_keys 0
        # 900 hash tags; the heavy primary's tags hold three times the data.
        for {set t 0} {$t < 900} {incr t} {
            set slot [R 0 cluster keyslot "{t$t}"]
            set owner $::mp_owner($slot)
            set n [expr {$owner == $heavy ? 3 : 1}]
            for {set k 0} {$k < $n} {incr k} {
                R $owner set "user:{t$t}:$k" [string repeat u 400]
                incr ::mp_user_keys
            }
            R $owner set "cache:{t$t}" [string repeat c 100]
            dict set ::mp_used_slots $slot 1
        }
        # The biggest key of the cluster, on another primary.
        set ::mp_big_owner [lindex $::mp_primaries 1]
        for {set t 0} {1} {incr t} {
            set slot [R 0 cluster keyslot "big:$t"]
            if {$::mp_owner($slot) == $::mp_big_owner} break
        }
        set ::mp_big_key "big:$t"
        R $::mp_big_owner set $::mp_big_key [string repeat b 50000]
        dict set ::mp_used_slots $slot 1
        # Replicas catch up.
        wait_for_condition 100 50 {
            [R 0 dbsize] + [R 1 dbsize] + [R 2 dbsize] + [R 3 dbsize] + [R 4 dbsize] + [R 5 dbsize] ==
            2 * ($::mp_user_keys + 901)
        } else { fail "replicas did not catch up" }
    }

    test {valkey-cli --cluster memprofile merges the primaries' profiles} {
        set t0 [clock milliseconds]
        lassign [mp_cli --cluster memprofile 127.0.0.1:[srv 0 port] --memprofile-count 0 --json] code out err
        set ::mp_cluster_ms [expr {[clock milliseconds] - $t0}]
        assert_equal 0 $code
        assert_equal {} $err
        set j [mpj_parse $out]
        set ::mp_cluster_json $j
        # Totals equal the sum of each primary's INFO rdb_stats.
        set keys 0
        set bytes 0
        foreach i $::mp_primaries {
            assert_equal ok [mp_info rdb_stats_status [list R $i]]
            incr keys [mp_info rdb_stats_keys [list R $i]]
            incr bytes [mp_info rdb_stats_bytes [list R $i]]
        }
        assert_equal [expr {$::mp_user_keys + 901}] $keys
        assert_equal $keys [dict get $j keys]
        assert_equal $bytes [dict get $j bytes]
        foreach t {string hash} {
            set tb 0
            foreach i $::mp_primaries { incr tb [mp_info rdb_stats_${t}_bytes [list R $i]] }
            assert_equal $tb [dict get $j types $t bytes]
        }
        assert_equal 3 [dict get $j covered_shards]
        foreach n [dict get $j nodes] {
            assert_equal primary [dict get $n role]
            assert_equal ok [dict get $n status]
        }
        # Prefixes merged across the nodes.
        foreach p [dict get $j prefixes] {
            if {[dict get $p depth] == 1} { dict set pref [dict get $p prefix] [dict get $p keys] }
        }
        assert_equal $::mp_user_keys [dict get $pref user:]
        assert_equal 900 [dict get $pref cache:]
        assert_equal 1 [dict get $pref big:]
        # The biggest key of the cluster, with its node.
        set top [lindex [dict get $j topkeys] 0]
        assert_equal $::mp_big_key [dict get $top key]
        assert_equal 127.0.0.1:[srv -$::mp_big_owner port] [dict get $top node]
    }

    test {valkey-cli --cluster memprofile: the slot map covers every slot with keys, with each slot's keys} {
        set j $::mp_cluster_json
        set seen [dict create]
        set sum 0
        foreach sl [dict get $j slots] {
            set slot [dict get $sl slot]
            dict set seen $slot 1
            assert_equal [R $::mp_owner($slot) cluster countkeysinslot $slot] [dict get $sl keys]
            incr sum [dict get $sl bytes]
        }
        assert_equal [lsort -integer [dict keys $::mp_used_slots]] [lsort -integer [dict keys $seen]]
        assert_equal [dict get $j bytes] $sum
        assert {[dict get $j skew] > 1.05}
        assert {[llength [dict get $j moves]] > 0}
        assert {[dict get $j skew_after_moves] <= 1.05}
    }

    test {valkey-cli --cluster memprofile: saturated prefix summaries merge with error bounds that hold the truth} {
        # The exact figures of every prefix, from the first run (no summary was saturated).
        set exact [dict create]
        foreach p [dict get $::mp_cluster_json prefixes] {
            assert_equal 0 [dict get $p error_bytes]
            dict set exact [dict get $p depth],[dict get $p prefix] [dict get $p bytes]
        }
        foreach i $::mp_primaries { R $i config set memory-profile-prefix-capacity 8 }
        lassign [mp_cli --cluster memprofile 127.0.0.1:[srv 0 port] --memprofile-count 0 --json] code out err
        foreach i $::mp_primaries { R $i config set memory-profile-prefix-capacity 4096 }
        assert_equal 0 $code
        set j [mpj_parse $out]
        assert_equal [dict get $::mp_cluster_json bytes] [dict get $j bytes]
        set bounded 0
        foreach p [dict get $j prefixes] {
            set truth [dict get $exact [dict get $p depth],[dict get $p prefix]]
            set hi [dict get $p bytes]
            set lo [expr {$hi - [dict get $p error_bytes]}]
            assert {$lo <= $truth && $truth <= $hi}
            if {[dict get $p error_bytes] > 0} { incr bounded }
        }
        # Depth 1 (three prefixes) stays exact; depth 2 (901 prefixes) is cut to the heaviest.
        assert {$bounded > 0}
        set depth1 {}
        foreach p [dict get $j prefixes] {
            if {[dict get $p depth] == 1} { lappend depth1 [dict get $p prefix] [dict get $p bytes] [dict get $p error_bytes] }
        }
        assert_equal [list user: [dict get $exact 1,user:] 0 cache: [dict get $exact 1,cache:] 0 big: [dict get $exact 1,big:] 0] $depth1
    }

    # What a fork on node i would change: INFO stats and persistence
    # counters, and the profile's time.
    proc mp_fork_state {i} {
        set p [R $i info persistence]
        set out [list [mp_stat total_forks $i] [mp_stat latest_fork_usec $i] [mp_info rdb_stats_last_time [list R $i]]]
        foreach f {rdb_saves rdb_bgsave_in_progress rdb_last_bgsave_time_sec rdb_last_cow_size} {
            lappend out $f [getInfoProperty $p $f]
        }
        return $out
    }

    test {valkey-cli --cluster memprofile --cluster-from-replicas: no primary forks} {
        foreach i $::mp_replicas { set rforks($i) [mp_stat total_forks $i] }
        foreach i $::mp_primaries {
            set before($i) [mp_fork_state $i]
        }
        lassign [mp_cli --cluster memprofile 127.0.0.1:[srv 0 port] --cluster-from-replicas --json] code out err
        assert_equal 0 $code
        set j [mpj_parse $out]
        foreach i $::mp_primaries {
            assert_equal $before($i) [mp_fork_state $i]
        }
        set keys 0
        foreach i $::mp_replicas {
            assert_equal ok [mp_info rdb_stats_status [list R $i]]
            assert_equal [expr {$rforks($i) + 1}] [mp_stat total_forks $i]
            incr keys [mp_info rdb_stats_keys [list R $i]]
        }
        assert_equal [expr {$::mp_user_keys + 901}] $keys
        assert_equal $keys [dict get $j keys]
        foreach n [dict get $j nodes] { assert_equal replica [dict get $n role] }
    }

    test {valkey-cli --cluster memprofile names a node that fails, and says what the merge covers} {
        set r [lindex $::mp_replicas 0]
        R $r config set rdb-key-save-delay 100000
        R $r bgsave
        lassign [mp_cli --cluster memprofile 127.0.0.1:[srv 0 port] --cluster-from-replicas] code out err
        R $r bgsave cancel
        R $r config set rdb-key-save-delay 0
        assert_equal 1 $code
        assert_match "*NOT COVERED: 127.0.0.1:[srv -$r port] failed: another child process is running*" $out
        assert_match {*The figures below cover 2 of 3 shards*} $out
        assert_match {*No slot moves proposed: not every shard was profiled.*} $out
    }

    test {The proposed slot moves, applied, bring every primary within 5% of the mean} {
        set moves [dict get $::mp_cluster_json moves]
        foreach mv $moves {
            set slot [dict get $mv slot]
            set from $::mp_owner($slot)
            set to -1
            foreach i $::mp_primaries { if {$::mp_id($i) eq [dict get $mv to_id]} { set to $i } }
            assert_equal $::mp_id($from) [dict get $mv from_id]
            R $to cluster setslot $slot importing $::mp_id($from)
            R $from cluster setslot $slot migrating $::mp_id($to)
            while {[llength [set keys [R $from cluster getkeysinslot $slot 100]]]} {
                R $from migrate 127.0.0.1 [srv -$to port] "" 0 10000 keys {*}$keys
            }
            foreach i $::mp_primaries { R $i cluster setslot $slot node $::mp_id($to) }
        }
        wait_for_cluster_propagation
        # Profile every primary afresh and compute the skew from INFO.
        set sum 0
        set max 0
        foreach i $::mp_primaries {
            assert_equal {Memory profiling started} [R $i memory profile start]
            wait_for_condition 100 50 {[mp_info rdb_stats_in_progress [list R $i]] == 0} else { fail "profile" }
            set b [mp_info rdb_stats_bytes [list R $i]]
            incr sum $b
            if {$b > $max} { set max $b }
        }
        set skew [expr {double($max) / ($sum / 3.0)}]
        if {$::verbose} { puts "skew before [dict get $::mp_cluster_json skew], planned after [dict get $::mp_cluster_json skew_after_moves], measured after $skew ([llength $moves] moves); cluster memprofile took $::mp_cluster_ms ms" }
        assert {$skew <= 1.05}
        # The tool agrees, and proposes nothing more.
        lassign [mp_cli --cluster memprofile 127.0.0.1:[srv 0 port] --memprofile-max-age 3600] code out err
        assert_equal 0 $code
        assert_match {*No slot moves needed*} $out
    }
}
set ::singledb $::singledb_saved

}
