package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/internal/fleet"
	"github.com/stockbus/stockbus/nats"
	"github.com/stockbus/stockbus/nats/embedded"
	"github.com/stockbus/stockbus/postgres"
	"github.com/stockbus/stockbus/service"
	"github.com/stockbus/stockbus/smtp"
	"github.com/stockbus/stockbus/smtp/smtptest"
)

// waitBound bounds a wait for a condition that a relay brings about. It bounds a failure (a row
// never sent); nothing is measured by it.
const waitBound = time.Minute

// eventually waits until cond holds, looking every few milliseconds, and fails the test after
// waitBound.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: still not %s", waitBound, what)
		}
		time.Sleep(5 * time.Millisecond) // polling for a state, not timing anything
	}
}

// mailedEvents returns the IDs of the events whose mails the sink took, in order.
func mailedEvents(t *testing.T, sink *smtptest.Server) []string {
	t.Helper()
	var ids []string
	for _, m := range sink.Delivered() {
		id, err := smtp.EventID(m.MessageID, smtp.DefaultDomain)
		require.NoError(t, err, "Message-ID %q", m.MessageID)
		ids = append(ids, id)
	}
	return ids
}

// An adapter that cannot be reached is an error that names its flag, and not a usage error.
func TestRunUnreachableAdapters(t *testing.T) {
	tests := []struct {
		name string
		args []string
		flag string
	}{
		{"store", []string{"-store", "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=1"}, "-store postgres://nobody@127.0.0.1:1/none"},
		{"broker", []string{"-broker", "nats://127.0.0.1:1"}, "-broker nats://127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout bytes.Buffer
			err := run(t.Context(), append(tt.args, "-addr", "127.0.0.1:0"), &stdout, &bytes.Buffer{})
			require.Error(t, err, "run %v", tt.args)
			assert.ErrorContains(t, err, tt.flag)
			assert.False(t, errors.Is(err, errUsage), "an unreachable adapter is not a usage error: %v", err)
			assert.NotContains(t, stdout.String(), "listening")
		})
	}
}

// Under the outbox the answer comes before the mail: the relay in the process sends it from the
// table, and the mail carries the event's ID, which carries the instance's name.
func TestRunOutboxRelaysTheMail(t *testing.T) {
	sink, err := smtptest.Start(smtptest.Config{Dedup: true})
	require.NoError(t, err)
	defer func() { require.NoError(t, sink.Close()) }()
	s := start(t, "-name", "east", "-strategy", "outbox", "-relays", "2", "-relay-poll", "1h", "-mailer", "smtp://"+sink.Addr())
	require.NoError(t, s.client.AddBatch(t.Context(), "batch1", "POPULAR-CURTAINS", 9, noETA))
	_, err = s.client.Allocate(t.Context(), "o1", "POPULAR-CURTAINS", 10)
	require.ErrorIs(t, err, domain.ErrOutOfStock)
	// The poll is an hour: only the commit's nudge can have woken a relay in time.
	eventually(t, "mailed", func() bool { return len(sink.Delivered()) == 1 })
	ids := mailedEvents(t, sink)
	assert.True(t, strings.HasPrefix(ids[0], "ev-east-"), "event ID %q: want the instance's name in it", ids[0])
	// The sink holds the mail once it has read it, before its reply reaches the relay: stop only
	// once the relay's handler call has returned, so the stop cannot cut the send.
	eventually(t, "relayed", func() bool {
		st, err := s.client.Stats(t.Context())
		return err == nil && st.Relayed.Count == 1
	})

	require.NoError(t, s.stop())
	assert.Len(t, sink.Messages(), 1, "mails read by the sink: one relay sent the row, once")
	log := s.stderr.String()
	assert.Equal(t, 2, strings.Count(log, `msg="relay stopped"`), "relays stopped at exit:\n%s", log)
	assert.Equal(t, 1, strings.Count(log, "sent=1"), "one relay sent the row:\n%s", log)
	assert.Less(t, strings.Index(log, "msg=draining"), strings.Index(log, `msg="relay stopped"`), "the relays stop after the HTTP drain")
}

// Two instances on one database, one broker and one sink, under each strategy: an order
// allocated through one and an order out of stock through the other are each delivered once,
// under sync before the answer, under the outbox by whichever relay claimed the row.
func TestRunTwoInstancesOnPostgresAndNATS(t *testing.T) {
	db := fleet.Database(t)
	for _, strategy := range []string{"sync", "outbox"} {
		t.Run(strategy, func(t *testing.T) {
			broker, err := embedded.Start("")
			require.NoError(t, err)
			defer func() { require.NoError(t, broker.Close()) }()
			sink, err := smtptest.Start(smtptest.Config{Dedup: true})
			require.NoError(t, err)
			defer func() { require.NoError(t, sink.Close()) }()
			store, err := postgres.Open(t.Context(), db)
			require.NoError(t, err)
			defer store.Close()
			reader, err := nats.Connect(t.Context(), broker.URL(), nats.Config{})
			require.NoError(t, err)
			defer reader.Close()

			args := []string{"-store", db, "-broker", broker.URL(), "-mailer", "smtp://" + sink.Addr(), "-strategy", strategy}
			if strategy == "outbox" {
				args = append(args, "-relays", "2", "-relay-poll", "20ms")
			}
			a := start(t, append([]string{"-name", "a"}, args...)...)
			b := start(t, append([]string{"-name", "b"}, args...)...)
			sku := "LAMP-" + strategy
			require.NoError(t, a.client.AddBatch(t.Context(), "b-"+strategy, sku, 1, noETA))
			ref, err := a.client.Allocate(t.Context(), "o1", sku, 1)
			require.NoError(t, err)
			assert.Equal(t, "b-"+strategy, ref)
			_, err = b.client.Allocate(t.Context(), "o2", sku, 1)
			require.ErrorIs(t, err, domain.ErrOutOfStock, "b sees a's allocation in the shared database")

			held := func() []domain.Event {
				events, err := reader.Held(t.Context(), service.AllocatedChannel)
				require.NoError(t, err)
				return events
			}
			if strategy == "outbox" {
				eventually(t, "the outbox drained", func() bool { pending, _ := store.OutboxCounts(); return pending == 0 })
			}
			published := held()
			require.Len(t, published, 1, "Allocated events in the stream")
			assert.Equal(t, "o1", published[0].(domain.Allocated).OrderID)
			assert.True(t, strings.HasPrefix(published[0].Identity().ID, "ev-a-"), "the Allocated event %q comes from a", published[0].Identity().ID)
			mailed := mailedEvents(t, sink)
			require.Len(t, mailed, 1, "out-of-stock mails")
			assert.True(t, strings.HasPrefix(mailed[0], "ev-b-"), "the OutOfStock event %q comes from b", mailed[0])

			require.NoError(t, a.stop())
			require.NoError(t, b.stop())
		})
	}
}

