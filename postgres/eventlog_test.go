package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/internal/sqlstore/sqlstoretest"
	"github.com/stockbus/stockbus/postgres"
	"github.com/stockbus/stockbus/service"
)

func TestEventLog(t *testing.T) {
	sqlstoretest.TestEventLog(t, sqlstoretest.Harness{
		Open: func(t *testing.T) sqlstoretest.Store { return open(t) },
		SetAfterStatement: func(s sqlstoretest.Store, f func(context.Context, int)) {
			postgres.SetAfterStatement(s.(*postgres.Store), f)
		},
	})
}

// Two stores on one database write one log, and each reads all of it.
func TestEventLogIsShared(t *testing.T) {
	a := open(t)
	b := sameDatabase(t, a)
	addBatch(t, a, "LAMP", "b1", 10)
	for i, s := range []*postgres.Store{a, b, a} {
		_, err := service.Allocate(ctx, service.Bootstrap(s, fakes.NewMailer()), fmt.Sprintf("o%d", i), "LAMP", 1)
		require.NoError(t, err)
	}
	for name, s := range map[string]*postgres.Store{"a": a, "b": b} {
		log, err := s.EventLog(ctx)
		require.NoError(t, err)
		assert.Len(t, log, 3, "events store %s reads", name)
	}
}
