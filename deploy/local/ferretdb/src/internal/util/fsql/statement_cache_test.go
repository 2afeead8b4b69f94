package fsql

// The test of statement-cache.patch (ours; test.sh runs it in the patched, vendored FerretDB): the
// same statements through kept statements and straight through database/sql (the unpatched path) give
// the same rows and changes, inside and outside transactions, across schema changes; the cache keeps
// at most its bound.

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"
)

func openPair(t *testing.T) (*DB, *sql.DB) {
	t.Helper()
	dir := t.TempDir()
	open := func(name string) *sql.DB {
		db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, name)+"?_pragma=journal_mode(wal)")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		return db
	}
	kept := WrapDB(open("kept.db"), "kept", slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() { _ = kept.Close() })
	return kept, open("plain.db")
}

func rowsOf(t *testing.T, rows interface {
	Next() bool
	Scan(...any) error
	Err() error
	Close() error
}) []string {
	t.Helper()
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id int64
		var doc string
		if err := rows.Scan(&id, &doc); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%d=%s", id, doc))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestStatementCache(t *testing.T) {
	ctx := context.Background()
	kept, plain := openPair(t)

	const (
		create = `CREATE TABLE docs (id INTEGER PRIMARY KEY, doc TEXT)`
		insert = `INSERT INTO docs (id, doc) VALUES (?, ?)`
		update = `UPDATE docs SET doc = ? WHERE id = ?`
		remove = `DELETE FROM docs WHERE id = ?`
		query  = `SELECT id, doc FROM docs WHERE json_extract(doc, '$.n') >= ? ORDER BY id`
	)

	exec := func(q string, args ...any) {
		t.Helper()
		a, errA := kept.ExecContext(ctx, q, args...)
		b, errB := plain.ExecContext(ctx, q, args...)
		if (errA == nil) != (errB == nil) {
			t.Fatalf("%s: kept %v, plain %v", q, errA, errB)
		}
		if errA != nil {
			return
		}
		na, _ := a.RowsAffected()
		nb, _ := b.RowsAffected()
		if na != nb {
			t.Fatalf("%s: kept changed %d rows, plain %d", q, na, nb)
		}
	}
	same := func(step string) {
		t.Helper()
		a, err := kept.QueryContext(ctx, query, 3)
		if err != nil {
			t.Fatal(err)
		}
		b, err := plain.QueryContext(ctx, query, 3)
		if err != nil {
			t.Fatal(err)
		}
		got, want := rowsOf(t, a), rowsOf(t, b)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: kept %v, plain %v", step, got, want)
		}
	}

	exec(create)
	for i := range 10 {
		exec(insert, i, fmt.Sprintf(`{"n": %d}`, i))
	}
	same("after inserts")
	exec(update, `{"n": 100}`, 1)
	exec(remove, 5)
	same("after an update and a delete")

	// A kept UPDATE and SELECT after the schema changed: an index on the expression, then a new table.
	exec(`CREATE INDEX by_n ON docs (json_extract(doc, '$.n'))`)
	exec(update, `{"n": 200}`, 2)
	same("after a new index")
	exec(`DROP TABLE docs`)
	exec(update, `{"n": 1}`, 1) // no such table: both fail
	exec(create)
	exec(insert, 7, `{"n": 7}`)
	same("after the table was made again")

	// Inside transactions, a kept statement run twice in one, and a rollback.
	for _, commit := range []bool{true, false} {
		err := kept.InTransaction(ctx, func(tx *Tx) error {
			for _, id := range []int{20, 21} {
				if _, err := tx.ExecContext(ctx, insert, id, `{"n": 50}`); err != nil {
					return err
				}
			}
			rows, err := tx.QueryContext(ctx, query, 3)
			if err != nil {
				return err
			}
			if got := rowsOf(t, rows); len(got) != 3 {
				return fmt.Errorf("inside the transaction: %v", got)
			}
			if !commit {
				return fmt.Errorf("roll back")
			}
			return nil
		})
		if commit != (err == nil) {
			t.Fatal(err)
		}
		if commit {
			for _, id := range []int{20, 21} {
				if _, err := plain.ExecContext(ctx, insert, id, `{"n": 50}`); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	same("after a committed and a rolled back transaction")

	if n := kept.stmts.len(); n != 4 { // insert, update, delete, query: no DDL
		t.Fatalf("%d statements kept, want 4", n)
	}
	for i := range statementCacheSize + 10 {
		rows, err := kept.QueryContext(ctx, fmt.Sprintf(`SELECT id, doc FROM docs WHERE id = %d`, i))
		if err != nil {
			t.Fatal(err)
		}
		rowsOf(t, rows)
	}
	if n := kept.stmts.len(); n != statementCacheSize {
		t.Fatalf("%d statements kept, want the bound %d", n, statementCacheSize)
	}
	same("after the oldest were closed") // the query was evicted: prepared again
}