// A relay started after the rows were committed (here, by an instance with no relay of its own)
// finds them at its first claim: rows wait in the table for whichever instance relays.
func TestRunRelaysRowsAnotherInstanceCommitted(t *testing.T) {
	db := fleet.Database(t)
	sink, err := smtptest.Start(smtptest.Config{Dedup: true})
	require.NoError(t, err)
	defer func() { require.NoError(t, sink.Close()) }()
	mailer := "smtp://" + sink.Addr()
	writer := start(t, "-name", "w", "-store", db, "-mailer", mailer, "-strategy", "outbox", "-relays", "0")
	require.NoError(t, writer.client.AddBatch(t.Context(), "b1", "CHAIR", 1, noETA))
	for _, order := range []string{"o1", "o2", "o3"} {
		_, err := writer.client.Allocate(t.Context(), order, "CHAIR", 2)
		require.ErrorIs(t, err, domain.ErrOutOfStock)
	}
	require.NoError(t, writer.stop())
	assert.Empty(t, sink.Messages(), "mails sent by an instance without relays")

	relay := start(t, "-name", "r", "-store", db, "-mailer", mailer, "-strategy", "outbox", "-relay-poll", "1h")
	eventually(t, "three mails", func() bool { return len(sink.Delivered()) == 3 })
	for _, id := range mailedEvents(t, sink) {
		assert.True(t, strings.HasPrefix(id, "ev-w-"), "mailed event %q: want one the writer committed", id)
	}
	require.NoError(t, relay.stop())
}

// -mail-timeout bounds a send whose reply never comes: under sync the request answers with its
// out-of-stock 400 and the warning that the mail failed, within the client's own bound of 20s,
// which the default timeout (30s) would not.
func TestRunMailTimeout(t *testing.T) {
	sink, err := smtptest.Start(smtptest.Config{Plan: smtptest.Sequence(smtptest.Fault{At: smtptest.AtData, Hang: true})})
	require.NoError(t, err)
	defer func() { require.NoError(t, sink.Close()) }()
	s := start(t, "-mailer", "smtp://"+sink.Addr(), "-mail-timeout", "50ms")
	require.NoError(t, s.client.AddBatch(t.Context(), "batch1", "POPULAR-CURTAINS", 9, noETA))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, err = s.client.Allocate(ctx, "o1", "POPULAR-CURTAINS", 10)
	assert.ErrorIs(t, err, domain.ErrOutOfStock)
	assert.ErrorIs(t, err, service.ErrPublish, "the mail that timed out")
	require.NoError(t, s.stop())
}

// -relay-sends: a relay sends that many rows of its claim at once. Instance a, without relays,
// commits three out-of-stock rows; instance b's one relay then claims them in one claim at its
// start, and the sink, holding every mail at MAIL FROM, sees as many at once as -relay-sends
// allows.
func TestRunRelaySendsSeveralRowsAtOnce(t *testing.T) {
	db := fleet.Database(t)
	gate := fleet.NewGate(false)
	gate.Close()
	sink, err := smtptest.Start(smtptest.Config{Dedup: true, Plan: gate.Plan})
	require.NoError(t, err)
	defer func() { require.NoError(t, sink.Close()) }()
	defer gate.Open() // before the sink's Close, which waits for the transactions it holds

	args := []string{"-store", db, "-mailer", "smtp://" + sink.Addr(), "-strategy", "outbox"}
	a := start(t, append([]string{"-name", "a", "-relays", "0"}, args...)...)
	require.NoError(t, a.client.AddBatch(t.Context(), "b1", "RUG", 1, noETA))
	for _, id := range []string{"o1", "o2", "o3"} {
		_, err := a.client.Allocate(t.Context(), id, "RUG", 2)
		require.ErrorIs(t, err, domain.ErrOutOfStock, "order %s", id)
	}
	b := start(t, append([]string{"-name", "b", "-relays", "1", "-relay-sends", "3", "-relay-poll", "1h"}, args...)...)
	eventually(t, "three mails held at once", func() bool { return gate.Held() == 3 })
	gate.Open()
	eventually(t, "mailed", func() bool { return len(sink.Delivered()) == 3 })
	require.NoError(t, b.stop())
	require.NoError(t, a.stop())
}
