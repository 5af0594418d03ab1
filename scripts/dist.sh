#!/usr/bin/env bash
# What is shipped: the release binary without symbols or debug info, and beside it
# simple-chat.debug (symbols and line tables, compressed). A panic's backtrace
# (RUST_BACKTRACE=1) finds the debug file by itself, through the binary's .gnu_debuglink,
# when the two sit in one directory; without it the backtrace has no names.
#
#   scripts/dist.sh                      build with --release, write dist/simple-chat{,.debug}
#   scripts/dist.sh <binary> <out dir>   only split an already built binary
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then
    cargo build --release --locked
    set -- target/release/simple-chat dist
fi
built="$1"
out="$2"
name="$(basename "$built")"
mkdir -p "$out"
objcopy --only-keep-debug --compress-debug-sections=zlib "$built" "$out/$name.debug.partial"
mv "$out/$name.debug.partial" "$out/$name.debug"
objcopy --strip-all --add-gnu-debuglink="$out/$name.debug" "$built" "$out/$name.partial"
mv "$out/$name.partial" "$out/$name"
ls -l "$out/$name" "$out/$name.debug"
