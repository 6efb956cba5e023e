// Package nats publishes stockbus events to NATS JetStream: a service.Publisher whose every
// Publish returns once the broker has stored the event, with the event's ID as the message ID
// (Nats-Msg-Id) so that the broker drops an event published again within the stream's duplicate
// window.
//
// Past the window the broker has forgotten the ID and stores a re-published event a second time:
// de-duplication by the broker covers a retry that follows a failure closely (a relay crash, a lost
// acknowledgement), not a replay hours later. Consumers that must not apply an event twice still
// check its ID themselves.
//
// The package depends on the NATS client only; package nats/embedded runs a server in-process.
package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sync/atomic"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/service"
)

// Errors of bad input. Nothing is published when Publish returns one of them.
var (
	// ErrInvalidChannel is wrapped when a channel is not a single subject token of letters,
	// digits, '_' or '-'.
	ErrInvalidChannel = errors.New("invalid channel")
	// ErrNoEventID is wrapped when an event has no ID: without one the broker cannot drop a duplicate.
	ErrNoEventID = errors.New("event has no ID")
	// ErrUnsupportedEvent is wrapped when an event is not one of the types the codec knows.
	ErrUnsupportedEvent = errors.New("unsupported event type")
	// ErrInvalidConfig is wrapped when a Config cannot describe a stream.
	ErrInvalidConfig = errors.New("invalid nats config")
)

// Defaults of Config.
const (
	DefaultStream        = "STOCKBUS"
	DefaultSubjectPrefix = "stockbus"
	// DefaultDuplicateWindow is JetStream's own default duplicate window.
	DefaultDuplicateWindow = 2 * time.Minute
)

// Header names carried by every message besides Nats-Msg-Id.
const (
	EventTypeHeader   = "Stockbus-Event"
	CausationIDHeader = "Stockbus-Causation-Id"
)

// Config names the stream events are published to. The zero value is the default: stream
// STOCKBUS on subjects stockbus.>, file storage, a two-minute duplicate window.
type Config struct {
	Stream        string        // stream name; DefaultStream when empty
	SubjectPrefix string        // channel c is published on subject <SubjectPrefix>.<c>
	Window        time.Duration // the stream's duplicate window when New creates it; 0: default
}

func (c Config) withDefaults() (Config, error) {
	if c.Stream == "" {
		c.Stream = DefaultStream
	}
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = DefaultSubjectPrefix
	}
	if c.Window == 0 {
		c.Window = DefaultDuplicateWindow
	}
	if c.Window < 0 || !token.MatchString(c.Stream) || !prefix.MatchString(c.SubjectPrefix) {
		return c, fmt.Errorf("%w: stream %q, subject prefix %q, window %v", ErrInvalidConfig, c.Stream, c.SubjectPrefix, c.Window)
	}
	return c, nil
}

var (
	token  = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	prefix = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)
)

// Publisher is a service.Publisher on a JetStream stream. It is safe for concurrent use; events
// published one after another from one goroutine are stored in that order.
type Publisher struct {
	nc         *natsgo.Conn
	js         jetstream.JetStream
	cfg        Config
	ownConn    bool
	duplicates atomic.Int64
}

var _ service.Publisher = (*Publisher)(nil)

// Connect dials url and returns a publisher on it (see New). The connection reconnects without end
// and does not buffer while disconnected, so a Publish during an outage fails at once instead of
// waiting: the caller (a retrying handler, an outbox relay) decides when to try again. opts are
// applied after those defaults. Close closes the connection.
func Connect(ctx context.Context, url string, cfg Config, opts ...natsgo.Option) (*Publisher, error) {
	opts = append([]natsgo.Option{natsgo.MaxReconnects(-1), natsgo.ReconnectBufSize(-1)}, opts...)
	nc, err := natsgo.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats at %s: %w", url, err)
	}
	p, err := New(ctx, nc, cfg)
	if err != nil {
		nc.Close()
		return nil, err
	}
	p.ownConn = true
	return p, nil
}

// New returns a publisher on nc. It creates the stream if it does not exist, with cfg's subjects
// and duplicate window and file storage; an existing stream is used as it is configured.
func New(ctx context.Context, nc *natsgo.Conn, cfg Config) (*Publisher, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	_, err = js.Stream(ctx, cfg.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name:       cfg.Stream,
			Subjects:   []string{cfg.SubjectPrefix + ".>"},
			Duplicates: cfg.Window,
			Storage:    jetstream.FileStorage,
		})
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", cfg.Stream, err)
	}
	return &Publisher{nc: nc, js: js, cfg: cfg}, nil
}

