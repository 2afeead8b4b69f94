package handler

// How the differential test (pushdown_test.go) runs a find through the handler's pipeline and compares
// the pushdown's page with the reference's.

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/FerretDB/FerretDB/internal/backends"
	"github.com/FerretDB/FerretDB/internal/handler/common"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/iterator"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// diffFind runs a find through the handler's pipeline.
func diffFind(t *testing.T, h *Handler, coll backends.Collection, p common.FindParams) ([]*types.Document, *backends.QueryResult) {
	t.Helper()

	ctx := context.Background()
	qp, err := h.makeFindQueryParams(ctx, &p, &backends.CollectionInfo{})
	must.NoError(err)

	res, err := coll.Query(ctx, qp)
	if err != nil {
		t.Fatalf("query %v: %v", qp, err)
	}

	iter, err := h.makeFindIter(res.Iter, iterator.NewMultiCloser(), &p, res.SortedKeys)
	must.NoError(err)

	docs, err := iterator.ConsumeValues(iter)
	must.NoError(err)

	return docs, res
}

// sortKey is a document's values of the sort fields, missing as null (as the handler sorts).
func sortKey(doc *types.Document, sort *types.Document) []any {
	var key []any

	for _, f := range sort.Keys() {
		v, err := doc.GetByPath(must.NotFail(types.NewPathFromString(f)))
		if err != nil {
			v = types.Null
		}

		key = append(key, v)
	}

	return key
}

func allKeys(docs []*types.Document, sort *types.Document) [][]any {
	res := make([][]any, len(docs))
	for i, d := range docs {
		res[i] = sortKey(d, sort)
	}

	return res
}

// keysEqual compares sort keys as the sort does (an array by its smallest element ascending, by its
// largest descending).
func keysEqual(a, b []any, sort *types.Document) bool {
	for i, v := range sort.Values() {
		order := types.Ascending
		if v.(int64) == -1 {
			order = types.Descending
		}

		if types.CompareOrderForSort(a[i], b[i], order) != types.Equal {
			return false
		}
	}

	return true
}

func ids(docs []*types.Document) []string {
	res := make([]string, len(docs))
	for i, d := range docs {
		res[i] = must.NotFail(d.Get("_id")).(string)
	}

	return res
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)

	return slices.Equal(a, b)
}

// compare checks that got (pushdown) and want (reference) are the same page of the reference's whole
// result all: the same keys at every position; the same documents within each run of equal keys,
// except that a run cut by skip or limit may hold any of that run's documents.
func compare(got, want, all []*types.Document, sort *types.Document, cutStart, cutEnd bool) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d documents, want %d", len(got), len(want))
	}

	if sort.Len() == 0 {
		if !cutStart && !cutEnd {
			if !sameSet(ids(got), ids(want)) {
				return "other documents"
			}

			return ""
		}

		sort = must.NotFail(types.NewDocument()) // one run: any of all
	}

	for i := range got {
		if !keysEqual(sortKey(got[i], sort), sortKey(want[i], sort), sort) {
			return fmt.Sprintf("position %d: %s has keys %v, want %v (%s)", i, ids(got)[i],
				sortKey(got[i], sort), sortKey(want[i], sort), ids(want)[i])
		}
	}

	for start := 0; start < len(got); {
		key := sortKey(got[start], sort)
		end := start
		for end < len(got) && keysEqual(sortKey(got[end], sort), key, sort) {
			end++
		}

		if (start == 0 && cutStart) || (end == len(got) && cutEnd) {
			var run []string
			for i, k := range allKeys(all, sort) {
				if keysEqual(k, key, sort) {
					run = append(run, ids(all[i : i+1])[0])
				}
			}

			for _, id := range ids(got[start:end]) {
				if !slices.Contains(run, id) {
					return fmt.Sprintf("%s at %d is not among the documents of keys %v", id, start, key)
				}
			}
		} else if !sameSet(ids(got[start:end]), ids(want[start:end])) {
			return fmt.Sprintf("positions %d-%d: %v, want %v", start, end, ids(got[start:end]), ids(want[start:end]))
		}

		start = end
	}

	if len(slices.Compact(slices.Sorted(slices.Values(ids(got))))) != len(got) {
		return "a document twice"
	}

	return ""
}
