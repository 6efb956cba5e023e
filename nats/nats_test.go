package nats_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/nats"
	"github.com/stockbus/stockbus/nats/embedded"
	"github.com/stockbus/stockbus/service"
	"github.com/stockbus/stockbus/service/publishertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// broker is an embedded server and a publisher connected to it that reports its connection's
// state changes, so a test can wait for them instead of sleeping.
type broker struct {
	srv          *embedded.Server
	pub          *nats.Publisher
	disconnected chan struct{}
	reconnected  chan struct{}
}

func startBroker(t testing.TB, cfg nats.Config) *broker {
	t.Helper()
	srv, err := embedded.Start(t.TempDir())
	require.NoError(t, err, "start embedded server")
	t.Cleanup(func() { assert.NoError(t, srv.Close()) })
	b := &broker{srv: srv, disconnected: make(chan struct{}, 64), reconnected: make(chan struct{}, 64)}
	signal := func(c chan struct{}) {
		select {
		case c <- struct{}{}:
		default:
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), publishertest.Bound)
	defer cancel()
	b.pub, err = nats.Connect(ctx, srv.URL(), cfg,
		natsgo.ReconnectWait(10*time.Millisecond), // how often to retry while the server is down
		natsgo.DisconnectErrHandler(func(*natsgo.Conn, error) { signal(b.disconnected) }),
		natsgo.ReconnectHandler(func(*natsgo.Conn) { signal(b.reconnected) }))
	require.NoError(t, err, "connect to %s", srv.URL())
	t.Cleanup(b.pub.Close)
	return b
}

func wait(ctx context.Context, c <-chan struct{}, what string) error {
	select {
	case <-c:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
	}
}

func (b *broker) harness() publishertest.Harness {
	return publishertest.Harness{
		Publisher: b.pub,
		Held:      b.pub.Held,
		Drop: func(ctx context.Context) error {
			b.srv.Stop()
			return wait(ctx, b.disconnected, "the client to notice the outage")
		},
		Restore: func(ctx context.Context) error {
			if err := b.srv.Restart(); err != nil {
				return err
			}
			return wait(ctx, b.reconnected, "the client to reconnect")
		},
	}
}

func TestPublisherContract(t *testing.T) {
	publishertest.TestPublisher(t, publishertest.Features{Ordered: true, Deduplicates: true, Reconnects: true},
		func(t *testing.T) publishertest.Harness { return startBroker(t, nats.Config{}).harness() })
}

var allocated = domain.Allocated{Meta: domain.Meta{ID: "e1", CausationID: "c1"}, OrderID: "o1", SKU: "LAMP", Qty: 2, BatchRef: "b1"}

func TestBadInputIsRejectedAndPublishesNothing(t *testing.T) {
	b := startBroker(t, nats.Config{})
	ctx := t.Context()
	type unknown struct{ domain.Allocated }
	rows := []struct {
		name    string
		channel string
		event   domain.Event
		want    error
	}{
		{"empty channel", "", allocated, nats.ErrInvalidChannel},
		{"channel of two tokens", "a.b", allocated, nats.ErrInvalidChannel},
		{"wildcard channel", "line_*", allocated, nats.ErrInvalidChannel},
		{"full wildcard channel", ">", allocated, nats.ErrInvalidChannel},
		{"channel with a space", "line allocated", allocated, nats.ErrInvalidChannel},
		{"event without an ID", service.AllocatedChannel, domain.Allocated{SKU: "LAMP"}, nats.ErrNoEventID},
		{"event type the codec does not know", service.AllocatedChannel, unknown{allocated}, nats.ErrUnsupportedEvent},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			err := b.pub.Publish(ctx, r.channel, r.event)
			assert.ErrorIs(t, err, r.want, "Publish(%q, %T)", r.channel, r.event)
		})
	}
	held, err := b.pub.Held(ctx, service.AllocatedChannel)
	require.NoError(t, err)
	assert.Empty(t, held)
}

