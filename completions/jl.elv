
use builtin;
use str;

set edit:completion:arg-completer[jl] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'jl'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'jl'= {
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand run 'Run a command through the cache: replay it if it ran before'
            cand map 'Run a command over many items in parallel, every job cached'
            cand ls 'List cached entries'
            cand show 'Show one entry in full'
            cand stats 'Show what the store holds and what it saved'
            cand explain 'Print an action''s key and every component that went into it'
            cand gc 'Evict entries (least recently used first) and unreferenced blobs'
            cand rm 'Remove entries'
            cand clear 'Remove everything in the store'
            cand verify 'Re-hash every blob and parse every entry'
            cand report 'Draw a run''s timeline, cache hits and slowest jobs as an HTML page'
            cand generate 'Write completions and man pages (for packaging and CI)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'jl;run'= {
            cand -i 'An input file or directory (hashed by content; repeatable)'
            cand --input 'An input file or directory (hashed by content; repeatable)'
            cand -o 'An output file or directory: stored after a miss, restored on a hit'
            cand --output 'An output file or directory: stored after a miss, restored on a hit'
            cand --env 'Include this environment variable''s value in the key (repeatable)'
            cand --salt 'Extra text to mix into the key (e.g. a version of your own)'
            cand --ignore-arg 'Leave arguments matching this glob out of the key (repeatable), e.g. --ignore-arg ''--threads=*'''
            cand --trace-outputs 'With --trace, also capture and restore files written under DIR (the working directory always is; repeatable)'
            cand --trace-ignore 'With --trace, do not record accesses under PREFIX (repeatable; /proc, /sys, /dev and the store always are ignored)'
            cand --store 'The store directory [default: the user cache dir, e.g. ~/.cache/jl]'
            cand --ttl 'Entries older than this are stale and re-run (e.g. 90s, 1h, 7d)'
            cand --log 'Append a joblog row for every run to FILE (shared by concurrent jl)'
            cand --remote 'A remote cache shared with other machines: http(s)://host:port/prefix, s3://bucket/prefix, azblob://container/prefix or redis://host:port/db'
            cand --remote-timeout 'Give up on the remote after this long without an answer'
            cand --compress 'Compress new blobs with zstd at LEVEL (0: off; 1, the default, is fast; up to 19). Blobs stay raw where that does not pay'
            cand --stale 'Past --ttl by at most DURATION, replay the entry at once and refresh it in the background'
            cand --no-auto-inputs 'Do not treat arguments that name existing files as inputs'
            cand --cwd 'Include the working directory in the key'
            cand --trace 'Find inputs and outputs by watching the command''s file system calls (ptrace): nothing needs declaring'
            cand --cache-failures 'Cache non-zero exits too (by default only exit 0 is cached)'
            cand --force 'Run even on a hit, and replace the entry'
            cand -v 'Say on stderr what ran, what was cached and why'
            cand --verbose 'Say on stderr what ran, what was cached and why'
            cand --remote-read-only 'Use the remote cache for hits only; never upload'
            cand -n 'Give the command /dev/null as stdin (stdin is not read or hashed)'
            cand --no-stdin 'Give the command /dev/null as stdin (stdin is not read or hashed)'
            cand --warm 'Refresh the entry in the background; print nothing, exit 0'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'jl;map'= {
            cand -j 'Parallel jobs: a number, or a percentage of CPUs like 50% [default: CPUs]'
            cand --jobs 'Parallel jobs: a number, or a percentage of CPUs like 50% [default: CPUs]'
            cand -a 'Read items from FILE instead of stdin'
            cand --arg-file 'Read items from FILE instead of stdin'
            cand --joblog 'Write a GNU parallel style joblog (plus a Cached column) to FILE'
            cand --halt 'Stop at the first failure; the map exits with that job''s status'
            cand --retries 'Run a failing job up to N times in all (as GNU parallel''s --retries)'
            cand --timeout 'Kill a job that runs longer than this (e.g. 30s, 5m)'
            cand --shard 'Take only items whose 0-based position mod N is I (I/N), or let a job array''s variables say (auto: Slurm, SGE, LSF, PBS, Kubernetes, HyperQueue, AWS Batch)'
            cand -i 'An input file or directory (hashed by content; repeatable)'
            cand --input 'An input file or directory (hashed by content; repeatable)'
            cand -o 'An output file or directory: stored after a miss, restored on a hit'
            cand --output 'An output file or directory: stored after a miss, restored on a hit'
            cand --env 'Include this environment variable''s value in the key (repeatable)'
            cand --salt 'Extra text to mix into the key (e.g. a version of your own)'
            cand --ignore-arg 'Leave arguments matching this glob out of the key (repeatable), e.g. --ignore-arg ''--threads=*'''
            cand --trace-outputs 'With --trace, also capture and restore files written under DIR (the working directory always is; repeatable)'
            cand --trace-ignore 'With --trace, do not record accesses under PREFIX (repeatable; /proc, /sys, /dev and the store always are ignored)'
            cand --store 'The store directory [default: the user cache dir, e.g. ~/.cache/jl]'
            cand --ttl 'Entries older than this are stale and re-run (e.g. 90s, 1h, 7d)'
            cand --log 'Append a joblog row for every run to FILE (shared by concurrent jl)'
            cand --remote 'A remote cache shared with other machines: http(s)://host:port/prefix, s3://bucket/prefix, azblob://container/prefix or redis://host:port/db'
            cand --remote-timeout 'Give up on the remote after this long without an answer'
            cand --compress 'Compress new blobs with zstd at LEVEL (0: off; 1, the default, is fast; up to 19). Blobs stay raw where that does not pay'
            cand -0 'Items are separated by NUL, not newline'
            cand --null 'Items are separated by NUL, not newline'
            cand --unordered 'Print output as jobs finish, not in input order'
            cand --no-cache 'Run without the store (nothing is read or written)'
            cand -q 'Silence progress'
            cand --quiet 'Silence progress'
            cand --dry-run 'Print each command and whether it is cached; run nothing'
            cand --no-auto-inputs 'Do not treat arguments that name existing files as inputs'
            cand --cwd 'Include the working directory in the key'
            cand --trace 'Find inputs and outputs by watching the command''s file system calls (ptrace): nothing needs declaring'
            cand --cache-failures 'Cache non-zero exits too (by default only exit 0 is cached)'
            cand --force 'Run even on a hit, and replace the entry'
            cand -v 'Say on stderr what ran, what was cached and why'
            cand --verbose 'Say on stderr what ran, what was cached and why'
            cand --remote-read-only 'Use the remote cache for hits only; never upload'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'jl;ls'= {
            cand --store 'The store directory [default: the user cache dir, e.g. ~/.cache/jl]'
            cand --sort 'Sort order'
            cand --json 'One JSON object per line'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'jl;show'= {
            cand --store 'The store directory [default: the user cache dir, e.g. ~/.cache/jl]'
            cand --json 'json'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'jl;stats'= {
            cand --store 'The store directory [default: the user cache dir, e.g. ~/.cache/jl]'
            cand --json 'json'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'jl;explain'= {
            cand -i 'An input file or directory (hashed by content; repeatable)'
            cand --input 'An input file or directory (hashed by content; repeatable)'
            cand -o 'An output file or directory: stored after a miss, restored on a hit'
            cand --output 'An output file or directory: stored after a miss, restored on a hit'
            cand --env 'Include this environment variable''s value in the key (repeatable)'
            cand --salt 'Extra text to mix into the key (e.g. a version of your own)'
            cand --ignore-arg 'Leave arguments matching this glob out of the key (repeatable), e.g. --ignore-arg ''--threads=*'''
            cand --trace-outputs 'With --trace, also capture and restore files written under DIR (the working directory always is; repeatable)'
            cand --trace-ignore 'With --trace, do not record accesses under PREFIX (repeatable; /proc, /sys, /dev and the store always are ignored)'
            cand --store 'The store directory [default: the user cache dir, e.g. ~/.cache/jl]'
            cand --ttl 'Entries older than this are stale and re-run (e.g. 90s, 1h, 7d)'
            cand --log 'Append a joblog row for every run to FILE (shared by concurrent jl)'
            cand --remote 'A remote cache shared with other machines: http(s)://host:port/prefix, s3://bucket/prefix, azblob://container/prefix or redis://host:port/db'
            cand --remote-timeout 'Give up on the remote after this long without an answer'
            cand --compress 'Compress new blobs with zstd at LEVEL (0: off; 1, the default, is fast; up to 19). Blobs stay raw where that does not pay'
            cand --no-auto-inputs 'Do not treat arguments that name existing files as inputs'
            cand --cwd 'Include the working directory in the key'
            cand --trace 'Find inputs and outputs by watching the command''s file system calls (ptrace): nothing needs declaring'
            cand --cache-failures 'Cache non-zero exits too (by default only exit 0 is cached)'
            cand --force 'Run even on a hit, and replace the entry'
            cand -v 'Say on stderr what ran, what was cached and why'
            cand --verbose 'Say on stderr what ran, what was cached and why'
            cand --remote-read-only 'Use the remote cache for hits only; never upload'
            cand -n 'Leave stdin out (as `jl run -n` would)'
            cand --no-stdin 'Leave stdin out (as `jl run -n` would)'
            cand --json 'json'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'jl;gc'= {
            cand --store 'The store directory [default: the user cache dir, e.g. ~/.cache/jl]'
            cand --max-size 'Evict least recently used entries until the store is this small (e.g. 5GiB)'
            cand --max-age 'Evict entries not used for this long (e.g. 30d)'
            cand --dry-run 'Say what would be removed; remove nothing'
            cand --json 'json'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'jl;rm'= {
            cand --store 'The store directory [default: the user cache dir, e.g. ~/.cache/jl]'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'jl;clear'= {
            cand --store 'The store directory [default: the user cache dir, e.g. ~/.cache/jl]'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'jl;verify'= {
            cand --store 'The store directory [default: the user cache dir, e.g. ~/.cache/jl]'
            cand --repair 'Remove corrupt entries and blobs so they become misses'
            cand --json 'json'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'jl;report'= {
            cand --joblog 'A joblog of jl map --joblog (or GNU parallel''s --joblog)'
            cand --log 'A log of JL_LOG / --log (rows of every jl process that wrote it)'
            cand -o 'Write the page to FILE instead of stdout'
            cand --output 'Write the page to FILE instead of stdout'
            cand --store 'The store directory [default: the user cache dir, e.g. ~/.cache/jl]'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'jl;generate'= {
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'jl;help'= {
            cand run 'Run a command through the cache: replay it if it ran before'
            cand map 'Run a command over many items in parallel, every job cached'
            cand ls 'List cached entries'
            cand show 'Show one entry in full'
            cand stats 'Show what the store holds and what it saved'
            cand explain 'Print an action''s key and every component that went into it'
            cand gc 'Evict entries (least recently used first) and unreferenced blobs'
            cand rm 'Remove entries'
            cand clear 'Remove everything in the store'
            cand verify 'Re-hash every blob and parse every entry'
            cand report 'Draw a run''s timeline, cache hits and slowest jobs as an HTML page'
            cand generate 'Write completions and man pages (for packaging and CI)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'jl;help;run'= {
        }
        &'jl;help;map'= {
        }
        &'jl;help;ls'= {
        }
        &'jl;help;show'= {
        }
        &'jl;help;stats'= {
        }
        &'jl;help;explain'= {
        }
        &'jl;help;gc'= {
        }
        &'jl;help;rm'= {
        }
        &'jl;help;clear'= {
        }
        &'jl;help;verify'= {
        }
        &'jl;help;report'= {
        }
        &'jl;help;generate'= {
        }
        &'jl;help;help'= {
        }
    ]
    $completions[$command]
}
