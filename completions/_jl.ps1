
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'jl' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'jl'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'jl' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Run a command through the cache: replay it if it ran before')
            [CompletionResult]::new('map', 'map', [CompletionResultType]::ParameterValue, 'Run a command over many items in parallel, every job cached')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List cached entries')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show one entry in full')
            [CompletionResult]::new('stats', 'stats', [CompletionResultType]::ParameterValue, 'Show what the store holds and what it saved')
            [CompletionResult]::new('explain', 'explain', [CompletionResultType]::ParameterValue, 'Print an action''s key and every component that went into it')
            [CompletionResult]::new('gc', 'gc', [CompletionResultType]::ParameterValue, 'Evict entries (least recently used first) and unreferenced blobs')
            [CompletionResult]::new('rm', 'rm', [CompletionResultType]::ParameterValue, 'Remove entries')
            [CompletionResult]::new('clear', 'clear', [CompletionResultType]::ParameterValue, 'Remove everything in the store')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Re-hash every blob and parse every entry')
            [CompletionResult]::new('report', 'report', [CompletionResultType]::ParameterValue, 'Draw a run''s timeline, cache hits and slowest jobs as an HTML page')
            [CompletionResult]::new('generate', 'generate', [CompletionResultType]::ParameterValue, 'Write completions and man pages (for packaging and CI)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'jl;run' {
            [CompletionResult]::new('-i', '-i', [CompletionResultType]::ParameterName, 'An input file or directory (hashed by content; repeatable)')
            [CompletionResult]::new('--input', '--input', [CompletionResultType]::ParameterName, 'An input file or directory (hashed by content; repeatable)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'An output file or directory: stored after a miss, restored on a hit')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'An output file or directory: stored after a miss, restored on a hit')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'Include this environment variable''s value in the key (repeatable)')
            [CompletionResult]::new('--salt', '--salt', [CompletionResultType]::ParameterName, 'Extra text to mix into the key (e.g. a version of your own)')
            [CompletionResult]::new('--ignore-arg', '--ignore-arg', [CompletionResultType]::ParameterName, 'Leave arguments matching this glob out of the key (repeatable), e.g. --ignore-arg ''--threads=*''')
            [CompletionResult]::new('--trace-outputs', '--trace-outputs', [CompletionResultType]::ParameterName, 'With --trace, also capture and restore files written under DIR (the working directory always is; repeatable)')
            [CompletionResult]::new('--trace-ignore', '--trace-ignore', [CompletionResultType]::ParameterName, 'With --trace, do not record accesses under PREFIX (repeatable; /proc, /sys, /dev and the store always are ignored)')
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'The store directory [default: the user cache dir, e.g. ~/.cache/jl]')
            [CompletionResult]::new('--ttl', '--ttl', [CompletionResultType]::ParameterName, 'Entries older than this are stale and re-run (e.g. 90s, 1h, 7d)')
            [CompletionResult]::new('--log', '--log', [CompletionResultType]::ParameterName, 'Append a joblog row for every run to FILE (shared by concurrent jl)')
            [CompletionResult]::new('--remote', '--remote', [CompletionResultType]::ParameterName, 'A remote cache shared with other machines: http(s)://host:port/prefix, s3://bucket/prefix, azblob://container/prefix or redis://host:port/db')
            [CompletionResult]::new('--remote-timeout', '--remote-timeout', [CompletionResultType]::ParameterName, 'Give up on the remote after this long without an answer')
            [CompletionResult]::new('--compress', '--compress', [CompletionResultType]::ParameterName, 'Compress new blobs with zstd at LEVEL (0: off; 1, the default, is fast; up to 19). Blobs stay raw where that does not pay')
            [CompletionResult]::new('--stale', '--stale', [CompletionResultType]::ParameterName, 'Past --ttl by at most DURATION, replay the entry at once and refresh it in the background')
            [CompletionResult]::new('--no-auto-inputs', '--no-auto-inputs', [CompletionResultType]::ParameterName, 'Do not treat arguments that name existing files as inputs')
            [CompletionResult]::new('--cwd', '--cwd', [CompletionResultType]::ParameterName, 'Include the working directory in the key')
            [CompletionResult]::new('--trace', '--trace', [CompletionResultType]::ParameterName, 'Find inputs and outputs by watching the command''s file system calls (ptrace): nothing needs declaring')
            [CompletionResult]::new('--cache-failures', '--cache-failures', [CompletionResultType]::ParameterName, 'Cache non-zero exits too (by default only exit 0 is cached)')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Run even on a hit, and replace the entry')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say on stderr what ran, what was cached and why')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say on stderr what ran, what was cached and why')
            [CompletionResult]::new('--remote-read-only', '--remote-read-only', [CompletionResultType]::ParameterName, 'Use the remote cache for hits only; never upload')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Give the command /dev/null as stdin (stdin is not read or hashed)')
            [CompletionResult]::new('--no-stdin', '--no-stdin', [CompletionResultType]::ParameterName, 'Give the command /dev/null as stdin (stdin is not read or hashed)')
            [CompletionResult]::new('--warm', '--warm', [CompletionResultType]::ParameterName, 'Refresh the entry in the background; print nothing, exit 0')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'jl;map' {
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Parallel jobs: a number, or a percentage of CPUs like 50% [default: CPUs]')
            [CompletionResult]::new('--jobs', '--jobs', [CompletionResultType]::ParameterName, 'Parallel jobs: a number, or a percentage of CPUs like 50% [default: CPUs]')
            [CompletionResult]::new('-a', '-a', [CompletionResultType]::ParameterName, 'Read items from FILE instead of stdin')
            [CompletionResult]::new('--arg-file', '--arg-file', [CompletionResultType]::ParameterName, 'Read items from FILE instead of stdin')
            [CompletionResult]::new('--joblog', '--joblog', [CompletionResultType]::ParameterName, 'Write a GNU parallel style joblog (plus a Cached column) to FILE')
            [CompletionResult]::new('--halt', '--halt', [CompletionResultType]::ParameterName, 'Stop at the first failure; the map exits with that job''s status')
            [CompletionResult]::new('--retries', '--retries', [CompletionResultType]::ParameterName, 'Run a failing job up to N times in all (as GNU parallel''s --retries)')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Kill a job that runs longer than this (e.g. 30s, 5m)')
            [CompletionResult]::new('--shard', '--shard', [CompletionResultType]::ParameterName, 'Take only items whose 0-based position mod N is I (I/N), or let a job array''s variables say (auto: Slurm, SGE, LSF, PBS, Kubernetes, HyperQueue, AWS Batch)')
            [CompletionResult]::new('-i', '-i', [CompletionResultType]::ParameterName, 'An input file or directory (hashed by content; repeatable)')
            [CompletionResult]::new('--input', '--input', [CompletionResultType]::ParameterName, 'An input file or directory (hashed by content; repeatable)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'An output file or directory: stored after a miss, restored on a hit')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'An output file or directory: stored after a miss, restored on a hit')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'Include this environment variable''s value in the key (repeatable)')
            [CompletionResult]::new('--salt', '--salt', [CompletionResultType]::ParameterName, 'Extra text to mix into the key (e.g. a version of your own)')
            [CompletionResult]::new('--ignore-arg', '--ignore-arg', [CompletionResultType]::ParameterName, 'Leave arguments matching this glob out of the key (repeatable), e.g. --ignore-arg ''--threads=*''')
            [CompletionResult]::new('--trace-outputs', '--trace-outputs', [CompletionResultType]::ParameterName, 'With --trace, also capture and restore files written under DIR (the working directory always is; repeatable)')
            [CompletionResult]::new('--trace-ignore', '--trace-ignore', [CompletionResultType]::ParameterName, 'With --trace, do not record accesses under PREFIX (repeatable; /proc, /sys, /dev and the store always are ignored)')
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'The store directory [default: the user cache dir, e.g. ~/.cache/jl]')
            [CompletionResult]::new('--ttl', '--ttl', [CompletionResultType]::ParameterName, 'Entries older than this are stale and re-run (e.g. 90s, 1h, 7d)')
            [CompletionResult]::new('--log', '--log', [CompletionResultType]::ParameterName, 'Append a joblog row for every run to FILE (shared by concurrent jl)')
            [CompletionResult]::new('--remote', '--remote', [CompletionResultType]::ParameterName, 'A remote cache shared with other machines: http(s)://host:port/prefix, s3://bucket/prefix, azblob://container/prefix or redis://host:port/db')
            [CompletionResult]::new('--remote-timeout', '--remote-timeout', [CompletionResultType]::ParameterName, 'Give up on the remote after this long without an answer')
            [CompletionResult]::new('--compress', '--compress', [CompletionResultType]::ParameterName, 'Compress new blobs with zstd at LEVEL (0: off; 1, the default, is fast; up to 19). Blobs stay raw where that does not pay')
            [CompletionResult]::new('-0', '-0', [CompletionResultType]::ParameterName, 'Items are separated by NUL, not newline')
            [CompletionResult]::new('--null', '--null', [CompletionResultType]::ParameterName, 'Items are separated by NUL, not newline')
            [CompletionResult]::new('--unordered', '--unordered', [CompletionResultType]::ParameterName, 'Print output as jobs finish, not in input order')
            [CompletionResult]::new('--no-cache', '--no-cache', [CompletionResultType]::ParameterName, 'Run without the store (nothing is read or written)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Silence progress')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Silence progress')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print each command and whether it is cached; run nothing')
            [CompletionResult]::new('--no-auto-inputs', '--no-auto-inputs', [CompletionResultType]::ParameterName, 'Do not treat arguments that name existing files as inputs')
            [CompletionResult]::new('--cwd', '--cwd', [CompletionResultType]::ParameterName, 'Include the working directory in the key')
            [CompletionResult]::new('--trace', '--trace', [CompletionResultType]::ParameterName, 'Find inputs and outputs by watching the command''s file system calls (ptrace): nothing needs declaring')
            [CompletionResult]::new('--cache-failures', '--cache-failures', [CompletionResultType]::ParameterName, 'Cache non-zero exits too (by default only exit 0 is cached)')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Run even on a hit, and replace the entry')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say on stderr what ran, what was cached and why')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say on stderr what ran, what was cached and why')
            [CompletionResult]::new('--remote-read-only', '--remote-read-only', [CompletionResultType]::ParameterName, 'Use the remote cache for hits only; never upload')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'jl;ls' {
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'The store directory [default: the user cache dir, e.g. ~/.cache/jl]')
            [CompletionResult]::new('--sort', '--sort', [CompletionResultType]::ParameterName, 'Sort order')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'One JSON object per line')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'jl;show' {
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'The store directory [default: the user cache dir, e.g. ~/.cache/jl]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'json')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'jl;stats' {
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'The store directory [default: the user cache dir, e.g. ~/.cache/jl]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'json')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'jl;explain' {
            [CompletionResult]::new('-i', '-i', [CompletionResultType]::ParameterName, 'An input file or directory (hashed by content; repeatable)')
            [CompletionResult]::new('--input', '--input', [CompletionResultType]::ParameterName, 'An input file or directory (hashed by content; repeatable)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'An output file or directory: stored after a miss, restored on a hit')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'An output file or directory: stored after a miss, restored on a hit')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'Include this environment variable''s value in the key (repeatable)')
            [CompletionResult]::new('--salt', '--salt', [CompletionResultType]::ParameterName, 'Extra text to mix into the key (e.g. a version of your own)')
            [CompletionResult]::new('--ignore-arg', '--ignore-arg', [CompletionResultType]::ParameterName, 'Leave arguments matching this glob out of the key (repeatable), e.g. --ignore-arg ''--threads=*''')
            [CompletionResult]::new('--trace-outputs', '--trace-outputs', [CompletionResultType]::ParameterName, 'With --trace, also capture and restore files written under DIR (the working directory always is; repeatable)')
            [CompletionResult]::new('--trace-ignore', '--trace-ignore', [CompletionResultType]::ParameterName, 'With --trace, do not record accesses under PREFIX (repeatable; /proc, /sys, /dev and the store always are ignored)')
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'The store directory [default: the user cache dir, e.g. ~/.cache/jl]')
            [CompletionResult]::new('--ttl', '--ttl', [CompletionResultType]::ParameterName, 'Entries older than this are stale and re-run (e.g. 90s, 1h, 7d)')
            [CompletionResult]::new('--log', '--log', [CompletionResultType]::ParameterName, 'Append a joblog row for every run to FILE (shared by concurrent jl)')
            [CompletionResult]::new('--remote', '--remote', [CompletionResultType]::ParameterName, 'A remote cache shared with other machines: http(s)://host:port/prefix, s3://bucket/prefix, azblob://container/prefix or redis://host:port/db')
            [CompletionResult]::new('--remote-timeout', '--remote-timeout', [CompletionResultType]::ParameterName, 'Give up on the remote after this long without an answer')
            [CompletionResult]::new('--compress', '--compress', [CompletionResultType]::ParameterName, 'Compress new blobs with zstd at LEVEL (0: off; 1, the default, is fast; up to 19). Blobs stay raw where that does not pay')
            [CompletionResult]::new('--no-auto-inputs', '--no-auto-inputs', [CompletionResultType]::ParameterName, 'Do not treat arguments that name existing files as inputs')
            [CompletionResult]::new('--cwd', '--cwd', [CompletionResultType]::ParameterName, 'Include the working directory in the key')
            [CompletionResult]::new('--trace', '--trace', [CompletionResultType]::ParameterName, 'Find inputs and outputs by watching the command''s file system calls (ptrace): nothing needs declaring')
            [CompletionResult]::new('--cache-failures', '--cache-failures', [CompletionResultType]::ParameterName, 'Cache non-zero exits too (by default only exit 0 is cached)')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Run even on a hit, and replace the entry')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say on stderr what ran, what was cached and why')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say on stderr what ran, what was cached and why')
            [CompletionResult]::new('--remote-read-only', '--remote-read-only', [CompletionResultType]::ParameterName, 'Use the remote cache for hits only; never upload')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Leave stdin out (as `jl run -n` would)')
            [CompletionResult]::new('--no-stdin', '--no-stdin', [CompletionResultType]::ParameterName, 'Leave stdin out (as `jl run -n` would)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'json')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'jl;gc' {
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'The store directory [default: the user cache dir, e.g. ~/.cache/jl]')
            [CompletionResult]::new('--max-size', '--max-size', [CompletionResultType]::ParameterName, 'Evict least recently used entries until the store is this small (e.g. 5GiB)')
            [CompletionResult]::new('--max-age', '--max-age', [CompletionResultType]::ParameterName, 'Evict entries not used for this long (e.g. 30d)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Say what would be removed; remove nothing')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'json')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'jl;rm' {
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'The store directory [default: the user cache dir, e.g. ~/.cache/jl]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'jl;clear' {
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'The store directory [default: the user cache dir, e.g. ~/.cache/jl]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'jl;verify' {
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'The store directory [default: the user cache dir, e.g. ~/.cache/jl]')
            [CompletionResult]::new('--repair', '--repair', [CompletionResultType]::ParameterName, 'Remove corrupt entries and blobs so they become misses')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'json')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'jl;report' {
            [CompletionResult]::new('--joblog', '--joblog', [CompletionResultType]::ParameterName, 'A joblog of jl map --joblog (or GNU parallel''s --joblog)')
            [CompletionResult]::new('--log', '--log', [CompletionResultType]::ParameterName, 'A log of JL_LOG / --log (rows of every jl process that wrote it)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Write the page to FILE instead of stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Write the page to FILE instead of stdout')
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'The store directory [default: the user cache dir, e.g. ~/.cache/jl]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'jl;generate' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'jl;help' {
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Run a command through the cache: replay it if it ran before')
            [CompletionResult]::new('map', 'map', [CompletionResultType]::ParameterValue, 'Run a command over many items in parallel, every job cached')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List cached entries')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show one entry in full')
            [CompletionResult]::new('stats', 'stats', [CompletionResultType]::ParameterValue, 'Show what the store holds and what it saved')
            [CompletionResult]::new('explain', 'explain', [CompletionResultType]::ParameterValue, 'Print an action''s key and every component that went into it')
            [CompletionResult]::new('gc', 'gc', [CompletionResultType]::ParameterValue, 'Evict entries (least recently used first) and unreferenced blobs')
            [CompletionResult]::new('rm', 'rm', [CompletionResultType]::ParameterValue, 'Remove entries')
            [CompletionResult]::new('clear', 'clear', [CompletionResultType]::ParameterValue, 'Remove everything in the store')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Re-hash every blob and parse every entry')
            [CompletionResult]::new('report', 'report', [CompletionResultType]::ParameterValue, 'Draw a run''s timeline, cache hits and slowest jobs as an HTML page')
            [CompletionResult]::new('generate', 'generate', [CompletionResultType]::ParameterValue, 'Write completions and man pages (for packaging and CI)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'jl;help;run' {
            break
        }
        'jl;help;map' {
            break
        }
        'jl;help;ls' {
            break
        }
        'jl;help;show' {
            break
        }
        'jl;help;stats' {
            break
        }
        'jl;help;explain' {
            break
        }
        'jl;help;gc' {
            break
        }
        'jl;help;rm' {
            break
        }
        'jl;help;clear' {
            break
        }
        'jl;help;verify' {
            break
        }
        'jl;help;report' {
            break
        }
        'jl;help;generate' {
            break
        }
        'jl;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
