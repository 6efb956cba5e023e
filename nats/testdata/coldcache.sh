#!/bin/sh
# coldcache.sh BEFORE AFTER: what a change of dependencies costs a first build. For each git
# revision it exports the tree to a temporary folder and, with an empty module cache and an empty
# build cache each time, prints the module cache size after `go mod download`, then the wall and CPU
# time of `go test -count=1 ./...` and the build cache size after it. For AFTER it also times cold
# builds of ./nats and ./nats/embedded alone. Needs the module proxy and /usr/bin/time.
# Run from the repository root:  sh nats/testdata/coldcache.sh 1c9c9b1 HEAD
set -eu
before=$1 after=$2
work=$(mktemp -d)
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT

cold() { # label dir command...
	label=$1 dir=$2
	shift 2
	export GOMODCACHE="$work/mod-$label" GOCACHE="$work/build-$label" GOFLAGS=-modcacherw
	(cd "$dir" && /usr/bin/time -f "$label: $* wall %e s, user %U s, sys %S s" "$@" >/dev/null 2>"$work/err") || true
	echo "$(tail -1 "$work/err"), build cache $(du -sm "$GOCACHE" | cut -f1) MB, load $(cut -d' ' -f1 /proc/loadavg)"
}

for rev in "$before" "$after"; do
	mkdir -p "$work/$rev"
	git archive "$rev" | tar -x -C "$work/$rev"
	export GOMODCACHE="$work/mod-$rev" GOCACHE="$work/build-$rev" GOFLAGS=-modcacherw
	(cd "$work/$rev" && go mod download)
	echo "$rev: go mod download: module cache $(du -sm "$GOMODCACHE" | cut -f1) MB"
	cold "$rev" "$work/$rev" go test -count=1 ./...
done
cold "$after-nats" "$work/$after" go build ./nats
cold "$after-embedded" "$work/$after" go build ./nats/embedded
