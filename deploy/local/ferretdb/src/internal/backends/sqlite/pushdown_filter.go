package sqlite

import (
	"context"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/FerretDB/FerretDB/internal/backends/sqlite/metadata"
	"github.com/FerretDB/FerretDB/internal/handler/sjson"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/fsql"
	"github.com/FerretDB/FerretDB/internal/util/lazyerrors"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// index-pushdown.patch: the filter and sort of a query, translated to SQL on the typed index keys
// (metadata/typed.go) where they can be, so that SQLite reads an index range in order instead of the
// whole table. The handler still filters every returned document by the whole filter, so a condition
// left out only costs reading more rows; a condition pushed down must never drop a matching document.
//
// This file: a filter's conditions as SQL on the typed keys; pushdown.go builds the query from them.

// typedCond is one pushed condition on a field.
type typedCond struct {
	sql   string
	args  []any
	fixed bool // a single value: the field is the same for every result (needs no ORDER BY)

	in     []any // a $in of several values of one rank: one UNION ALL part per value under a sort
	inRank int
}

// sqlQuery is a query built by buildQuery.
type sqlQuery struct {
	q          string
	args       []any
	pushed     bool // some condition went into WHERE
	limited    bool
	sorted     bool // by $natural or by typed keys
	count      bool // SELECT count(*)
	sortedKeys int
	exact      bool
}

// typedValue is the rank and SQL argument of a scalar the typed keys order as MongoDB does.
func typedValue(v any) (int, any, bool) {
	switch v := v.(type) {
	case types.NullType:
		return metadata.RankNull, nil, true
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, nil, false
		}

		return metadata.RankNumber, v, true
	case int32:
		return metadata.RankNumber, int64(v), true
	case int64:
		return metadata.RankNumber, v, true
	case string:
		return metadata.RankString, v, true
	case types.ObjectID:
		return metadata.RankObjectID, hex.EncodeToString(v[:]), true
	case bool:
		if v {
			return metadata.RankBool, int64(1), true
		}

		return metadata.RankBool, int64(0), true
	case time.Time:
		return metadata.RankDate, v.UnixMilli(), true
	}

	return 0, nil, false
}

// textCond is an equality on the JSON text of a string or an ObjectID.
func textCond(field string, v any) (typedCond, bool) {
	if ops, ok := v.(*types.Document); ok && ops.Len() == 1 && ops.Keys()[0] == "$eq" {
		v = must.NotFail(ops.Get("$eq"))
	}

	switch v.(type) {
	case string, types.ObjectID:
		arg := string(must.NotFail(sjson.MarshalSingleValue(v)))
		return typedCond{sql: metadata.TextExpr(field) + " = ?", args: []any{arg}, fixed: true}, true
	}

	return typedCond{}, false
}

func eqCond(field string, v any) (typedCond, bool) {
	rank, arg, ok := typedValue(v)
	if !ok {
		return typedCond{}, false
	}

	if rank == metadata.RankNull {
		return typedCond{sql: fmt.Sprintf("%s = %d", metadata.RankExpr(field), rank), fixed: true}, true
	}

	sql := fmt.Sprintf("%s = %d AND %s = ?", metadata.RankExpr(field), rank, metadata.ValueExpr(field))

	return typedCond{sql: sql, args: []any{arg}, fixed: true}, true
}

