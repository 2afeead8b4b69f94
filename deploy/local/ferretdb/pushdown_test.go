package handler

// The differential test of index-pushdown.patch (ours; `make ferretdb-test` copies it into the vendored
// FerretDB's internal/handler and runs it). Random documents of awkward values go into a collection with
// the project's index shapes; random finds run through the handler's own find pipeline
// (makeFindQueryParams, the backend's Query, makeFindIter) with pushdown on and with
// --test-disable-pushdown, which hands the backend no filter and no sort, and must return the same
// documents in the same order (documents equal on every sort key are compared as sets).

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/internal/backends"
	"github.com/FerretDB/FerretDB/internal/backends/sqlite"
	"github.com/FerretDB/FerretDB/internal/handler/common"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/iterator"
	"github.com/FerretDB/FerretDB/internal/util/must"
	"github.com/FerretDB/FerretDB/internal/util/state"
)

// awkward values: numbers whose JSON text sorts differently from their value, integers at the edge
// of float64 precision, strings JSON escapes, dates around 0, and every scalar type typed keys order.
var awkward = []any{
	int32(0), 0.0, math.Copysign(0, -1), int64(1<<53 - 1), int64(1 << 53), int64(1<<53 + 1), float64(1 << 53),
	1e21, -1e21, int32(42), int64(42), 42.0, int32(-5), 0.5, -0.5, int64(math.MaxInt64), int64(math.MinInt64),
	"", "a", "ab", "ab c", `a"b`, `a\b`, "x\u2028y", "nul\x00", "nul", "é", "e\u0301", "Z",
	"0123456789abcdef01234567", "ffffffffffffffffffffffff",
	time.UnixMilli(0).UTC(), time.UnixMilli(-1).UTC(), time.UnixMilli(1).UTC(), time.UnixMilli(1700000000000).UTC(),
	types.ObjectID{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, types.ObjectID{0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1},
	true, false, types.Null,
}

// fields of the documents; "d" is in no index.
var diffFields = []string{"a", "b", "c", "customer.id", "d", "_id"}

type diffGen struct {
	r      *rand.Rand
	arrays float64 // chance that a value is an array
}

// uValue is document i's unique value: an awkward string made unique.
func uValue(i int) string {
	return fmt.Sprintf("%s%d", awkward[17+i%14].(string), i)
}

func (g *diffGen) scalar() any { return awkward[g.r.Intn(len(awkward))] }

func (g *diffGen) value() any {
	if g.r.Float64() < g.arrays {
		return must.NotFail(types.NewArray(g.scalar(), g.scalar()))
	}

	return g.scalar()
}

func (g *diffGen) doc(i int) *types.Document {
	doc := must.NotFail(types.NewDocument("_id", fmt.Sprintf("d%04d", i)))

	for _, f := range []string{"a", "b", "c", "d"} {
		if g.r.Intn(10) > 0 { // else missing
			doc.Set(f, g.value())
		}
	}

	// u has a unique index (text keys): an equality on it is pushed as FerretDB's _id lookup is
	if g.r.Float64() < g.arrays {
		doc.Set("u", must.NotFail(types.NewArray(uValue(i), "shared")))
	} else {
		doc.Set("u", uValue(i))
	}

	switch n := g.r.Intn(20); {
	case n == 0: // missing
	case n == 1: // a scalar parent: customer.id is missing
		doc.Set("customer", g.scalar())
	case n == 2 && g.arrays > 0: // an array parent: MongoDB matches its elements' id
		doc.Set("customer", must.NotFail(types.NewArray(must.NotFail(types.NewDocument("id", g.scalar())))))
	default:
		customer := must.NotFail(types.NewDocument("name", "x"))
		if g.r.Intn(10) > 0 {
			customer.Set("id", g.value())
		}

		doc.Set("customer", customer)
	}

	return doc
}

// sameType is 1-3 values of one type (which can be pushed as one $in), or of any types.
func (g *diffGen) values() *types.Array {
	arr := types.MakeArray(3)
	first := g.scalar()
	arr.Append(first)

	for n := g.r.Intn(3); n > 0; n-- {
		v := g.scalar()
		if g.r.Intn(3) > 0 {
			for i := 0; i < 20 && fmt.Sprintf("%T", v) != fmt.Sprintf("%T", first); i++ {
				v = g.scalar()
			}
		}

		arr.Append(v)
	}

	return arr
}

// condition is one field's filter value: pushable ones mostly, and some the handler alone can do.
func (g *diffGen) condition() any {
	switch g.r.Intn(10) {
	case 0, 1, 2:
		return g.scalar()
	case 3:
		return must.NotFail(types.NewDocument("$eq", g.scalar()))
	case 4, 5:
		return must.NotFail(types.NewDocument("$in", g.values()))
	case 6, 7:
		ops := []string{"$gt", "$gte", "$lt", "$lte"}
		d := must.NotFail(types.NewDocument(ops[g.r.Intn(2)], g.scalar()))

		if g.r.Intn(2) == 0 {
			d.Set(ops[2+g.r.Intn(2)], g.scalar())
		}

		return d
	case 8:
		switch g.r.Intn(3) {
		case 0:
			return must.NotFail(types.NewDocument("$ne", g.scalar()))
		case 1:
			return must.NotFail(types.NewDocument("$exists", g.r.Intn(2) == 0))
		default:
			return must.NotFail(types.NewDocument("$gte", g.scalar(), "$nin", g.values()))
		}
	default:
		return must.NotFail(types.NewArray(g.scalar()))
	}
}

func (g *diffGen) filter() *types.Document {
	filter := must.NotFail(types.NewDocument())
	var and []any

	for n := g.r.Intn(4); n > 0; n-- {
		f := diffFields[g.r.Intn(len(diffFields))]
		if f == "_id" {
			// a range (an _id equality takes FerretDB's own _id path)
			filter.Set(f, must.NotFail(types.NewDocument("$gte", fmt.Sprintf("d%04d", g.r.Intn(400)))))
			continue
		}

		if filter.Has(f) || g.r.Intn(5) == 0 {
			and = append(and, must.NotFail(types.NewDocument(f, g.condition())))
			continue
		}

		filter.Set(f, g.condition())
	}

	if len(and) > 0 {
		filter.Set("$and", must.NotFail(types.NewArray(and...)))
	}

	switch g.r.Intn(10) {
	case 2:
		filter.Set("u", uValue(g.r.Intn(400)))
	case 3:
		filter.Set("u", must.NotFail(types.NewDocument("$eq", "shared")))
	case 0:
		filter.Set("$or", must.NotFail(types.NewArray(
			must.NotFail(types.NewDocument("a", g.scalar())), must.NotFail(types.NewDocument("b", g.scalar())),
		)))
	case 1: // the project's keyset: a range plus a $nor only the handler evaluates
		v := g.scalar()
		filter.Set("c", must.NotFail(types.NewDocument("$lte", v)))
		filter.Set("$nor", must.NotFail(types.NewArray(must.NotFail(types.NewDocument(
			"c", v, "_id", must.NotFail(types.NewDocument("$gte", fmt.Sprintf("d%04d", g.r.Intn(400)))),
		)))))
	}

	return filter
}

func (g *diffGen) sort() *types.Document {
	sort := must.NotFail(types.NewDocument())

	for n := g.r.Intn(4); n > 0; n-- {
		f := diffFields[g.r.Intn(len(diffFields))]
		if !sort.Has(f) {
			sort.Set(f, int32(1-2*g.r.Intn(2)))
		}
	}

	return sort
}

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
					run = append(run, ids(all[i:i+1])[0])
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

func TestIndexPushdownDifferential(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	sp := must.NotFail(state.NewProvider(filepath.Join(dir, "state.json")))
	l := slog.New(slog.NewTextHandler(io.Discard, nil))

	b, err := sqlite.NewBackend(&sqlite.NewBackendParams{URI: "file:" + dir + "/", L: l, P: sp, BatchSize: 100})
	must.NoError(err)

	t.Cleanup(b.Close)

	on := &Handler{NewOpts: &NewOpts{L: l, EnableNestedPushdown: true}}
	off := &Handler{NewOpts: &NewOpts{L: l, DisablePushdown: true}}

	db := must.NotFail(b.Database("diff"))

	// the project's index shapes: a list (equalities, then the sort, then _id), a two-key one, one on a
	// dotted field and one on a single time field (the outbox poll)
	indexes := []backends.IndexInfo{
		{Name: "list", Key: []backends.IndexKeyPair{{Field: "a"}, {Field: "b"}, {Field: "c", Descending: true}, {Field: "_id", Descending: true}}},
		{Name: "ac", Key: []backends.IndexKeyPair{{Field: "a"}, {Field: "c", Descending: true}}},
		{Name: "customer", Key: []backends.IndexKeyPair{{Field: "customer.id"}}},
		{Name: "c", Key: []backends.IndexKeyPair{{Field: "c"}}},
		{Name: "u", Key: []backends.IndexKeyPair{{Field: "u"}}, Unique: true},
	}

	// datasets: no arrays (pushdown everywhere), about 5% arrays, and arrays in one field only
	datasets := []struct {
		name      string
		arrays    float64
		arrayOnly string
	}{{"scalars", 0, ""}, {"arrays", 0.05, ""}, {"arrays-in-b", 0.2, "b"}}

	for di, ds := range datasets {
		coll := must.NotFail(db.Collection(ds.name))
		_, err = coll.CreateIndexes(ctx, &backends.CreateIndexesParams{Indexes: indexes})
		must.NoError(err)

		seed := int64(20261201 + di)
		g := &diffGen{r: rand.New(rand.NewSource(seed)), arrays: ds.arrays}
		noArrays := &diffGen{r: g.r}

		docs := make([]*types.Document, 300)
		for i := range docs {
			docs[i] = g.doc(i)

			if ds.arrayOnly != "" {
				for _, f := range []string{"a", "c", "d"} {
					if docs[i].Has(f) {
						docs[i].Set(f, noArrays.scalar())
					}
				}
			}
		}

		_, err = coll.InsertAll(ctx, &backends.InsertAllParams{Docs: docs})
		must.NoError(err)

		var sorted, exact, limited, counted int

		const queries = 250

		for q := 0; q < queries; q++ {
			if q == queries*2/3 {
				// arrays arrive after the queries found the fields clean (and stopped probing them)
				more := &diffGen{r: g.r, arrays: 0.5}
				extra := make([]*types.Document, 20)

				for i := range extra {
					extra[i] = more.doc(1000 + i)
				}

				_, err = coll.InsertAll(ctx, &backends.InsertAllParams{Docs: extra})
				must.NoError(err)
			}

			p := common.FindParams{Filter: g.filter(), Sort: g.sort()}
			if g.r.Intn(3) == 0 {
				p.Skip = int64(g.r.Intn(5))
			}

			if g.r.Intn(5) < 3 {
				p.Limit = int64(1 + g.r.Intn(10))
			}

			// the reference: everything, sorted, then skip and limit
			all, _ := diffFind(t, off, coll, common.FindParams{Filter: p.Filter, Sort: p.Sort})
			want := all[min(int(p.Skip), len(all)):]
			if p.Limit != 0 {
				want = want[:min(int(p.Limit), len(want))]
			}

			got, res := diffFind(t, on, coll, p)
			p.Sort = must.NotFail(common.ValidateSortDocument(p.Sort)) // int64 directions, as sorted

			cutEnd := p.Limit != 0 && int64(len(got)) == p.Limit
			if msg := compare(got, want, all, p.Sort, p.Skip > 0, cutEnd); msg != "" {
				t.Fatalf("%s (seed %d) query %d: filter %s sort %s skip %d limit %d: %s",
					ds.name, seed, q, types.FormatAnyValue(p.Filter), types.FormatAnyValue(p.Sort), p.Skip, p.Limit, msg)
			}

			// a count the backend answers (count_documents' pipeline, count_pushdown.go)
			cres, err := coll.Query(ctx, &backends.QueryParams{Filter: p.Filter, CountOnly: true})
			must.NoError(err)
			cres.Iter.Close()

			if cres.Counted {
				counted++

				if cres.Count != int64(len(all)) {
					t.Fatalf("%s (seed %d) query %d: filter %s counted %d, want %d",
						ds.name, seed, q, types.FormatAnyValue(p.Filter), cres.Count, len(all))
				}
			}

			if res.SortedKeys > 0 {
				sorted++
			}

			if res.FilterExact && p.Filter.Len() > 0 {
				exact++
				if p.Limit > 0 && p.Sort.Len() == res.SortedKeys {
					limited++
				}
			}
		}

		t.Logf("%s: of %d finds, %d had their sort (a part of it) and %d their whole filter pushed down (%d with LIMIT); %d counted in SQL",
			ds.name, queries, sorted, exact, limited, counted)

		// the test is worth something only if pushdown happened often
		if sorted < queries/20 || exact < queries/50 || counted < queries/50 {
			t.Fatalf("%s: too little pushdown (%d sorted, %d exact, %d counted)", ds.name, sorted, exact, counted)
		}
	}

}

// An index a build before index-pushdown.patch made (text keys, no key version) is rebuilt with typed
// keys when the server starts, so that existing databases get the pushdown too.
func TestIndexPushdownRebuildsOldIndexes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l := slog.New(slog.NewTextHandler(io.Discard, nil))

	open := func() backends.Backend {
		sp := must.NotFail(state.NewProvider(filepath.Join(dir, "state.json")))
		return must.NotFail(sqlite.NewBackend(&sqlite.NewBackendParams{URI: "file:" + dir + "/", L: l, P: sp, BatchSize: 100}))
	}

	b := open()
	coll := must.NotFail(must.NotFail(b.Database("old")).Collection("c"))
	_, err := coll.CreateIndexes(ctx, &backends.CreateIndexesParams{Indexes: []backends.IndexInfo{
		{Name: "by_a", Key: []backends.IndexKeyPair{{Field: "a"}}},
	}})
	must.NoError(err)

	var docs []*types.Document
	for i, a := range []any{int32(42), 1e21, int32(-5), math.Copysign(0, -1), "x"} {
		docs = append(docs, must.NotFail(types.NewDocument("_id", fmt.Sprintf("d%d", i), "a", a)))
	}

	_, err = coll.InsertAll(ctx, &backends.InsertAllParams{Docs: docs})
	must.NoError(err)
	b.Close()

	// what the build before made: the JSON text of the field, and settings without a key version
	db := must.NotFail(sql.Open("sqlite", "file:"+filepath.Join(dir, "old.sqlite")))
	var table, settings string
	must.NoError(db.QueryRow(`SELECT table_name, settings FROM _ferretdb_collections WHERE name = 'c'`).Scan(&table, &settings))
	must.NotFail(db.Exec(fmt.Sprintf(`DROP INDEX %q`, table+"_by_a")))
	must.NotFail(db.Exec(fmt.Sprintf(`CREATE INDEX %q ON %q (_ferretdb_sjson->"a")`, table+"_by_a", table)))
	must.NotFail(db.Exec(`UPDATE _ferretdb_collections SET settings = ? WHERE name = 'c'`,
		strings.ReplaceAll(settings, `,"keyVersion":1`, "")))
	must.NoError(db.Close())

	b = open()
	t.Cleanup(b.Close)

	coll = must.NotFail(must.NotFail(b.Database("old")).Collection("c"))
	on := &Handler{NewOpts: &NewOpts{L: l, EnableNestedPushdown: true}}
	got, res := diffFind(t, on, coll, common.FindParams{
		Filter: must.NotFail(types.NewDocument()), Sort: must.NotFail(types.NewDocument("a", int32(1))),
	})

	if res.SortedKeys != 1 {
		t.Fatalf("the sort was not pushed down: the index was not rebuilt")
	}

	want := []string{"d2", "d3", "d0", "d1", "d4"} // -5, -0, 42, 1e21, "x": MongoDB's order
	if !slices.Equal(ids(got), want) {
		t.Fatalf("got %v, want %v", ids(got), want)
	}
}
