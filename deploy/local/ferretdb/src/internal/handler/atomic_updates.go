package handler

import "sync"

// collectionLocks serialises the read-modify-write of update and findAndModify per collection, so that
// concurrent updates of one document (from any number of connections) do not lose each other's changes,
// as MongoDB guarantees. FerretDB v1's SQLite handler queries the document and writes it back in separate
// steps (FerretDB issue #3040); the lock closes that gap within this server process. Callers release it
// with defer, so a panic (recovered per connection) cannot leave it held.
var collectionLocks sync.Map

func lockCollection(db, collection string) func() {
	value, _ := collectionLocks.LoadOrStore(db+"."+collection, new(sync.Mutex))
	mu := value.(*sync.Mutex)
	mu.Lock()

	return mu.Unlock
}
