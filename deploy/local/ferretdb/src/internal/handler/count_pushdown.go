package handler

import (
	"context"
	"math"
	"strings"

	"github.com/FerretDB/FerretDB/internal/backends"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/iterator"
	"github.com/FerretDB/FerretDB/internal/util/lazyerrors"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// countPushdown answers the pipeline of count_documents, [{$match: filter}, {$limit: n}?, {$group:
// {_id: constant, n: {$sum: 1}}}], with the backend's count (at most n) when the backend can apply the
// whole filter (index-pushdown.patch), instead of reading and decoding every matching document; false
// otherwise. As $group, it returns no document for a count of 0.
func countPushdown(ctx context.Context, c backends.Collection, qp *backends.QueryParams, stages []any) (types.DocumentsIterator, bool, error) { //nolint:lll // for readability
	var limit int64

	if len(stages) == 3 {
		if limit = countLimit(stages[1]); limit <= 0 {
			return nil, false, nil
		}

		stages = []any{stages[0], stages[2]}
	}

	if len(stages) != 2 || qp.Filter == nil {
		return nil, false, nil
	}

	match, _ := stages[0].(*types.Document)
	group, _ := stages[1].(*types.Document)

	if match.Len() != 1 || !match.Has("$match") || group.Len() != 1 || !group.Has("$group") {
		return nil, false, nil
	}

	spec, _ := must.NotFail(group.Get("$group")).(*types.Document)
	if spec.Len() != 2 || spec.Keys()[0] != "_id" {
		return nil, false, nil
	}

	id, field := spec.Values()[0], spec.Keys()[1]

	switch id := id.(type) {
	case int32, int64, float64, types.NullType:
	case string:
		if strings.HasPrefix(id, "$") {
			return nil, false, nil // a field path: groups
		}
	default:
		return nil, false, nil
	}

	sum, _ := spec.Values()[1].(*types.Document)
	if one, _ := sum.Get("$sum"); sum.Len() != 1 || one != int32(1) {
		return nil, false, nil
	}

	params := *qp
	params.CountOnly = true
	params.TypedLimit = limit

	res, err := c.Query(ctx, &params)
	if err != nil {
		return nil, false, lazyerrors.Error(err)
	}

	res.Iter.Close()

	if !res.Counted {
		return nil, false, nil
	}

	var docs []*types.Document

	if res.Count > 0 {
		var n any = res.Count
		if res.Count <= math.MaxInt32 {
			n = int32(res.Count) // as $sum of int32s
		}

		docs = append(docs, must.NotFail(types.NewDocument("_id", id, field, n)))
	}

	return iterator.Values(iterator.ForSlice(docs)), true, nil
}

// countLimit is n of a {$limit: n} stage with a positive whole n, else 0.
func countLimit(stage any) int64 {
	doc, _ := stage.(*types.Document)
	if doc == nil || doc.Len() != 1 || !doc.Has("$limit") {
		return 0
	}

	switch n := must.NotFail(doc.Get("$limit")).(type) {
	case int32:
		return int64(n)
	case int64:
		return n
	case float64:
		if n == math.Trunc(n) && n > 0 && n < math.MaxInt64 {
			return int64(n)
		}
	}

	return 0
}
