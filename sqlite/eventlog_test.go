package sqlite_test

import (
	"context"
	"testing"

	"github.com/stockbus/stockbus/internal/sqlstore/sqlstoretest"
	"github.com/stockbus/stockbus/sqlite"
)

func TestEventLog(t *testing.T) {
	sqlstoretest.TestEventLog(t, sqlstoretest.Harness{
		Open: func(t *testing.T) sqlstoretest.Store { return open(t) },
		SetAfterStatement: func(s sqlstoretest.Store, f func(context.Context, int)) {
			sqlite.SetAfterStatement(s.(*sqlite.Store), f)
		},
	})
}
