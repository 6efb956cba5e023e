package fakes_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/service/publishertest"
)

func harness(p *fakes.Publisher) publishertest.Harness {
	return publishertest.Harness{
		Publisher: p,
		Held:      p.Held,
		Drop:      func(context.Context) error { p.Disconnect(); return nil },
		Restore:   func(context.Context) error { p.Reconnect(); return nil },
	}
}

func TestPublisherContract(t *testing.T) {
	rows := []struct {
		name     string
		features publishertest.Features
		new      func() *fakes.Publisher
	}{
		{"keeping every event", publishertest.Features{Ordered: true, Reconnects: true}, func() *fakes.Publisher { return fakes.NewPublisher() }},
		{"de-duplicating", publishertest.Features{Ordered: true, Reconnects: true, Deduplicates: true},
			func() *fakes.Publisher { return fakes.NewDedupPublisher(2*time.Minute, nil) }},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			publishertest.TestPublisher(t, r.features, func(*testing.T) publishertest.Harness { return harness(r.new()) })
		})
	}
}

// clock is a manual clock for the de-duplication window.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestDedupPublisherForgetsAnIDPastTheWindow(t *testing.T) {
	c := &clock{now: time.Unix(1000, 0)}
	p := fakes.NewDedupPublisher(time.Minute, c.Now)
	a := domain.Allocated{Meta: domain.Meta{ID: "a"}, OrderID: "o1", SKU: "LAMP", Qty: 1, BatchRef: "b1"}
	steps := []struct {
		name    string
		advance time.Duration
		held    int
		hits    []string
	}{
		{"first publish is kept", 0, 1, nil},
		{"just inside the window it is a duplicate", time.Minute - time.Nanosecond, 1, []string{"a"}},
		{"at the window's end it is kept again", time.Nanosecond, 2, []string{"a"}},
		{"the window restarts from the second keep", time.Second, 2, []string{"a", "a"}},
	}
	for _, s := range steps {
		c.Add(s.advance)
		require.NoError(t, p.Publish(ctx, "line_allocated", a), s.name)
		got, err := p.Held(ctx, "line_allocated")
		require.NoError(t, err)
		assert.Len(t, got, s.held, s.name)
		assert.Equal(t, s.hits, p.DedupHits(), s.name)
	}
}

func TestPublisherFaultsKeepNothing(t *testing.T) {
	p := fakes.NewDedupPublisher(time.Minute, nil)
	e := domain.Allocated{Meta: domain.Meta{ID: "a"}, SKU: "LAMP"}
	p.Disconnect()
	assert.ErrorIs(t, p.Publish(ctx, "line_allocated", e), fakes.ErrDisconnected)
	p.Reconnect()
	assert.ErrorIs(t, p.Publish(ctx, "line_allocated", domain.Allocated{SKU: "LAMP"}), fakes.ErrNoEventID)
	assert.Empty(t, p.Published(), "nothing kept while disconnected or without an ID")
	require.NoError(t, p.Publish(ctx, "line_allocated", e))
	assert.Empty(t, p.DedupHits(), "a failed publish does not count as seen")
}

// A publisher that keeps IDs only logs what one that keeps the events does, repeats and
// interleaved channels included, and says so rather than hand back events it did not keep.
func TestPublisherKeepingIDsLogsEveryPublication(t *testing.T) {
	publications := []struct{ channel, id string }{
		{"line_allocated", "e0-1"}, {"out_of_stock", "e0-2"}, {"line_allocated", "e1-1"},
		{"line_allocated", "e0-1"}, {"out_of_stock", "e1-2"},
	}
	full, ids := fakes.NewPublisher(), fakes.NewPublisher(fakes.KeepIDs())
	for _, p := range []*fakes.Publisher{full, ids} {
		p.Disconnect()
		require.ErrorIs(t, p.Publish(ctx, "line_allocated", domain.Allocated{Meta: domain.Meta{ID: "lost"}}), fakes.ErrDisconnected)
		p.Reconnect()
		for _, pub := range publications {
			require.NoError(t, p.Publish(ctx, pub.channel, domain.Allocated{Meta: domain.Meta{ID: pub.id}, SKU: "LAMP"}))
		}
	}
	want := make([]fakes.PublishedID, len(publications))
	for i, pub := range publications {
		want[i] = fakes.PublishedID{Channel: pub.channel, EventID: pub.id}
	}
	assert.Equal(t, want, full.Log(), "the log of a publisher that keeps the events")
	assert.Equal(t, want, ids.Log(), "the log of a publisher that keeps IDs only")
	assert.Len(t, full.Published(), len(publications))
	assert.Nil(t, ids.Published(), "no events kept")
	_, err := ids.Held(ctx, "line_allocated")
	assert.ErrorIs(t, err, fakes.ErrNotKept)
}

// Keeping a publication's ID allocates nothing but the log's growth (amortized to nothing): the
// simulator publishes a million events through it.
func TestPublisherKeepingIDsAllocatesNothing(t *testing.T) {
	p := fakes.NewPublisher(fakes.KeepIDs())
	var e domain.Event = domain.Allocated{Meta: domain.Meta{ID: "e0-1"}, SKU: "LAMP"}
	allocs := testing.AllocsPerRun(10_000, func() {
		if err := p.Publish(ctx, "line_allocated", e); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs, "allocations per Publish")
}
