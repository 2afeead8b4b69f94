#!/usr/bin/env bash
# The Go differential tests of our patches, in the patched, vendored FerretDB in a scratch folder (as
# build.sh builds it): index-pushdown.patch's (pushdown_test.go and the pushdown_*_test.go it uses,
# copied into internal/handler, each prefixed index_ so that none shadows one of FerretDB's own), and
# statement-cache.patch's (src/internal/util/fsql/statement_cache_test.go, copied in by prepare.sh) and
# resource-tracking.patch's (src/internal/util/resource/tracking_test.go, in a release and a debug build).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
work=$root/.local/build/ferretdb-test
bash "$here/prepare.sh" "$work"
for test in "$here"/*_test.go; do
  cp "$test" "$work/vendor/github.com/FerretDB/FerretDB/internal/handler/index_$(basename "$test")"
done
cd "$work"
go test -mod=vendor -tags ferretdb_no_postgresql -count=1 -run 'TestIndexPushdown' github.com/FerretDB/FerretDB/internal/handler
# statement-cache.patch's test lives under src/ beside the file it tests (prepare.sh copied it in).
go test -mod=vendor -tags ferretdb_no_postgresql -count=1 -run 'TestStatementCache' github.com/FerretDB/FerretDB/internal/util/fsql
# resource-tracking.patch: a release build does not track, a debug build (ferretdb_debug) tracks as before.
go test -mod=vendor -tags ferretdb_no_postgresql -count=1 -run 'TestTrackingOnlyInDebugBuilds' github.com/FerretDB/FerretDB/internal/util/resource
go test -mod=vendor -tags ferretdb_no_postgresql,ferretdb_debug -count=1 -run 'TestTrackingOnlyInDebugBuilds' github.com/FerretDB/FerretDB/internal/util/resource
rm -rf "$work"
