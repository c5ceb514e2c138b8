#!/usr/bin/env bash
# tools/check-fresh.sh (make check-fresh): proves that README's two commands
# work on a bare Debian 12 machine.
#
#   tools/check-fresh.sh [--cold] [--keep] [-v]
#
# 1. A bare bookworm root (debootstrap --variant=minbase) in build/fresh-root,
#    from the mirror this host's apt config names.  The bare root is cached as
#    a tarball taken right after debootstrap, before anything is installed in
#    it (FRESH_CACHE, default /var/cache/volley-fresh; FRESH_CACHE= for none;
#    rebuilt after FRESH_CACHE_DAYS, default 7; --cold ignores it).  Every run
#    unpacks a new copy: no run starts from a root another run installed into.
# 2. A git clone of HEAD (the commit, not the work tree's uncommitted state)
#    in the root's /root/volley.
# 3. In a mount + PID namespace of its own (unshare), so that nothing stays
#    mounted and no process survives on any exit path: /proc, /dev (bind),
#    /sys; then, chrooted, with a minimal environment and no stdin, each bounded
#    by timeout:
#        apt-get update && apt-get install -y make     (README's one pre-step)
#        make demo
#        make test                                     (must end "N passed, 0 failed")
# The whole run is bounded by FRESH_TIMEOUT seconds (default 2400).  Logs are in
# build/check-fresh/; the root is removed after a pass and kept after a failure
# (--keep: always kept) until the next run, which starts by cleaning it.
# Exit status 0 when all passed, 1 when anything failed, 2 on a usage error.
#
# What the root gets from this host besides the clone: /etc/resolv.conf and
# /etc/hosts (debootstrap writes no /etc/hosts; an installed machine has one), the
# bookworm, bookworm-updates and bookworm-security "main" entries of the host's
# apt sources (same URLs), the host's apt settings for reaching that mirror
# (Acquire::*::Proxy, Acquire::Check-Valid-Until, Acquire::Check-Date), the
# host's local CA certificates (/usr/local/share/ca-certificates: a site's own
# CAs, such as an egress proxy's, which Debian's ca-certificates adds to the
# system bundle when the suite's packages install it; npm needs them), and a
# policy-rc.d that keeps package installs from starting services (the root
# shares the host's network, so an nginx started by its postinst would take the
# host's port 80; the suite starts its own servers on free loopback ports).
set -euo pipefail

SUITE=bookworm
VARIANT=minbase
TOTAL_S=${FRESH_TIMEOUT:-2400}
PRESTEP_S=900
DEMO_S=1500
TEST_S=1500
DEBOOTSTRAP_S=1200

cold=0 keep=0 verbose=${FRESH_VERBOSE:-0} inside=""
while [ $# -gt 0 ]; do
    case "$1" in
        --cold) cold=1 ;;
        --keep) keep=1 ;;
        -v|--verbose) verbose=1 ;;
        --inside) inside=$2; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "check-fresh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

say() { printf 'check-fresh: %s\n' "$*"; }
SELF=$(readlink -f "$0")

# ----------------------------------------------------------------- inside
# Runs as PID 1 of a new PID namespace, in a private mount namespace: every
# mount below and every process started in the chroot end with it.
if [ -n "$inside" ]; then
    R=$inside
    logs=$FRESH_LOGS
    mount -t proc proc "$R/proc"
    mount --rbind /dev "$R/dev"
    mount --rbind /sys "$R/sys"
    CHROOT_ENV=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
                HOME=/root USER=root LOGNAME=root SHELL=/bin/sh)
    status=0
    # step NAME SECONDS COMMAND: runs COMMAND in /root/volley inside the root.
    step() {
        local name=$1 secs=$2 cmd=$3 t0 rc
        t0=$(date +%s)
        say "[$name] $cmd (bounded to ${secs} s)"
        set +e
        if [ "$verbose" = 1 ]; then
            timeout -k 30 "$secs" chroot "$R" "${CHROOT_ENV[@]}" /bin/sh -c "cd /root/volley && $cmd" \
                </dev/null 2>&1 | tee "$logs/$name.log"
            rc=${PIPESTATUS[0]}
        else
            timeout -k 30 "$secs" chroot "$R" "${CHROOT_ENV[@]}" /bin/sh -c "cd /root/volley && $cmd" \
                </dev/null >"$logs/$name.log" 2>&1
            rc=$?
        fi
        set -e
        local dt=$(( $(date +%s) - t0 ))
        if [ "$rc" -eq 0 ]; then
            echo "$name ok ${dt}" >>"$logs/summary"
            say "[$name] passed in ${dt} s; last lines of $logs/$name.log:"
            tr '\r' '\n' <"$logs/$name.log" | tail -n 8 | sed 's/^/    /'
        else
            local why="exit status $rc"
            [ "$rc" -eq 124 ] && why="timed out after ${secs} s"
            echo "$name FAILED ${dt} ($why)" >>"$logs/summary"
            say "[$name] FAILED ($why) after ${dt} s; last lines of $logs/$name.log:"
            tr '\r' '\n' <"$logs/$name.log" | tail -n 60 | sed 's/^/    /'
            status=1
        fi
        return "$rc"
    }
    step apt-make "$PRESTEP_S" "apt-get update && apt-get install -y make" &&
        step demo "$DEMO_S" "make demo" || true
    # make test runs whatever make demo did, so it runs after a failed demo too.
    if grep -q '^apt-make ok' "$logs/summary"; then
        step test "$TEST_S" "make test" || true
    fi
    exit "$status"