func TestBadConfigIsRejected(t *testing.T) {
	b := startBroker(t, nats.Config{})
	rows := []struct {
		name string
		cfg  nats.Config
	}{
		{"stream name with a dot", nats.Config{Stream: "A.B"}},
		{"subject prefix with a wildcard", nats.Config{SubjectPrefix: "stockbus.*"}},
		{"subject prefix ending in a dot", nats.Config{SubjectPrefix: "stockbus."}},
		{"negative window", nats.Config{Window: -time.Second}},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			_, err := nats.Connect(t.Context(), b.srv.URL(), r.cfg)
			assert.ErrorIs(t, err, nats.ErrInvalidConfig)
		})
	}
}

func TestCodecRoundTripsEveryEventType(t *testing.T) {
	m := domain.Meta{ID: "e1", CausationID: "c1"}
	for _, e := range []domain.Event{
		allocated,
		domain.Deallocated{Meta: m, OrderID: "o1", SKU: "LAMP", Qty: 3},
		domain.OutOfStock{Meta: m, OrderID: "o1", SKU: "LAMP", Qty: 4},
	} {
		data, typ, err := nats.Encode(e)
		require.NoError(t, err, "Encode(%T)", e)
		got, err := nats.Decode(typ, data)
		require.NoError(t, err, "Decode(%s, %s)", typ, data)
		assert.Equal(t, e, got)
	}
	data, _, err := nats.Encode(allocated)
	require.NoError(t, err)
	assert.JSONEq(t, `{"id":"e1","causation_id":"c1","orderid":"o1","sku":"LAMP","qty":2,"batchref":"b1"}`, string(data),
		"the book's field names on the wire")
	_, err = nats.Decode("Shipped", data)
	assert.ErrorIs(t, err, nats.ErrUnsupportedEvent)
}

func TestDuplicatesAreCountedFromTheBrokersAcknowledgement(t *testing.T) {
	b := startBroker(t, nats.Config{})
	ctx := t.Context()
	for range 3 {
		require.NoError(t, b.pub.Publish(ctx, service.AllocatedChannel, allocated))
	}
	assert.Equal(t, int64(2), b.pub.Duplicates(), "two re-publishes acknowledged as duplicates")
}

func TestAnExistingStreamIsUsedAsConfigured(t *testing.T) {
	b := startBroker(t, nats.Config{})
	ctx := t.Context()
	require.NoError(t, b.pub.Publish(ctx, service.AllocatedChannel, allocated))
	again, err := nats.Connect(ctx, b.srv.URL(), nats.Config{Window: time.Hour})
	require.NoError(t, err, "second publisher on the same stream")
	defer again.Close()
	require.NoError(t, again.Publish(ctx, service.AllocatedChannel, allocated))
	held, err := again.Held(ctx, service.AllocatedChannel)
	require.NoError(t, err)
	assert.Equal(t, []domain.Event{allocated}, held, "the stream and its duplicate state are shared")
	assert.Equal(t, int64(1), again.Duplicates())
}

// TestPastTheWindowARepublishIsStoredAgain shows what the broker does once its window has passed:
// it has forgotten the ID and stores the event a second time. The window cannot pass without time
// passing, so the test re-publishes at intervals of the window until the broker's acknowledgement
// says "stored" instead of "duplicate". How many intervals that takes depends on the machine; the
// outcome does not, and the wait is bounded by the test's context.
func TestPastTheWindowARepublishIsStoredAgain(t *testing.T) {
	const window = 100 * time.Millisecond
	b := startBroker(t, nats.Config{Window: window})
	ctx, cancel := context.WithTimeout(t.Context(), publishertest.Bound)
	defer cancel()
	require.NoError(t, b.pub.Publish(ctx, service.AllocatedChannel, allocated))
	tick := time.NewTicker(window)
	defer tick.Stop()
	for stored := false; !stored; {
		select {
		case <-tick.C:
		case <-ctx.Done():
			require.FailNow(t, "the broker never forgot the ID", "after %d duplicates: %v", b.pub.Duplicates(), ctx.Err())
		}
		before := b.pub.Duplicates()
		require.NoError(t, b.pub.Publish(ctx, service.AllocatedChannel, allocated))
		stored = b.pub.Duplicates() == before
	}
	held, err := b.pub.Held(ctx, service.AllocatedChannel)
	require.NoError(t, err)
	assert.Equal(t, []domain.Event{allocated, allocated}, held, "past the window the event is held twice")
}
