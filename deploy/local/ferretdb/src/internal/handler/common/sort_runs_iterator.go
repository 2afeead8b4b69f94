package common

import (
	"errors"

	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/iterator"
	"github.com/FerretDB/FerretDB/internal/util/lazyerrors"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// SortRunsIterator sorts documents that the backend returns ordered by the first sorted keys of sort
// (index-pushdown.patch): it reads and sorts one run of documents equal on those keys at a time, instead
// of everything, so that a limit stops the reading early. With none sorted, it is SortIterator.
func SortRunsIterator(iter types.DocumentsIterator, closer *iterator.MultiCloser, sort *types.Document, sorted int) (types.DocumentsIterator, error) { //nolint:lll // for readability
	if sorted == 0 {
		return SortIterator(iter, closer, sort)
	}

	if sorted >= sort.Len() {
		return iter, nil
	}

	var funcs []sortFunc

	for _, key := range sort.Keys()[:sorted] {
		sortType, err := GetSortType(key, must.NotFail(sort.Get(key)))
		if err != nil {
			return nil, err
		}

		path, err := types.NewPathFromString(key)
		if err != nil {
			return nil, err
		}

		funcs = append(funcs, lessFunc(path, sortType))
	}

	res := &sortRunsIterator{iter: iter, sort: sort, prefix: funcs}
	closer.Add(res)

	return res, nil
}

type sortRunsIterator struct {
	iter    types.DocumentsIterator
	sort    *types.Document
	prefix  []sortFunc
	out     []*types.Document
	pending *types.Document
	done    bool
}

func (iter *sortRunsIterator) equal(a, b *types.Document) bool {
	for _, less := range iter.prefix {
		if less(a, b) || less(b, a) {
			return false
		}
	}

	return true
}

// Next implements iterator.Interface.
func (iter *sortRunsIterator) Next() (struct{}, *types.Document, error) {
	var unused struct{}

	if len(iter.out) == 0 {
		var run []*types.Document

		if iter.pending != nil {
			run, iter.pending = []*types.Document{iter.pending}, nil
		}

		for !iter.done {
			_, doc, err := iter.iter.Next()
			if errors.Is(err, iterator.ErrIteratorDone) {
				iter.done = true
				break
			}

			if err != nil {
				return unused, nil, lazyerrors.Error(err)
			}

			if len(run) > 0 && !iter.equal(run[0], doc) {
				iter.pending = doc
				break
			}

			run = append(run, doc)
		}

		if len(run) == 0 {
			return unused, nil, iterator.ErrIteratorDone
		}

		if err := SortDocuments(run, iter.sort); err != nil {
			return unused, nil, lazyerrors.Error(err)
		}

		iter.out = run
	}

	doc := iter.out[0]
	iter.out = iter.out[1:]

	return unused, doc, nil
}

// Close implements iterator.Interface.
func (iter *sortRunsIterator) Close() {
	iter.iter.Close()
}

// check interfaces
var (
	_ types.DocumentsIterator = (*sortRunsIterator)(nil)
)