fi

# ----------------------------------------------------------------- outside
if [ "$(id -u)" -ne 0 ]; then
    echo "check-fresh: needs root (debootstrap, chroot, mounts)" >&2
    exit 2
fi
cd "$(dirname "$SELF")/.."
REPO=$(pwd)
BUILD=$REPO/build
ROOT=$BUILD/fresh-root
LOGS=$BUILD/check-fresh
mkdir -p "$BUILD"

# The whole run is bounded: re-run this script under timeout once.  timeout
# sends TERM at the deadline; the EXIT trap below then cleans up.
if [ -z "${CHECK_FRESH_BOUNDED:-}" ]; then
    export CHECK_FRESH_BOUNDED=1
    # timeout runs in a process group of its own, which a terminal's ^C does
    # not reach: INT and TERM here are passed on to it.
    timeout -k 60 "$TOTAL_S" bash "$SELF" "$@" &
    tpid=$!
    trap 'kill -TERM "$tpid" 2>/dev/null || true' INT TERM HUP
    while :; do
        rc=0
        wait "$tpid" || rc=$?
        kill -0 "$tpid" 2>/dev/null || break
    done
    if [ "$rc" -eq 124 ]; then
        say "FAILED: the whole run hit its bound of ${TOTAL_S} s (FRESH_TIMEOUT)"
        rc=1
    fi
    exit "$rc"
fi

exec 9>"$BUILD/.check-fresh.lock"
if ! flock -n 9; then
    echo "check-fresh: another check-fresh is running on $ROOT" >&2
    exit 1
fi

# Mount points at or below $ROOT in this (the host's) mount namespace.  The
# chroot's own mounts live in a namespace of their own and go with it, so
# these exist only if something outside this script mounted there.
mounts_under_root() {
    awk -v r="$ROOT" '$5 == r || index($5, r "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r
}

# Stops what is left of an earlier or this run: its namespace's processes (by
# the PID unshare had), mounts under the root, and the root itself.
# running PID: neither gone nor a zombie.
running() {
    local st=""
    [ -r "/proc/$1/stat" ] && read -r _ _ st _ <"/proc/$1/stat" 2>/dev/null
    [ -n "$st" ] && [ "$st" != Z ]
}
unshare_pid=""
cleanup_root() {
    if [ -f "$LOGS/unshare.pid" ]; then
        local old
        old=$(cat "$LOGS/unshare.pid")
        # Only if that PID is still our unshare (a killed run's), not a reused PID.
        if [ -n "$old" ] && tr '\0' ' ' <"/proc/$old/cmdline" 2>/dev/null | grep -qF -- "--inside $ROOT"; then
            say "stopping a stale run's namespace (unshare PID $old)"
            kill -KILL "$old" 2>/dev/null || true
            # --kill-child: the namespace's PID 1, and so all of it, dies with it.
            for _ in 1 2 3 4 5 6 7 8 9 10; do running "$old" || break; sleep 1; done
        fi
        rm -f "$LOGS/unshare.pid"
    fi
    local m
    for m in $(mounts_under_root); do
        say "unmounting stale $m"
        umount -l "$m" 2>/dev/null || true
    done
    if [ -n "$(mounts_under_root)" ]; then
        say "FAILED: still mounted under $ROOT; not removing it" >&2
        return 1
    fi
    # --one-file-system: never follow anything still mounted into the root.
    rm -rf --one-file-system "$ROOT"
}

