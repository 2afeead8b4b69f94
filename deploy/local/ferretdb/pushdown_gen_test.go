package handler

// The random documents and finds of the differential test (pushdown_test.go): values whose orders are
// easy to get wrong, documents of the project's fields, and filters and sorts of them.

import (
	"fmt"
	"math"
	"math/rand"
	"time"

	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/must"
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
