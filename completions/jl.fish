# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_jl_global_optspecs
    string join \n h/help V/version
end

function __fish_jl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_jl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_jl_using_subcommand
    set -l cmd (__fish_jl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c jl -n "__fish_jl_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jl -n "__fish_jl_needs_command" -s V -l version -d 'Print version'
complete -c jl -n "__fish_jl_needs_command" -f -a "run" -d 'Run a command through the cache: replay it if it ran before'
complete -c jl -n "__fish_jl_needs_command" -f -a "map" -d 'Run a command over many items in parallel, every job cached'
complete -c jl -n "__fish_jl_needs_command" -f -a "ls" -d 'List cached entries'
complete -c jl -n "__fish_jl_needs_command" -f -a "show" -d 'Show one entry in full'
complete -c jl -n "__fish_jl_needs_command" -f -a "stats" -d 'Show what the store holds and what it saved'
complete -c jl -n "__fish_jl_needs_command" -f -a "explain" -d 'Print an action\'s key and every component that went into it'
complete -c jl -n "__fish_jl_needs_command" -f -a "gc" -d 'Evict entries (least recently used first) and unreferenced blobs'
complete -c jl -n "__fish_jl_needs_command" -f -a "rm" -d 'Remove entries'
complete -c jl -n "__fish_jl_needs_command" -f -a "clear" -d 'Remove everything in the store'
complete -c jl -n "__fish_jl_needs_command" -f -a "verify" -d 'Re-hash every blob and parse every entry'
complete -c jl -n "__fish_jl_needs_command" -f -a "report" -d 'Draw a run\'s timeline, cache hits and slowest jobs as an HTML page'
complete -c jl -n "__fish_jl_needs_command" -f -a "generate" -d 'Write completions and man pages (for packaging and CI)'
complete -c jl -n "__fish_jl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c jl -n "__fish_jl_using_subcommand run; and not __fish_jl_command_index >/dev/null" -s i -l input -d 'An input file or directory (hashed by content; repeatable)' -r -F
complete -c jl -n "__fish_jl_using_subcommand run; and not __fish_jl_command_index >/dev/null" -s o -l output -d 'An output file or directory: stored after a miss, restored on a hit' -r -F
complete -c jl -n "__fish_jl_using_subcommand run; and not __fish_jl_command_index >/dev/null" -l env -d 'Include this environment variable\'s value in the key (repeatable)' -r
complete -c jl -n "__fish_jl_using_subcommand run; and not __fish_jl_command_index >/dev/null" -l salt -d 'Extra text to mix into the key (e.g. a version of your own)' -r
complete -c jl -n "__fish_jl_using_subcommand run; and not __fish_jl_command_index >/dev/null" -l ignore-arg -d 'Leave arguments matching this glob out of the key (repeatable), e.g. --ignore-arg \'--threads=*\'' -r
complete -c jl -n "__fish_jl_using_subcommand run; and not __fish_jl_command_index >/dev/null" -l trace-outputs -d 'With --trace, also capture and restore files written under DIR (the working directory always is; repeatable)' -r -F
complete -c jl -n "__fish_jl_using_subcommand run; and not __fish_jl_command_index >/dev/null" -l trace-ignore -d 'With --trace, do not record accesses under PREFIX (repeatable; /proc, /sys, /dev and the store always are ignored)' -r -F
complete -c jl -n "__fish_jl_using_subcommand run; and not __fish_jl_command_index >/dev/null" -l store -d 'The store directory [default: the user cache dir, e.g. ~/.cache/jl]' -r -F
complete -c jl -n "__fish_jl_using_subcommand run; and not __fish_jl_command_index >/dev/null" -l ttl -d 'Entries older than this are stale and re-run (e.g. 90s, 1h, 7d)' -r
complete -c jl -n "__fish_jl_using_subcommand run; and not __fish_jl_command_index >/dev/null" -l log -d 'Append a joblog row for every run to FILE (shared by concurrent jl)' -r -F
complete -c jl -n "__fish_jl_using_subcommand run; and not __fish_jl_command_index >/dev/null" -l remote -d 'A remote cache shared with other machines: http(s)://host:port/prefix, s3://bucket/prefix, azblob://container/prefix or redis://host:port/db' -r
complete -c jl -n "__fish_jl_using_subcommand run; and not __fish_jl_command_index >/dev/null" -l remote-timeout -d 'Give up on the remote after this long without an answer' -r
complete -c jl -n "__fish_jl_using_subcommand run; and not __fish_jl_command_index >/dev/null" -l compress -d 'Compress new blobs with zstd at LEVEL (0: off; 1, the default, is fast; up to 19). Blobs stay raw where that does not pay' -r
complete -c jl -n "__fish_jl_using_subcommand run; and not __fish_jl_command_index >/dev/null" -l stale -d 'Past --ttl by at most DURATION, replay the entry at once and refresh it in the background' -r
complete -c jl -n "__fish_jl_using_subcommand run; and not __fish_jl_command_index >/dev/null" -l no-auto-inputs -d 'Do not treat arguments that name existing files as inputs'
complete -c jl -n "__fish_jl_using_subcommand run; and not __fish_jl_command_index >/dev/null" -l cwd -d 'Include the working directory in the key'
complete -c jl -n "__fish_jl_using_subcommand run; and not __fish_jl_command_index >/dev/null" -l trace -d 'Find inputs and outputs by watching the command\'s file system calls (ptrace): nothing needs declaring'
complete -c jl -n "__fish_jl_using_subcommand run; and not __fish_jl_command_index >/dev/null" -l cache-failures -d 'Cache non-zero exits too (by default only exit 0 is cached)'
complete -c jl -n "__fish_jl_using_subcommand run; and not __fish_jl_command_index >/dev/null" -l force -d 'Run even on a hit, and replace the entry'
complete -c jl -n "__fish_jl_using_subcommand run; and not __fish_jl_command_index >/dev/null" -s v -l verbose -d 'Say on stderr what ran, what was cached and why'
complete -c jl -n "__fish_jl_using_subcommand run; and not __fish_jl_command_index >/dev/null" -l remote-read-only -d 'Use the remote cache for hits only; never upload'
complete -c jl -n "__fish_jl_using_subcommand run; and not __fish_jl_command_index >/dev/null" -s n -l no-stdin -d 'Give the command /dev/null as stdin (stdin is not read or hashed)'
complete -c jl -n "__fish_jl_using_subcommand run; and not __fish_jl_command_index >/dev/null" -l warm -d 'Refresh the entry in the background; print nothing, exit 0'
complete -c jl -n "__fish_jl_using_subcommand run; and not __fish_jl_command_index >/dev/null" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jl -n "__fish_jl_using_subcommand map; and not __fish_jl_command_index >/dev/null" -s j -l jobs -d 'Parallel jobs: a number, or a percentage of CPUs like 50% [default: CPUs]' -r
complete -c jl -n "__fish_jl_using_subcommand map; and not __fish_jl_command_index >/dev/null" -s a -l arg-file -d 'Read items from FILE instead of stdin' -r -F
complete -c jl -n "__fish_jl_using_subcommand map; and not __fish_jl_command_index >/dev/null" -l joblog -d 'Write a GNU parallel style joblog (plus a Cached column) to FILE' -r -F
complete -c jl -n "__fish_jl_using_subcommand map; and not __fish_jl_command_index >/dev/null" -l halt -d 'Stop at the first failure; the map exits with that job\'s status' -r -f -a "now\t'Kill running jobs at the first failure'
soon\t'Start nothing new at the first failure, let running jobs finish'"
complete -c jl -n "__fish_jl_using_subcommand map; and not __fish_jl_command_index >/dev/null" -l retries -d 'Run a failing job up to N times in all (as GNU parallel\'s --retries)' -r
complete -c jl -n "__fish_jl_using_subcommand map; and not __fish_jl_command_index >/dev/null" -l timeout -d 'Kill a job that runs longer than this (e.g. 30s, 5m)' -r
complete -c jl -n "__fish_jl_using_subcommand map; and not __fish_jl_command_index >/dev/null" -l shard -d 'Take only items whose 0-based position mod N is I (I/N), or let a job array\'s variables say (auto: Slurm, SGE, LSF, PBS, Kubernetes, HyperQueue, AWS Batch)' -r
complete -c jl -n "__fish_jl_using_subcommand map; and not __fish_jl_command_index >/dev/null" -s i -l input -d 'An input file or directory (hashed by content; repeatable)' -r -F
complete -c jl -n "__fish_jl_using_subcommand map; and not __fish_jl_command_index >/dev/null" -s o -l output -d 'An output file or directory: stored after a miss, restored on a hit' -r -F
complete -c jl -n "__fish_jl_using_subcommand map; and not __fish_jl_command_index >/dev/null" -l env -d 'Include this environment variable\'s value in the key (repeatable)' -r
complete -c jl -n "__fish_jl_using_subcommand map; and not __fish_jl_command_index >/dev/null" -l salt -d 'Extra text to mix into the key (e.g. a version of your own)' -r
complete -c jl -n "__fish_jl_using_subcommand map; and not __fish_jl_command_index >/dev/null" -l ignore-arg -d 'Leave arguments matching this glob out of the key (repeatable), e.g. --ignore-arg \'--threads=*\'' -r
complete -c jl -n "__fish_jl_using_subcommand map; and not __fish_jl_command_index >/dev/null" -l trace-outputs -d 'With --trace, also capture and restore files written under DIR (the working directory always is; repeatable)' -r -F
complete -c jl -n "__fish_jl_using_subcommand map; and not __fish_jl_command_index >/dev/null" -l trace-ignore -d 'With --trace, do not record accesses under PREFIX (repeatable; /proc, /sys, /dev and the store always are ignored)' -r -F
complete -c jl -n "__fish_jl_using_subcommand map; and not __fish_jl_command_index >/dev/null" -l store -d 'The store directory [default: the user cache dir, e.g. ~/.cache/jl]' -r -F
complete -c jl -n "__fish_jl_using_subcommand map; and not __fish_jl_command_index >/dev/null" -l ttl -d 'Entries older than this are stale and re-run (e.g. 90s, 1h, 7d)' -r
complete -c jl -n "__fish_jl_using_subcommand map; and not __fish_jl_command_index >/dev/null" -l log -d 'Append a joblog row for every run to FILE (shared by concurrent jl)' -r -F
complete -c jl -n "__fish_jl_using_subcommand map; and not __fish_jl_command_index >/dev/null" -l remote -d 'A remote cache shared with other machines: http(s)://host:port/prefix, s3://bucket/prefix, azblob://container/prefix or redis://host:port/db' -r
complete -c jl -n "__fish_jl_using_subcommand map; and not __fish_jl_command_index >/dev/null" -l remote-timeout -d 'Give up on the remote after this long without an answer' -r
complete -c jl -n "__fish_jl_using_subcommand map; and not __fish_jl_command_index >/dev/null" -l compress -d 'Compress new blobs with zstd at LEVEL (0: off; 1, the default, is fast; up to 19). Blobs stay raw where that does not pay' -r
complete -c jl -n "__fish_jl_using_subcommand map; and not __fish_jl_command_index >/dev/null" -s 0 -l null -d 'Items are separated by NUL, not newline'
complete -c jl -n "__fish_jl_using_subcommand map; and not __fish_jl_command_index >/dev/null" -l unordered -d 'Print output as jobs finish, not in input order'
complete -c jl -n "__fish_jl_using_subcommand map; and not __fish_jl_command_index >/dev/null" -l no-cache -d 'Run without the store (nothing is read or written)'
complete -c jl -n "__fish_jl_using_subcommand map; and not __fish_jl_command_index >/dev/null" -s q -l quiet -d 'Silence progress'
complete -c jl -n "__fish_jl_using_subcommand map; and not __fish_jl_command_index >/dev/null" -l dry-run -d 'Print each command and whether it is cached; run nothing'
complete -c jl -n "__fish_jl_using_subcommand map; and not __fish_jl_command_index >/dev/null" -l no-auto-inputs -d 'Do not treat arguments that name existing files as inputs'
complete -c jl -n "__fish_jl_using_subcommand map; and not __fish_jl_command_index >/dev/null" -l cwd -d 'Include the working directory in the key'
complete -c jl -n "__fish_jl_using_subcommand map; and not __fish_jl_command_index >/dev/null" -l trace -d 'Find inputs and outputs by watching the command\'s file system calls (ptrace): nothing needs declaring'
complete -c jl -n "__fish_jl_using_subcommand map; and not __fish_jl_command_index >/dev/null" -l cache-failures -d 'Cache non-zero exits too (by default only exit 0 is cached)'
complete -c jl -n "__fish_jl_using_subcommand map; and not __fish_jl_command_index >/dev/null" -l force -d 'Run even on a hit, and replace the entry'
complete -c jl -n "__fish_jl_using_subcommand map; and not __fish_jl_command_index >/dev/null" -s v -l verbose -d 'Say on stderr what ran, what was cached and why'
complete -c jl -n "__fish_jl_using_subcommand map; and not __fish_jl_command_index >/dev/null" -l remote-read-only -d 'Use the remote cache for hits only; never upload'
complete -c jl -n "__fish_jl_using_subcommand map; and not __fish_jl_command_index >/dev/null" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jl -n "__fish_jl_using_subcommand ls" -l store -d 'The store directory [default: the user cache dir, e.g. ~/.cache/jl]' -r -F
complete -c jl -n "__fish_jl_using_subcommand ls" -l sort -d 'Sort order' -r -f -a "used\t'Most recently used first'
created\t'Newest first'
size\t'Largest first'
duration\t'Longest run time first'
hits\t'Most hits first'"
complete -c jl -n "__fish_jl_using_subcommand ls" -l json -d 'One JSON object per line'
complete -c jl -n "__fish_jl_using_subcommand ls" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jl -n "__fish_jl_using_subcommand show" -l store -d 'The store directory [default: the user cache dir, e.g. ~/.cache/jl]' -r -F
complete -c jl -n "__fish_jl_using_subcommand show" -l json
complete -c jl -n "__fish_jl_using_subcommand show" -s h -l help -d 'Print help'
complete -c jl -n "__fish_jl_using_subcommand stats" -l store -d 'The store directory [default: the user cache dir, e.g. ~/.cache/jl]' -r -F
complete -c jl -n "__fish_jl_using_subcommand stats" -l json
complete -c jl -n "__fish_jl_using_subcommand stats" -s h -l help -d 'Print help'
complete -c jl -n "__fish_jl_using_subcommand explain" -s i -l input -d 'An input file or directory (hashed by content; repeatable)' -r -F
complete -c jl -n "__fish_jl_using_subcommand explain" -s o -l output -d 'An output file or directory: stored after a miss, restored on a hit' -r -F
complete -c jl -n "__fish_jl_using_subcommand explain" -l env -d 'Include this environment variable\'s value in the key (repeatable)' -r
complete -c jl -n "__fish_jl_using_subcommand explain" -l salt -d 'Extra text to mix into the key (e.g. a version of your own)' -r
complete -c jl -n "__fish_jl_using_subcommand explain" -l ignore-arg -d 'Leave arguments matching this glob out of the key (repeatable), e.g. --ignore-arg \'--threads=*\'' -r
complete -c jl -n "__fish_jl_using_subcommand explain" -l trace-outputs -d 'With --trace, also capture and restore files written under DIR (the working directory always is; repeatable)' -r -F
complete -c jl -n "__fish_jl_using_subcommand explain" -l trace-ignore -d 'With --trace, do not record accesses under PREFIX (repeatable; /proc, /sys, /dev and the store always are ignored)' -r -F
complete -c jl -n "__fish_jl_using_subcommand explain" -l store -d 'The store directory [default: the user cache dir, e.g. ~/.cache/jl]' -r -F
complete -c jl -n "__fish_jl_using_subcommand explain" -l ttl -d 'Entries older than this are stale and re-run (e.g. 90s, 1h, 7d)' -r
complete -c jl -n "__fish_jl_using_subcommand explain" -l log -d 'Append a joblog row for every run to FILE (shared by concurrent jl)' -r -F
complete -c jl -n "__fish_jl_using_subcommand explain" -l remote -d 'A remote cache shared with other machines: http(s)://host:port/prefix, s3://bucket/prefix, azblob://container/prefix or redis://host:port/db' -r
complete -c jl -n "__fish_jl_using_subcommand explain" -l remote-timeout -d 'Give up on the remote after this long without an answer' -r
complete -c jl -n "__fish_jl_using_subcommand explain" -l compress -d 'Compress new blobs with zstd at LEVEL (0: off; 1, the default, is fast; up to 19). Blobs stay raw where that does not pay' -r
complete -c jl -n "__fish_jl_using_subcommand explain" -l no-auto-inputs -d 'Do not treat arguments that name existing files as inputs'
complete -c jl -n "__fish_jl_using_subcommand explain" -l cwd -d 'Include the working directory in the key'
complete -c jl -n "__fish_jl_using_subcommand explain" -l trace -d 'Find inputs and outputs by watching the command\'s file system calls (ptrace): nothing needs declaring'
complete -c jl -n "__fish_jl_using_subcommand explain" -l cache-failures -d 'Cache non-zero exits too (by default only exit 0 is cached)'
complete -c jl -n "__fish_jl_using_subcommand explain" -l force -d 'Run even on a hit, and replace the entry'
complete -c jl -n "__fish_jl_using_subcommand explain" -s v -l verbose -d 'Say on stderr what ran, what was cached and why'
complete -c jl -n "__fish_jl_using_subcommand explain" -l remote-read-only -d 'Use the remote cache for hits only; never upload'
complete -c jl -n "__fish_jl_using_subcommand explain" -s n -l no-stdin -d 'Leave stdin out (as `jl run -n` would)'
complete -c jl -n "__fish_jl_using_subcommand explain" -l json
complete -c jl -n "__fish_jl_using_subcommand explain" -s h -l help -d 'Print help'
complete -c jl -n "__fish_jl_using_subcommand gc" -l store -d 'The store directory [default: the user cache dir, e.g. ~/.cache/jl]' -r -F
complete -c jl -n "__fish_jl_using_subcommand gc" -l max-size -d 'Evict least recently used entries until the store is this small (e.g. 5GiB)' -r
complete -c jl -n "__fish_jl_using_subcommand gc" -l max-age -d 'Evict entries not used for this long (e.g. 30d)' -r
complete -c jl -n "__fish_jl_using_subcommand gc" -l dry-run -d 'Say what would be removed; remove nothing'
complete -c jl -n "__fish_jl_using_subcommand gc" -l json
complete -c jl -n "__fish_jl_using_subcommand gc" -s h -l help -d 'Print help'
complete -c jl -n "__fish_jl_using_subcommand rm" -l store -d 'The store directory [default: the user cache dir, e.g. ~/.cache/jl]' -r -F
complete -c jl -n "__fish_jl_using_subcommand rm" -s h -l help -d 'Print help'
complete -c jl -n "__fish_jl_using_subcommand clear" -l store -d 'The store directory [default: the user cache dir, e.g. ~/.cache/jl]' -r -F
complete -c jl -n "__fish_jl_using_subcommand clear" -s h -l help -d 'Print help'
complete -c jl -n "__fish_jl_using_subcommand verify" -l store -d 'The store directory [default: the user cache dir, e.g. ~/.cache/jl]' -r -F
complete -c jl -n "__fish_jl_using_subcommand verify" -l repair -d 'Remove corrupt entries and blobs so they become misses'
complete -c jl -n "__fish_jl_using_subcommand verify" -l json
complete -c jl -n "__fish_jl_using_subcommand verify" -s h -l help -d 'Print help'
complete -c jl -n "__fish_jl_using_subcommand report" -l joblog -d 'A joblog of jl map --joblog (or GNU parallel\'s --joblog)' -r -F
complete -c jl -n "__fish_jl_using_subcommand report" -l log -d 'A log of JL_LOG / --log (rows of every jl process that wrote it)' -r -F
complete -c jl -n "__fish_jl_using_subcommand report" -s o -l output -d 'Write the page to FILE instead of stdout' -r -F
complete -c jl -n "__fish_jl_using_subcommand report" -l store -d 'The store directory [default: the user cache dir, e.g. ~/.cache/jl]' -r -F
complete -c jl -n "__fish_jl_using_subcommand report" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jl -n "__fish_jl_using_subcommand generate" -s h -l help -d 'Print help'
complete -c jl -n "__fish_jl_using_subcommand help; and not __fish_seen_subcommand_from run map ls show stats explain gc rm clear verify report generate help" -f -a "run" -d 'Run a command through the cache: replay it if it ran before'
complete -c jl -n "__fish_jl_using_subcommand help; and not __fish_seen_subcommand_from run map ls show stats explain gc rm clear verify report generate help" -f -a "map" -d 'Run a command over many items in parallel, every job cached'
complete -c jl -n "__fish_jl_using_subcommand help; and not __fish_seen_subcommand_from run map ls show stats explain gc rm clear verify report generate help" -f -a "ls" -d 'List cached entries'
complete -c jl -n "__fish_jl_using_subcommand help; and not __fish_seen_subcommand_from run map ls show stats explain gc rm clear verify report generate help" -f -a "show" -d 'Show one entry in full'
complete -c jl -n "__fish_jl_using_subcommand help; and not __fish_seen_subcommand_from run map ls show stats explain gc rm clear verify report generate help" -f -a "stats" -d 'Show what the store holds and what it saved'
complete -c jl -n "__fish_jl_using_subcommand help; and not __fish_seen_subcommand_from run map ls show stats explain gc rm clear verify report generate help" -f -a "explain" -d 'Print an action\'s key and every component that went into it'
complete -c jl -n "__fish_jl_using_subcommand help; and not __fish_seen_subcommand_from run map ls show stats explain gc rm clear verify report generate help" -f -a "gc" -d 'Evict entries (least recently used first) and unreferenced blobs'
complete -c jl -n "__fish_jl_using_subcommand help; and not __fish_seen_subcommand_from run map ls show stats explain gc rm clear verify report generate help" -f -a "rm" -d 'Remove entries'
complete -c jl -n "__fish_jl_using_subcommand help; and not __fish_seen_subcommand_from run map ls show stats explain gc rm clear verify report generate help" -f -a "clear" -d 'Remove everything in the store'
complete -c jl -n "__fish_jl_using_subcommand help; and not __fish_seen_subcommand_from run map ls show stats explain gc rm clear verify report generate help" -f -a "verify" -d 'Re-hash every blob and parse every entry'
complete -c jl -n "__fish_jl_using_subcommand help; and not __fish_seen_subcommand_from run map ls show stats explain gc rm clear verify report generate help" -f -a "report" -d 'Draw a run\'s timeline, cache hits and slowest jobs as an HTML page'
complete -c jl -n "__fish_jl_using_subcommand help; and not __fish_seen_subcommand_from run map ls show stats explain gc rm clear verify report generate help" -f -a "generate" -d 'Write completions and man pages (for packaging and CI)'
complete -c jl -n "__fish_jl_using_subcommand help; and not __fish_seen_subcommand_from run map ls show stats explain gc rm clear verify report generate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'

# After `jl run --` or `jl map --`: a command name, then its own arguments.
function __fish_jl_command_index
    set -l words (commandline -opc)
    for i in (seq 3 (count $words))
        if test "$words[$i]" = "--"
            echo $i
            return 0
        end
    end
    return 1
end
complete -c jl -n '__fish_jl_command_index >/dev/null' -f -a '(__fish_complete_subcommand --fcs-skip=(__fish_jl_command_index))'
