#!/usr/bin/env bash
# The Go differential test of index-pushdown.patch (pushdown_test.go and the pushdown_*_test.go it uses):
# copied into the patched, vendored FerretDB's internal/handler in a scratch folder (as build.sh builds it)
# and run there, each file prefixed index_ so that none shadows one of FerretDB's own.
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
rm -rf "$work"