func rangeCond(field, op string, v any) (typedCond, bool) {
	rank, arg, ok := typedValue(v)
	if !ok || rank == metadata.RankNull { // $gte: null matches null and missing; not worth a case
		return typedCond{}, false
	}

	// likely(): without statistics SQLite takes a range for narrower than equalities on another index
	// (a presence lookup by workspace and kind would read every unexpired session by its expiry)
	sqlOp := map[string]string{"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}[op]
	sql := fmt.Sprintf("%s = %d AND likely(%s %s ?)", metadata.RankExpr(field), rank, metadata.ValueExpr(field), sqlOp)

	return typedCond{sql: sql, args: []any{arg}}, true
}

func inCond(field string, arr *types.Array) (typedCond, bool) {
	if arr.Len() == 0 {
		return typedCond{}, false
	}

	if arr.Len() == 1 {
		return eqCond(field, must.NotFail(arr.Get(0)))
	}

	var rank int
	var args []any

	for i := 0; i < arr.Len(); i++ {
		r, arg, ok := typedValue(must.NotFail(arr.Get(i)))
		if !ok || (i > 0 && r != rank) {
			return typedCond{}, false
		}

		rank = r

		// each value once: under a sort every value is a UNION ALL part of its own (0 and -0.0 are one)
		if f, ok := arg.(float64); ok && f == math.Trunc(f) && math.Abs(f) < 1<<63 {
			arg = int64(f)
		}

		if !slices.Contains(args, arg) {
			args = append(args, arg)
		}
	}

	if len(args) == 1 {
		return eqCond(field, must.NotFail(arr.Get(0)))
	}

	if rank == metadata.RankNull {
		return typedCond{sql: fmt.Sprintf("%s = %d", metadata.RankExpr(field), rank), fixed: true}, true
	}

	marks := strings.TrimSuffix(strings.Repeat("?, ", len(args)), ", ")
	sql := fmt.Sprintf("%s = %d AND %s IN (%s)", metadata.RankExpr(field), rank, metadata.ValueExpr(field), marks)

	return typedCond{sql: sql, args: args, in: args, inRank: rank}, true
}

// fieldConds translates the filter value of one field; false if some of it is left to the handler.
func fieldConds(field string, v any) ([]typedCond, bool) {
	ops, ok := v.(*types.Document)
	if !ok {
		if c, ok := eqCond(field, v); ok {
			return []typedCond{c}, true
		}

		return nil, false // arrays, regexes and other types
	}

	if ops.Len() == 0 || !strings.HasPrefix(ops.Keys()[0], "$") {
		return nil, false // equality with a document
	}

	var res []typedCond
	exact := true
	values := ops.Values()

	for i, op := range ops.Keys() {
		var c typedCond

		switch op {
		case "$eq":
			c, ok = eqCond(field, values[i])
		case "$in":
			var arr *types.Array
			if arr, ok = values[i].(*types.Array); ok {
				c, ok = inCond(field, arr)
			}
		case "$gt", "$gte", "$lt", "$lte":
			c, ok = rangeCond(field, op, values[i])
		default:
			ok = false
		}

		if !ok {
			exact = false
			continue
		}

		res = append(res, c)
	}

	return res, exact
}

// translate adds the filter's conditions on typed fields to conds; false if some of it is left over.
func translate(filter *types.Document, typed map[string]int, text map[string]bool, conds map[string][]typedCond) bool {
	exact := true
	values := filter.Values()

	for i, key := range filter.Keys() {
		if key == "$and" {
			arr, ok := values[i].(*types.Array)
			if !ok || arr.Len() == 0 {
				exact = false
				continue
			}

			for j := 0; j < arr.Len(); j++ {
				d, ok := must.NotFail(arr.Get(j)).(*types.Document)
				if !ok || !translate(d, typed, text, conds) {
					exact = false
				}
			}

			continue
		}

		if _, ok := typed[key]; !ok {
			// the leading field of a unique index (text keys): an equality with a string or an ObjectID,
			// written as FerretDB's _id lookup is
			if c, ok := textCond(key, values[i]); ok && text[key] {
				conds[key] = append(conds[key], c)
				continue
			}

			exact = false // operators ($or, $nor, $expr...) and fields of no index
			continue
		}

		cs, ok := fieldConds(key, values[i])
		if !ok {
			exact = false
		}

		conds[key] = append(conds[key], cs...)
	}

	return exact
}

// exists runs an EXISTS probe.
func exists(ctx context.Context, db *fsql.DB, table, where string, args []any) (bool, error) {
	var found bool

	q := fmt.Sprintf("SELECT EXISTS (SELECT 1 FROM %q WHERE %s)", table, where)
	if err := db.QueryRowContext(ctx, q, args...).Scan(&found); err != nil {
		return false, lazyerrors.Error(err)
	}

	return found, nil
}

func joinConds(conds []typedCond) (string, []any) {
	var parts []string
	var args []any

	for _, c := range conds {
		parts = append(parts, c.sql)
		args = append(args, c.args...)
	}

	return strings.Join(parts, " AND "), args
}

// typedQuery builds the query on typed keys: the conditions kept, the ORDER BY of the leading sort
// keys it can order by, and LIMIT when it applied everything.
//
