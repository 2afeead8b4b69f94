package sqlite

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/FerretDB/FerretDB/internal/backends/sqlite/metadata"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/fsql"
)

// index-pushdown.patch: the query of a find, count or explain on the typed index keys, from the
// conditions of pushdown_filter.go, with the probes that turn a field's pushdown off where an array
// or a value of another rank would break MongoDB's order.

// Typed keys order documents as MongoDB only where a field holds no array (MongoDB matches and sorts
// by its elements) and no object, binary, timestamp or regex. Before a field is pushed, an EXISTS
// probe looks for such a value among the documents the conditions kept before it select (an index
// seek); if there is one, the field is left to the handler. Probing in order with the conditions of
// the fields kept so far is enough: a matching document's first offending kept field would have
// been found by that field's probe.
func typedQuery(ctx context.Context, db *fsql.DB, meta *metadata.Collection, comment string,
	filter, sortDoc *types.Document, limit int64, countOnly bool,
) (*sqlQuery, error) {
	typed := map[string]int{}         // field -> its first position in a typed index
	typedIndex := map[string]string{} // field -> that index

	for _, index := range meta.Settings.Indexes {
		if !metadata.Typed(index) || index.KeyVersion != metadata.TypedKeyVersion {
			continue
		}

		for pos, key := range index.Key {
			if p, ok := typed[key.Field]; !ok || pos < p {
				typed[key.Field], typedIndex[key.Field] = pos, index.Name
			}
		}
	}

	text := map[string]bool{} // leading fields of unique indexes
	for _, index := range meta.Settings.Indexes {
		if index.Unique && len(index.Key) > 0 && metadata.TypedField(index.Key[0].Field) {
			text[index.Key[0].Field] = true
		}
	}

	conds := map[string][]typedCond{}
	exact := translate(filter, typed, text, conds)

	fields := make([]string, 0, len(conds))
	for f := range conds {
		fields = append(fields, f)
	}

	sort.Slice(fields, func(i, j int) bool {
		if typed[fields[i]] != typed[fields[j]] {
			return typed[fields[i]] < typed[fields[j]]
		}

		return fields[i] < fields[j]
	})

	var kept []typedCond
	fixed, rankFixed := map[string]bool{}, map[string]bool{}
	inField, inIdx := "", -1

	cf := cleanOf(db, meta)

	probe := func(field string) (bool, error) {
		if _, ok := typed[field]; ok {
			clean, err := cf.isClean(ctx, db, meta.TableName, typedIndex[field], field)
			if clean || err != nil {
				return false, err
			}
		}

		where, args := joinConds(kept)
		if where != "" {
			where += " AND "
		}

		bad := metadata.RankExpr(field) + " IN " + metadata.BadRanks
		if _, ok := typed[field]; !ok {
			// the JSON text of an array starts with "[": a range of the unique index
			bad = fmt.Sprintf(`%[1]s >= '[' AND %[1]s < '\'`, metadata.TextExpr(field))
		}

		return exists(ctx, db, meta.TableName, where+bad, args)
	}

	for _, f := range fields {
		if len(conds[f]) == 0 {
			continue
		}

		bad, err := probe(f)
		if err != nil {
			return nil, err
		}

		if bad {
			exact = false
			continue
		}

		_, isTyped := typed[f]

		for _, c := range conds[f] {
			fixed[f] = fixed[f] || c.fixed
			rankFixed[f] = isTyped // every typed condition fixes the rank
			if c.in != nil && inField == "" {
				inField, inIdx = f, len(kept)
			}

			kept = append(kept, c)
		}
	}

	var orderBy []string
	sortedKeys := 0
	sortFields := map[string]bool{}

	if sortDoc != nil {
		values := sortDoc.Values()

		for i, f := range sortDoc.Keys() {
			if _, ok := typed[f]; !ok {
				break
			}

			sortFields[f] = true

			if fixed[f] {
				sortedKeys++ // the same value in every row; in ORDER BY it would cost a temporary B-tree
				continue
			}

			bad, err := probe(f)
			if err != nil {
				return nil, err
			}

			if bad {
				break
			}

			dir := ""
			if v, _ := values[i].(int64); v == -1 {
				dir = " DESC"
			}

			// a rank fixed by a condition is left out too (SQLite would sort in a temporary B-tree)
			if !rankFixed[f] {
				orderBy = append(orderBy, metadata.RankExpr(f)+dir)
			}

			orderBy = append(orderBy, metadata.ValueExpr(f)+dir)
			sortedKeys++
		}
	}

	res := &sqlQuery{pushed: len(kept) > 0, sortedKeys: sortedKeys, exact: exact}

	if countOnly {
		if !exact {
			return nil, nil // documents are needed
		}

		where, args := joinConds(kept)
		if where == "" {
			where = "1"
		}

		res.q, res.args, res.count = fmt.Sprintf("SELECT count(*) FROM %q WHERE %s", meta.TableName, where), args, true

		if limit > 0 { // a count that stops there (count_documents' limit): SQLite reads no further
			res.q = fmt.Sprintf("SELECT count(*) FROM (SELECT 1 FROM %q WHERE %s LIMIT ?)", meta.TableName, where)
			res.args = append(res.args, limit)
		}

		return res, nil
	}
	applyLimit := limit != 0 && exact && sortedKeys == sortDoc.Len()

	// A $in on a field the sort does not name, under an ORDER BY: SQLite would read every value's rows
	// and sort them in a temporary B-tree; one part per value, each read in index order, merged, is not.
	if inField != "" && len(orderBy) > 0 && !sortFields[inField] {
		var parts []string

		keys := make([]string, len(orderBy))
		for i, o := range orderBy {
			keys[i] = fmt.Sprintf("%s AS _k%d", strings.TrimSuffix(o, " DESC"), i)
		}

		in := kept[inIdx]

		for _, v := range in.in {
			conds := slices.Clone(kept)
			conds[inIdx] = typedCond{
				sql:  fmt.Sprintf("%s = %d AND %s = ?", metadata.RankExpr(inField), in.inRank, metadata.ValueExpr(inField)),
				args: []any{v},
			}

			where, args := joinConds(conds)
			parts = append(parts, fmt.Sprintf("SELECT %s, %s FROM %q WHERE %s",
				metadata.DefaultColumn, strings.Join(keys, ", "), meta.TableName, where))
			res.args = append(res.args, args...)
		}

		order := make([]string, len(orderBy))
		for i, o := range orderBy {
			order[i] = fmt.Sprintf("_k%d", i)
			if strings.HasSuffix(o, " DESC") {
				order[i] += " DESC"
			}
		}

		res.q = strings.Join(parts, " UNION ALL ") + " ORDER BY " + strings.Join(order, ", ")
	} else {
		res.q = prepareSelectClause(meta.TableName, comment, false, false)

		if where, args := joinConds(kept); where != "" {
			res.q += " WHERE " + where
			res.args = args
		}

		if len(orderBy) > 0 {
			res.q += " ORDER BY " + strings.Join(orderBy, ", ")
		}
	}

	if applyLimit {
		res.q += " LIMIT ?"
		res.args = append(res.args, limit)
		res.limited = true
	}

	res.sorted = len(orderBy) > 0

	return res, nil
}

