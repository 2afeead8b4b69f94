package fsql

// Prepared statements kept by their SQL text (ours: statement-cache.patch). Unpatched, every query and
// exec prepared its SQL anew and finalized it after one use; for an UPDATE of a collection with typed
// indexes, compiling the statement (each index's key expressions included) cost as much CPU as running
// it. A statement prepared once through database/sql is prepared on each connection the first time it
// runs there, then only reset and bound again; the driver (modernc.org/sqlite v1.62+) keeps the
// compiled statement with it. SQLite recompiles a kept statement by itself when the schema changes
// (an index created, a table dropped and made again), so a kept statement never runs a stale plan.

import (
	"container/list"
	"context"
	"database/sql"
	"strings"
	"sync"
)

// statementCacheSize bounds the statements kept per database: the pushdown's queries differ in text by
// the shape of their filter (the values are parameters), so the hot ones are few; the least recently
// used is closed first (database/sql finalizes it once no query or transaction still uses it).
const statementCacheSize = 256

type cachedStatement struct {
	query string
	stmt  *sql.Stmt
}

// statementCache is safe for concurrent use.
type statementCache struct {
	db      *sql.DB
	size    int
	mu      sync.Mutex
	recent  *list.List // of *cachedStatement, the most recently used first
	byQuery map[string]*list.Element
}

func newStatementCache(db *sql.DB, size int) *statementCache {
	return &statementCache{db: db, size: size, recent: list.New(), byQuery: map[string]*list.Element{}}
}

// cacheable reports whether a statement is worth keeping: one query or change of rows, not DDL, a
// PRAGMA or a script of several statements (those run rarely, and the driver does not keep a script).
func cacheable(query string) bool {
	q := strings.TrimSpace(query)
	if len(q) < 6 || strings.Contains(strings.TrimRight(q, "; \n\t"), ";") {
		return false
	}
	switch strings.ToUpper(q[:6]) {
	case "SELECT", "INSERT", "UPDATE", "DELETE":
		return true
	}
	return false
}

// get returns the kept statement of query, preparing it the first time; nil (and no error) for a query
// that is not kept, which the caller then runs as before.
func (c *statementCache) get(ctx context.Context, query string) (*sql.Stmt, error) {
	if c == nil || !cacheable(query) {
		return nil, nil
	}
	c.mu.Lock()
	if e, ok := c.byQuery[query]; ok {
		c.recent.MoveToFront(e)
		c.mu.Unlock()
		return e.Value.(*cachedStatement).stmt, nil
	}
	c.mu.Unlock()

	stmt, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err // e.g. no such table: the error running it unprepared would have given
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byQuery[query]; ok { // another caller prepared it meanwhile
		_ = stmt.Close()
		c.recent.MoveToFront(e)
		return e.Value.(*cachedStatement).stmt, nil
	}
	c.byQuery[query] = c.recent.PushFront(&cachedStatement{query: query, stmt: stmt})
	for c.recent.Len() > c.size {
		oldest := c.recent.Remove(c.recent.Back()).(*cachedStatement)
		delete(c.byQuery, oldest.query)
		_ = oldest.stmt.Close()
	}
	return stmt, nil
}

// len is how many statements are kept.
func (c *statementCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.recent.Len()
}

// close closes every kept statement (before the database is closed).
func (c *statementCache) close() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for e := c.recent.Front(); e != nil; e = e.Next() {
		_ = e.Value.(*cachedStatement).stmt.Close()
	}
	c.recent.Init()
	c.byQuery = map[string]*list.Element{}
}