result=1
on_exit() {
    local rc=$?
    # Ignored, not reset: timeout sends TERM to this process and then to its
    # whole group, and the second one must not cut this cleanup short.
    trap - EXIT
    trap '' INT TERM HUP
    if [ -n "$unshare_pid" ] && running "$unshare_pid"; then
        # unshare --fork ignores TERM; KILL takes its namespace with it (--kill-child).
        kill -KILL "$unshare_pid" 2>/dev/null || true
        wait "$unshare_pid" 2>/dev/null || true
    fi
    for m in $(mounts_under_root); do umount -l "$m" 2>/dev/null || true; done
    rm -f "$LOGS/unshare.pid"
    if [ "$result" -eq 0 ] && [ "$keep" = 0 ]; then
        rm -rf --one-file-system "$ROOT"
    elif [ -d "$ROOT" ]; then
        say "root left in $ROOT for inspection (the next run removes it)"
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'say "interrupted"; exit 1' INT TERM HUP

t_start=$(date +%s)
COMMIT=$(git rev-parse HEAD)
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
    say "note: the work tree has uncommitted changes; they are not checked (this checks commit ${COMMIT:0:12})"
fi

# ---- the mirror, from this host's apt config: "URI SUITE" pairs with main.
host_sources() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk '$1 == "deb" { i = 2
                if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                uri = $i; suite = $(i + 1)
                for (j = i + 2; j <= NF; j++) if ($j == "main") { print uri, suite; break } }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk 'function flush(   n, m, u, s, i, j, okc, okt) {
                 okt = 0; okc = 0
                 n = split(f["types"], t, /[ \t]+/); for (i = 1; i <= n; i++) if (t[i] == "deb") okt = 1
                 n = split(f["components"], t, /[ \t]+/); for (i = 1; i <= n; i++) if (t[i] == "main") okc = 1
                 if (okt && okc && tolower(f["enabled"]) != "no") {
                     n = split(f["uris"], u, /[ \t]+/); m = split(f["suites"], s, /[ \t]+/)
                     for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) if (u[i] != "" && s[j] != "") print u[i], s[j]
                 }
                 delete f; key = "" }
             /^#/ { next }
             /^[ \t]*$/ { flush(); next }
             /^[ \t]/ { if (key != "") f[key] = f[key] " " $0; next }
             { key = tolower(substr($0, 1, index($0, ":") - 1)); f[key] = substr($0, index($0, ":") + 1) }
             END { flush() }' "$f"
    done
}
sources=$(host_sources | awk -v s="$SUITE" '$2 == s || $2 == s "-updates" || $2 == s "-security"' | awk '!seen[$0]++')
MIRROR=${FRESH_MIRROR:-$(printf '%s\n' "$sources" | awk -v s="$SUITE" '$2 == s { print $1; exit }')}
if [ -z "$MIRROR" ]; then
    say "FAILED: this host's apt config has no '$SUITE main' source to take the mirror from; set FRESH_MIRROR=URL" >&2
    exit 1
fi
[ -n "$sources" ] || sources="$MIRROR $SUITE"
ARCH=$(dpkg --print-architecture)

# ---- debootstrap, installed if missing.
if ! command -v debootstrap >/dev/null; then
    say "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get update -qq
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq debootstrap </dev/null
fi

cleanup_root
rm -rf "$LOGS"
mkdir -p "$LOGS"

# ---- the bare root: unpacked from the cached pristine tarball, or debootstrapped.
CACHE=${FRESH_CACHE-/var/cache/volley-fresh}
key=$(printf '%s %s %s %s %s\n' "$MIRROR" "$SUITE" "$VARIANT" "$ARCH" "$(debootstrap --version)" | md5sum | cut -c1-12)
tarball=""
if [ -n "$CACHE" ] && mkdir -p "$CACHE" 2>/dev/null && [ -w "$CACHE" ]; then
    tarball=$CACHE/$SUITE-$VARIANT-$ARCH-$key.tar
    find "$CACHE" -maxdepth 1 -name "$SUITE-$VARIANT-$ARCH-*.tar" -mtime +"${FRESH_CACHE_DAYS:-7}" -delete
fi
t0=$(date +%s)
unpacked=0
if [ "$cold" = 0 ] && [ -n "$tarball" ] && [ -f "$tarball" ]; then
    how="cached bare root $tarball"
    say "bare $SUITE $VARIANT root from $how"
    mkdir -p "$ROOT"
    if tar -xpf "$tarball" --numeric-owner -C "$ROOT"; then
        unpacked=1
    else
        say "the cached tarball does not unpack; removing it and debootstrapping"
        rm -f "$tarball"
        rm -rf --one-file-system "$ROOT"
    fi
