package sqlite

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/FerretDB/FerretDB/internal/backends/sqlite/metadata"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/fsql"
	"github.com/FerretDB/FerretDB/internal/util/lazyerrors"
)

// index-pushdown.patch: which typed fields of a collection are known to hold no array or other
// order-breaking value in any document, so that queries on them need no probe (pushdown.go). A field
// is checked once (one EXISTS over the collection) and stays clean until a write brings such a value.
// A write that does takes the lock exclusively from marking the field until its commit, and a query
// holds it shared from reading the marks until SQLite has its snapshot (the first step, in
// QueryContext), so a query that skipped a probe cannot see that document.
type cleanFields struct {
	lock sync.RWMutex

	m     sync.Mutex
	clean map[string]bool // field -> clean; absent: not checked yet
}

// cleanKey is a collection: its database's connection pool, its table, and its UUID (new when a
// collection of that name is created again).
type cleanKey struct {
	db          *fsql.DB
	table, uuid string
}

var collectionsClean sync.Map // cleanKey -> *cleanFields

func cleanOf(db *fsql.DB, meta *metadata.Collection) *cleanFields {
	key := cleanKey{db: db, table: meta.TableName, uuid: meta.Settings.UUID}
	v, _ := collectionsClean.LoadOrStore(key, &cleanFields{clean: map[string]bool{}})

	return v.(*cleanFields)
}

// isClean reports whether no document has an order-breaking value at field, checked in index (which
// has the field's rank, so SQLite reads the index alone, not every document's JSON); it is called with
// the shared lock held.
func (cf *cleanFields) isClean(ctx context.Context, db *fsql.DB, table, index, field string) (bool, error) {
	cf.m.Lock()
	clean, known := cf.clean[field]
	cf.m.Unlock()

	if known {
		return clean, nil
	}

	var bad bool

	q := fmt.Sprintf("SELECT EXISTS (SELECT 1 FROM %q INDEXED BY %q WHERE %s IN %s)",
		table, table+"_"+index, metadata.RankExpr(field), metadata.BadRanks)
	if err := db.QueryRowContext(ctx, q).Scan(&bad); err != nil {
		return false, lazyerrors.Error(err)
	}

	cf.m.Lock()
	cf.clean[field] = !bad
	cf.m.Unlock()

	return !bad, nil
}

// write marks the clean fields that docs bring an order-breaking value to and returns the unlock
// function the caller defers: exclusive if it marked any, none otherwise.
func (cf *cleanFields) write(docs []*types.Document) func() {
	cf.m.Lock()

	var dirty []string

	for field, clean := range cf.clean {
		if !clean {
			continue
		}

		for _, doc := range docs {
			if breaksOrder(doc, field) {
				dirty = append(dirty, field)
				break
			}
		}
	}

	cf.m.Unlock()

	if len(dirty) == 0 {
		return func() {}
	}

	cf.lock.Lock()
	cf.m.Lock()

	for _, field := range dirty {
		cf.clean[field] = false
	}

	cf.m.Unlock()

	return cf.lock.Unlock
}

// breaksOrder is metadata.RankExpr's rank of the document's field, in Go: whether it is one of
// metadata.BadRanks.
func breaksOrder(doc *types.Document, field string) bool {
	var v any = doc

	for _, part := range strings.Split(field, ".") {
		switch d := v.(type) {
		case *types.Document:
			var err error
			if v, err = d.Get(part); err != nil {
				return false // missing
			}
		case *types.Array:
			return true // MongoDB would look into its elements
		default:
			return false // a scalar parent: missing
		}
	}

	switch v.(type) {
	case *types.Document, *types.Array, types.Binary, types.Timestamp, types.Regex:
		return true
	}

	return false
}
