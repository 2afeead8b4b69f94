package metadata

import (
	"fmt"
	"regexp"
	"strings"
)

// Typed index keys (index-pushdown.patch). An index on the JSON text of a field orders values as text,
// not as MongoDB does (-0 before -5, 1e+21 before 42, dates among numbers), so each key of a non-unique
// index is two expressions instead: the BSON type rank of the value (from the sjson "$s" schema; null
// and missing share one) and the typed value (->>). Ordered by (rank, value), null/missing, numbers,
// strings (bytes), ObjectIDs (hex), bools and dates (milliseconds) sort as in MongoDB. The query
// translator (../pushdown.go) writes its conditions on exactly these expressions, because SQLite
// matches an index expression by its text. Unique indexes keep FerretDB's text keys (duplicate-key
// behaviour unchanged).

// TypedKeyVersion is stored with each index; an index with another version is rebuilt once at start.
const TypedKeyVersion = 1

// Ranks of the types whose (rank, value) order matches MongoDB's; other ranks (objects, arrays,
// binary, timestamps, regexes) break it, and the translator probes for them (BadRanks).
const (
	RankNull     = 1
	RankNumber   = 2
	RankString   = 3
	RankObjectID = 7
	RankBool     = 8
	RankDate     = 9
)

// BadRanks lists the ranks that (rank, value) does not order as MongoDB, as an SQL list.
const BadRanks = "(4, 5, 6, 10, 11)"

var simpleName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// TypedField reports whether a field path can have typed keys: plain names only, so that it can be
// written into a JSON path without escaping, and no numeric part (an array position in MongoDB).
func TypedField(field string) bool {
	for _, p := range strings.Split(field, ".") {
		if !simpleName.MatchString(p) {
			return false
		}
	}

	return true
}

// Typed reports whether the index is built on typed keys.
func Typed(index IndexInfo) bool {
	if index.Unique {
		return false
	}

	for _, k := range index.Key {
		if !TypedField(k.Field) {
			return false
		}
	}

	return true
}

// RankExpr is the SQL expression of the field's type rank. A missing field whose parent (at any
// level) is an array counts as an array: MongoDB would look into its elements.
func RankExpr(field string) string {
	parts := strings.Split(field, ".")
	path := "$"
	types := make([]string, 0, len(parts))

	for i, p := range parts {
		path += `."$s".p."` + p + `"`
		if i < len(parts)-1 {
			types = append(types, fmt.Sprintf(`iif(%s->>'%s.t' = 'array', 'array', NULL)`, DefaultColumn, path))
		}
	}

	t := fmt.Sprintf(`%s->>'%s.t'`, DefaultColumn, path)
	if len(types) > 0 {
		t = "coalesce(" + t + ", " + strings.Join(types, ", ") + ")"
	}

	return "CASE " + t + " WHEN 'double' THEN 2 WHEN 'int' THEN 2 WHEN 'long' THEN 2 WHEN 'string' THEN 3" +
		" WHEN 'object' THEN 4 WHEN 'array' THEN 5 WHEN 'binData' THEN 6 WHEN 'objectId' THEN 7" +
		" WHEN 'bool' THEN 8 WHEN 'date' THEN 9 WHEN 'timestamp' THEN 10 WHEN 'regex' THEN 11 ELSE 1 END"
}

// ValueExpr is the SQL expression of the field's typed value.
func ValueExpr(field string) string {
	return fmt.Sprintf(`%s->>'$."%s"'`, DefaultColumn, strings.Join(strings.Split(field, "."), `"."`))
}

// TextExpr is FerretDB's own index expression of a field: its JSON text (unique indexes keep it).
func TextExpr(field string) string {
	fields := strings.Split(field, ".")
	for j, f := range fields {
		fields[j] = fmt.Sprintf("%q", f)
	}

	return fmt.Sprintf("%s->%s", DefaultColumn, strings.Join(fields, "->"))
}

// createIndexQuery is the CREATE INDEX statement of the index.
func createIndexQuery(table string, index IndexInfo) string {
	q := "CREATE "

	if index.Unique {
		q += "UNIQUE "
	}

	var columns []string

	for _, key := range index.Key {
		desc := ""
		if key.Descending {
			desc = " DESC"
		}

		if Typed(index) {
			columns = append(columns, RankExpr(key.Field)+desc, ValueExpr(key.Field)+desc)
			continue
		}

		columns = append(columns, TextExpr(key.Field)+desc)
	}

	return fmt.Sprintf(q+"INDEX %q ON %q (%s)", table+"_"+index.Name, table, strings.Join(columns, ", "))
}

// keyVersion is the key version the index should have.
func keyVersion(index IndexInfo) int {
	if Typed(index) {
		return TypedKeyVersion
	}

	return 0
}