// buildQuery is the SELECT of Query and Explain: FerretDB's own for capped collections, $natural
// sorts, record ids and filters on _id (idWhereClause), typedQuery for the rest.
func buildQuery(ctx context.Context, db *fsql.DB, meta *metadata.Collection, comment string, onlyRecordIDs bool,
	filter, naturalSort, typedSort *types.Document, limit, typedLimit int64, countOnly bool,
) (*sqlQuery, error) {
	whereClause, args := idWhereClause(filter)

	if countOnly && (meta.Capped() || onlyRecordIDs || naturalSort.Len() != 0 || whereClause != "") {
		countOnly = false // documents, then
	}

	if meta.Capped() || onlyRecordIDs || naturalSort.Len() != 0 || whereClause != "" {
		q := prepareSelectClause(meta.TableName, comment, meta.Capped(), onlyRecordIDs) + whereClause
		orderBy := prepareOrderByClause(naturalSort)
		q += orderBy

		if limit != 0 {
			q += ` LIMIT ?`
			args = append(args, limit)
		}

		return &sqlQuery{q: q, args: args, pushed: whereClause != "", limited: limit != 0, sorted: orderBy != ""}, nil
	}

	if limit != 0 { // the handler sets it only for a query without filter, sort or skip
		typedLimit = limit
	}

	if countOnly {
		sq, err := typedQuery(ctx, db, meta, comment, filter, nil, typedLimit, true)
		if sq != nil || err != nil {
			return sq, err
		}
	}

	return typedQuery(ctx, db, meta, comment, filter, typedSort, typedLimit, false)
}