fi
if [ "$unpacked" = 0 ]; then
    how="debootstrap --variant=$VARIANT $SUITE from $MIRROR"
    say "bare root: $how (log: $LOGS/debootstrap.log)"
    if ! timeout -k 30 "$DEBOOTSTRAP_S" debootstrap --variant="$VARIANT" --arch="$ARCH" \
            "$SUITE" "$ROOT" "$MIRROR" </dev/null >"$LOGS/debootstrap.log" 2>&1; then
        say "FAILED: debootstrap; last lines of $LOGS/debootstrap.log:"
        tail -n 30 "$LOGS/debootstrap.log" | sed 's/^/    /'
        exit 1
    fi
    if [ -n "$(mounts_under_root)" ]; then
        say "FAILED: debootstrap left mounts under $ROOT" >&2
        exit 1
    fi
    if [ -n "$tarball" ]; then
        # Taken now, before anything is installed or copied in: a pristine bare root.
        if tar -cpf "$tarball.tmp.$$" --numeric-owner -C "$ROOT" . && mv "$tarball.tmp.$$" "$tarball"; then
            say "cached the bare root as $tarball"
        else
            rm -f "$tarball.tmp.$$"   # no cache then; the run goes on
        fi
    fi
fi
t_root=$(( $(date +%s) - t0 ))

# The root must be bare: none of what the README's commands are to install.
present=$(chroot "$ROOT" dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' \
          make gcc python3 nginx 2>/dev/null | awk '$1 == "ii" { print $2 }' | tr '\n' ' ' || true)
if [ -n "$present" ]; then
    say "FAILED: the bare root is not bare, it has: $present" >&2
    exit 1
fi
npkgs=$(chroot "$ROOT" dpkg-query -W -f='${db:Status-Abbrev}\n' | grep -c '^ii' || true)
say "bare root ready in ${t_root} s: $npkgs packages, no make, gcc, python3 or nginx"

# ---- what the root gets from this host (see the header).
cp -L /etc/resolv.conf /etc/hosts "$ROOT/etc/"
if [ -d /usr/local/share/ca-certificates ]; then
    mkdir -p "$ROOT/usr/local/share/ca-certificates"
    cp -rL /usr/local/share/ca-certificates/. "$ROOT/usr/local/share/ca-certificates/"
fi
printf '%s\n' "$sources" | awk '{ print "deb " $1 " " $2 " main" }' >"$ROOT/etc/apt/sources.list"
sed 's/^/    apt source: /' "$ROOT/etc/apt/sources.list"
apt-config dump | grep -E '^Acquire::(https?|ftp)::Proxy|^Acquire::Check-Valid-Until |^Acquire::Check-Date ' \
    >"$ROOT/etc/apt/apt.conf.d/00host-mirror" || true
printf '#!/bin/sh\n# check-fresh: no service starts at package install in this chroot\nexit 101\n' \
    >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"

git clone -q --no-hardlinks --no-checkout "$REPO" "$ROOT/root/volley"
git -C "$ROOT/root/volley" checkout -q --detach "$COMMIT"
say "commit ${COMMIT:0:12} cloned into $ROOT/root/volley"

# ---- the README's commands, in namespaces of their own.
export FRESH_LOGS=$LOGS
set +e
unshare --mount --pid --fork --kill-child=KILL --propagation private \
    bash "$SELF" --inside "$ROOT" $([ "$verbose" = 1 ] && echo -v) 9>&- &
unshare_pid=$!
echo "$unshare_pid" >"$LOGS/unshare.pid"
wait "$unshare_pid"
rc=$?
set -e
unshare_pid=""

t_total=$(( $(date +%s) - t_start ))
echo
say "summary (commit ${COMMIT:0:12}, $how):"
printf '    %-10s %5s s  ok\n' "bare-root" "$t_root"
if [ -f "$LOGS/summary" ]; then
    awk '{ printf "    %-10s %5s s  %s", $1, $3, $2; for (i = 4; i <= NF; i++) printf " %s", $i; print "" }' "$LOGS/summary"
fi
for s in apt-make demo test; do
    grep -q "^$s ok" "$LOGS/summary" 2>/dev/null || rc=1
done
if [ -f "$LOGS/test.log" ] && ! tail -n 1 "$LOGS/test.log" | grep -qE '^[0-9]+ passed, 0 failed'; then
    grep -E '^[0-9]+ passed, [0-9]+ failed' "$LOGS/test.log" | tail -n 1 | sed 's/^/    suite: /'
    rc=1
fi
if [ "$rc" -eq 0 ]; then
    result=0
    say "PASS: README's commands work on a bare Debian $SUITE root (${t_total} s in all)"
    exit 0
fi
say "FAIL (${t_total} s in all); logs in $LOGS"
exit 1
