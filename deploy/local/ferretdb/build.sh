#!/usr/bin/env bash
# Builds FerretDB v1.24.2 with this machine's Go from the Go module proxy into $1 (default .local/bin).
# prepare.sh vendors the module in a scratch folder and applies our patches there.
# Our patches: atomic-updates.patch makes concurrent updates of one document
# keep each other's changes, as MongoDB does (unpatched, FerretDB v1 loses them: libs/inbox-core/tests/
# test_mongo.py shows it); id-pushdown.patch makes reads, updates and deletes by _id use the _id index,
# also for a filter that names an _id (or an _id $in list) among other conditions (unpatched, the SQLite
# backend's _id expression differed from its own index's, and every one of them scanned the collection);
# index-pushdown.patch makes filters and sorts on the fields of secondary indexes use them (typed index
# keys in MongoDB's order, the filter and sort translated to SQL on them; the handler still filters);
# statement-cache.patch keeps SQL statements prepared between queries (with go.mod's modernc.org/sqlite
# v1.62, whose driver keeps a prepared statement compiled); resource-tracking.patch keeps FerretDB's
# leak detector (a profile entry and a finalizer per iterator) to debug builds.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
out=${1:-$root/.local/bin}
work=$root/.local/build/ferretdb
mkdir -p "$out"
bash "$here/prepare.sh" "$work"
cd "$work"
GOBIN="$out" go install -mod=vendor -tags ferretdb_no_postgresql github.com/FerretDB/FerretDB/cmd/ferretdb
rm -rf "$work"
"$out/ferretdb" --version | awk "NR == 1"  # reads everything: no SIGPIPE under pipefail
