#!/usr/bin/env bash
# The Go differential test of index-pushdown.patch (pushdown_test.go): copied into the patched, vendored
# FerretDB's internal/handler in a scratch folder (as build.sh builds it) and run there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
work=$root/.local/build/ferretdb-test
bash "$here/prepare.sh" "$work"
cp "$here/pushdown_test.go" "$work/vendor/github.com/FerretDB/FerretDB/internal/handler/index_pushdown_test.go"
cd "$work"
go test -mod=vendor -tags ferretdb_no_postgresql -count=1 -run 'TestIndexPushdown' github.com/FerretDB/FerretDB/internal/handler
rm -rf "$work"
