package simreal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/nats"
	"github.com/stockbus/stockbus/nats/embedded"
	"github.com/stockbus/stockbus/sim"
)

// ErrBadNATSURL is wrapped when -broker names a URL that is not nats://host[:port].
var ErrBadNATSURL = errors.New("bad nats URL")

// readBound caps how long reading the stream after a run may wait for its messages. It bounds a
// failure (messages the stream counts and does not deliver), it measures nothing.
const readBound = 30 * time.Second

// NATS returns the opener of a NATS JetStream broker. With an empty serverURL each run starts a
// server embedded in the process, with JetStream in a temporary directory that is removed when
// the run ends. With a nats:// URL each run creates a stream of its own on that server
// (STOCKBUS_SIM_<random>, on subjects stockbus_sim_<random>.>) and deletes it when the run ends.
//
// The stream keeps JetStream's default two-minute duplicate window: a relay that re-publishes a
// row within it is de-duplicated by the broker, which is every re-send of a simulator run.
func NATS(serverURL string) (sim.BrokerOpener, error) {
	if serverURL != "" {
		u, err := url.Parse(serverURL)
		if err != nil || u.Scheme != "nats" || u.Host == "" {
			return nil, fmt.Errorf("%w: %q (want nats://host:port)", ErrBadNATSURL, serverURL)
		}
	}
	return func(ctx context.Context) (sim.Broker, func() error, error) {
		b := &natsBroker{url: serverURL}
		if serverURL == "" {
			srv, err := embedded.Start("")
			if err != nil {
				return nil, nil, err
			}
			b.srv, b.url = srv, srv.URL()
		}
		if err := b.open(ctx); err != nil {
			return nil, nil, errors.Join(err, b.close())
		}
		return b, b.close, nil
	}, nil
}

// natsBroker is sim.Broker on a JetStream stream: a nats.Publisher that Drop closes and Restore
// replaces with a new connection, and a connection of its own that reads the stream after the run.
type natsBroker struct {
	url    string
	srv    *embedded.Server // nil on an external server
	cfg    nats.Config
	reader *natsgo.Conn
	js     jetstream.JetStream // on reader

	cur  atomic.Pointer[nats.Publisher] // the publisher of the live connection
	mu   sync.Mutex
	pubs []*nats.Publisher // every publisher made, for the de-duplication count and Close
}

var _ sim.Broker = (*natsBroker)(nil)

func (b *natsBroker) open(ctx context.Context) error {
	var raw [6]byte
	_, _ = rand.Read(raw[:])
	suffix := hex.EncodeToString(raw[:])
	b.cfg = nats.Config{Stream: "STOCKBUS_SIM_" + strings.ToUpper(suffix), SubjectPrefix: "stockbus_sim_" + suffix}
	reader, err := natsgo.Connect(b.url, natsgo.Name("stockbus-sim-reader"))
	if err != nil {
		return fmt.Errorf("connect to nats at %s: %w", redactNATS(b.url), err)
	}
	b.reader = reader
	if b.js, err = jetstream.New(reader); err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	return b.connect(ctx)
}

// connect makes a new publisher (the stream is created by the first) and makes it the live one.
func (b *natsBroker) connect(ctx context.Context) error {
	p, err := nats.Connect(ctx, b.url, b.cfg, natsgo.Name("stockbus-sim"))
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.pubs = append(b.pubs, p)
	b.mu.Unlock()
	if old := b.cur.Swap(p); old != nil {
		old.Close()
	}
	return nil
}

// Publish publishes on the live connection; while it is dropped, Publish fails.
func (b *natsBroker) Publish(ctx context.Context, channel string, e domain.Event) error {
	return b.cur.Load().Publish(ctx, channel, e)
}

// Drop closes the live connection: publications in flight and until Restore fail.
func (b *natsBroker) Drop(context.Context) error {
	b.cur.Load().Close()
	return nil
}

// Restore connects again, as a new connection.
func (b *natsBroker) Restore(ctx context.Context) error { return b.connect(ctx) }

// DedupHits sums the duplicates the broker acknowledged over every connection.
func (b *natsBroker) DedupHits() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	var n int64
	for _, p := range b.pubs {
		n += p.Duplicates()
	}
	return n
}

// Held reads every message of the stream with an ordered consumer on the reader's connection,
// in stream order: what the broker stored, duplicates included.
func (b *natsBroker) Held(ctx context.Context) ([]sim.Publication, error) {
	stream, err := b.js.Stream(ctx, b.cfg.Stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", b.cfg.Stream, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s info: %w", b.cfg.Stream, err)
	}
	want := int(info.State.Msgs)
	if want == 0 {
		return nil, nil
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", b.cfg.Stream, err)
	}
	held := make([]sim.Publication, 0, want)
	prefix := b.cfg.SubjectPrefix + "."
	for len(held) < want {
		batch, err := cons.Fetch(min(want-len(held), 1000), jetstream.FetchMaxWait(readBound))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", b.cfg.Stream, err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			e, err := nats.Decode(m.Headers().Get(nats.EventTypeHeader), m.Data())
			if err != nil {
				return nil, fmt.Errorf("message on %s: %w", m.Subject(), err)
			}
			held = append(held, sim.Publication{Event: e.Identity().ID, Channel: strings.TrimPrefix(m.Subject(), prefix)})
		}
		if err := batch.Error(); err != nil {
			return nil, fmt.Errorf("read %s after %d of %d messages: %w", b.cfg.Stream, len(held), want, err)
		}
		if n == 0 {
			return nil, fmt.Errorf("read %s: %d of %d messages delivered", b.cfg.Stream, len(held), want)
		}
	}
	return held, nil
}

// close closes every connection, deletes the stream from an external server, and stops and
// removes an embedded one.
func (b *natsBroker) close() error {
	b.mu.Lock()
	for _, p := range b.pubs {
		p.Close()
	}
	b.mu.Unlock()
	var errs []error
	if b.reader != nil {
		if b.srv == nil && b.js != nil {
			ctx, cancel := context.WithTimeout(context.Background(), readBound)
			if err := b.js.DeleteStream(ctx, b.cfg.Stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
				errs = append(errs, fmt.Errorf("delete stream %s: %w", b.cfg.Stream, err))
			}
			cancel()
		}
		b.reader.Close()
	}
	if b.srv != nil {
		errs = append(errs, b.srv.Close())
	}
	return errors.Join(errs...)
}

// redactNATS hides a URL's password.
func redactNATS(v string) string {
	u, err := url.Parse(v)
	if err != nil || u.User == nil {
		return v
	}
	return u.Redacted()
}
