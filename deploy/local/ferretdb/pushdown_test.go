package handler

// The differential test of index-pushdown.patch (ours; `make ferretdb-test` copies it into the vendored
// FerretDB's internal/handler and runs it). Random documents of awkward values go into a collection with
// the project's index shapes; random finds run through the handler's own find pipeline
// (makeFindQueryParams, the backend's Query, makeFindIter) with pushdown on and with
// --test-disable-pushdown, which hands the backend no filter and no sort, and must return the same
// documents in the same order (documents equal on every sort key are compared as sets). The documents
// and finds are made in pushdown_gen_test.go; pushdown_compare_test.go runs and compares them.

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

	"github.com/FerretDB/FerretDB/internal/backends"
	"github.com/FerretDB/FerretDB/internal/backends/sqlite"
	"github.com/FerretDB/FerretDB/internal/handler/common"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/must"
	"github.com/FerretDB/FerretDB/internal/util/state"
)

// openSQLite opens the SQLite backend on the databases in dir (the state file beside them).
func openSQLite(dir string, l *slog.Logger) backends.Backend {
	sp := must.NotFail(state.NewProvider(filepath.Join(dir, "state.json")))
	return must.NotFail(sqlite.NewBackend(&sqlite.NewBackendParams{URI: "file:" + dir + "/", L: l, P: sp, BatchSize: 100}))
}

func TestIndexPushdownDifferential(t *testing.T) {
	ctx := context.Background()
	l := slog.New(slog.NewTextHandler(io.Discard, nil))
	b := openSQLite(t.TempDir(), l)
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
		_, err := coll.CreateIndexes(ctx, &backends.CreateIndexesParams{Indexes: indexes})
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

			// a count that stops at a limit (count_documents' limit: a $limit stage before the $group)
			if p.Limit != 0 {
				lres, err := coll.Query(ctx, &backends.QueryParams{Filter: p.Filter, CountOnly: true, TypedLimit: p.Limit})
				must.NoError(err)
				lres.Iter.Close()

				if lres.Counted && lres.Count != min(p.Limit, int64(len(all))) {
					t.Fatalf("%s (seed %d) query %d: filter %s counted %d with limit %d, want %d",
						ds.name, seed, q, types.FormatAnyValue(p.Filter), lres.Count, p.Limit, min(p.Limit, int64(len(all))))
				}

				if lres.Counted != cres.Counted {
					t.Fatalf("%s (seed %d) query %d: counted %v with a limit, %v without", ds.name, seed, q, lres.Counted, cres.Counted)
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

	b := openSQLite(dir, l)
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

	b = openSQLite(dir, l)
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