// Publish stores e on channel's subject and returns once the broker has acknowledged it. An event
// whose ID the broker saw within its duplicate window is acknowledged without being stored again,
// and Publish returns nil: the event is there, once. An error means the event may or may not be
// stored (the acknowledgement can be lost on the way back); publishing it again is safe within the
// window. A context already done publishes nothing and returns its error.
func (p *Publisher) Publish(ctx context.Context, channel string, e domain.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	msg, err := p.message(channel, e)
	if err != nil {
		return err
	}
	ack, err := p.js.PublishMsg(ctx, msg, jetstream.WithMsgID(e.Identity().ID), jetstream.WithExpectStream(p.cfg.Stream))
	if err != nil {
		return fmt.Errorf("publish %s on %s: %w", e.Identity().ID, msg.Subject, err)
	}
	if ack.Duplicate {
		p.duplicates.Add(1)
	}
	return nil
}

func (p *Publisher) message(channel string, e domain.Event) (*natsgo.Msg, error) {
	if !token.MatchString(channel) {
		return nil, fmt.Errorf("%w: %q", ErrInvalidChannel, channel)
	}
	data, typ, err := Encode(e)
	if err != nil {
		return nil, err
	}
	msg := natsgo.NewMsg(p.subject(channel))
	msg.Data = data
	msg.Header.Set(EventTypeHeader, typ)
	if c := e.Identity().CausationID; c != "" {
		msg.Header.Set(CausationIDHeader, c)
	}
	return msg, nil
}

func (p *Publisher) subject(channel string) string { return p.cfg.SubjectPrefix + "." + channel }

// Duplicates returns how many publishes the broker acknowledged as duplicates and did not store.
func (p *Publisher) Duplicates() int64 { return p.duplicates.Load() }

// Held returns the events the stream holds on channel, in stream order, decoded. It reads the
// stream directly, message by message, so it suits checks and accounting, not consumption.
func (p *Publisher) Held(ctx context.Context, channel string) ([]domain.Event, error) {
	if !token.MatchString(channel) {
		return nil, fmt.Errorf("%w: %q", ErrInvalidChannel, channel)
	}
	stream, err := p.js.Stream(ctx, p.cfg.Stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", p.cfg.Stream, err)
	}
	var events []domain.Event
	for seq := uint64(1); ; {
		m, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(p.subject(channel)))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return events, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s from %d: %w", p.cfg.Stream, seq, err)
		}
		e, err := Decode(m.Header.Get(EventTypeHeader), m.Data)
		if err != nil {
			return nil, fmt.Errorf("message %d: %w", m.Sequence, err)
		}
		events = append(events, e)
		seq = m.Sequence + 1
	}
}

// Close closes the connection if Connect made it; a publisher made by New leaves nc to its owner.
func (p *Publisher) Close() {
	if p.ownConn {
		p.nc.Close()
	}
}

// wire is the JSON body of every event: the book's field names for Allocated.
type wire struct {
	ID          string `json:"id"`
	CausationID string `json:"causation_id,omitempty"`
	OrderID     string `json:"orderid"`
	SKU         string `json:"sku"`
	Qty         int    `json:"qty"`
	BatchRef    string `json:"batchref,omitempty"`
}

// Encode returns e's JSON body and its type name (the EventTypeHeader value). The event must have
// an ID and be an Allocated, Deallocated or OutOfStock.
func Encode(e domain.Event) (data []byte, typ string, err error) {
	m := e.Identity()
	if m.ID == "" {
		return nil, "", fmt.Errorf("%w: %T", ErrNoEventID, e)
	}
	w := wire{ID: m.ID, CausationID: m.CausationID}
	switch e := e.(type) {
	case domain.Allocated:
		typ, w.OrderID, w.SKU, w.Qty, w.BatchRef = "Allocated", e.OrderID, e.SKU, e.Qty, e.BatchRef
	case domain.Deallocated:
		typ, w.OrderID, w.SKU, w.Qty = "Deallocated", e.OrderID, e.SKU, e.Qty
	case domain.OutOfStock:
		typ, w.OrderID, w.SKU, w.Qty = "OutOfStock", e.OrderID, e.SKU, e.Qty
	default:
		return nil, "", fmt.Errorf("%w: %T", ErrUnsupportedEvent, e)
	}
	data, err = json.Marshal(w)
	return data, typ, err
}

// Decode is the inverse of Encode.
func Decode(typ string, data []byte) (domain.Event, error) {
	var w wire
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("decode %s: %w", typ, err)
	}
	m := domain.Meta{ID: w.ID, CausationID: w.CausationID}
	switch typ {
	case "Allocated":
		return domain.Allocated{Meta: m, OrderID: w.OrderID, SKU: w.SKU, Qty: w.Qty, BatchRef: w.BatchRef}, nil
	case "Deallocated":
		return domain.Deallocated{Meta: m, OrderID: w.OrderID, SKU: w.SKU, Qty: w.Qty}, nil
	case "OutOfStock":
		return domain.OutOfStock{Meta: m, OrderID: w.OrderID, SKU: w.SKU, Qty: w.Qty}, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnsupportedEvent, typ)
}
