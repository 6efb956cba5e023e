package fakes

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/service"
)

// ErrDisconnected is returned by Publish while the publisher is disconnected (see Disconnect).
var ErrDisconnected = errors.New("publisher disconnected")

// ErrNoEventID is wrapped when a de-duplicating publisher is given an event without an ID.
var ErrNoEventID = errors.New("event has no ID")

// ErrNotKept is wrapped by Held on a publisher that keeps the events' IDs only (see KeepIDs).
var ErrNotKept = errors.New("the publisher keeps event IDs only")

// Published is one event sent to an external channel.
type Published struct {
	Channel string
	Event   domain.Event
}

// PublishedID is what a publisher keeps of one publication when it keeps IDs only (see KeepIDs):
// the channel and the event's ID, which is all a simulator's accounting reads.
type PublishedID struct {
	Channel string
	EventID string
}

// PublisherOption configures a Publisher.
type PublisherOption func(*Publisher)

// KeepIDs makes the publisher keep, of each publication, only its channel and its event's ID
// (see Log), a few dozen bytes instead of the whole event: a run of a million publications then
// holds tens of megabytes less. Every publication is still kept, repeats included. Held fails
// with ErrNotKept and Published returns nil.
func KeepIDs() PublisherOption { return func(p *Publisher) { p.idsOnly = true } }

// Publisher is a service.Publisher that captures what it is asked to publish, in order, like a
// broker that stores every event it acknowledges. It is safe for concurrent use.
type Publisher struct {
	mu           sync.Mutex
	sent         []Published
	idsOnly      bool
	ids          chunks[keptID]       // with idsOnly, instead of sent
	channels     []string             // the channels of ids, each once
	window       time.Duration        // de-duplication window; 0: none
	now          func() time.Time     // the clock of the window
	seen         map[string]time.Time // event ID -> when it was first accepted, with a window
	dedupHits    []string
	disconnected bool
}

var _ service.Publisher = (*Publisher)(nil)

// keptID is a PublishedID with its channel numbered in Publisher.channels.
type keptID struct {
	channel int
	id      string
}

// NewPublisher returns a publisher that has published nothing and keeps every event it is given
// (of each, only its ID with KeepIDs).
func NewPublisher(opts ...PublisherOption) *Publisher {
	p := &Publisher{}
	for _, o := range opts {
		o(p)
	}
	return p
}

// NewDedupPublisher returns a publisher that, like a JetStream stream's duplicate window, accepts
// an event whose ID it took less than window ago (by now) without keeping it again, and rejects an
// event without an ID. Past the window the ID is forgotten and the event is kept a second time.
// now nil means time.Now; a window below 1ns is 1ns.
func NewDedupPublisher(window time.Duration, now func() time.Time) *Publisher {
	if now == nil {
		now = time.Now
	}
	return &Publisher{window: max(window, 1), now: now, seen: map[string]time.Time{}}
}

// Publish captures the event. It fails with the context's error when ctx is done and with
// ErrDisconnected while disconnected, keeping nothing.
func (p *Publisher) Publish(ctx context.Context, channel string, e domain.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.disconnected {
		return fmt.Errorf("publish on %s: %w", channel, ErrDisconnected)
	}
	if p.window > 0 {
		id := e.Identity().ID
		if id == "" {
			return fmt.Errorf("publish %T on %s: %w", e, channel, ErrNoEventID)
		}
		now := p.now()
		if first, ok := p.seen[id]; ok && now.Sub(first) < p.window {
			p.dedupHits = append(p.dedupHits, id)
			return nil
		}
		p.seen[id] = now
	}
	if p.idsOnly {
		p.keepID(channel, e.Identity().ID)
		return nil
	}
	p.sent = append(p.sent, Published{Channel: channel, Event: e})
	return nil
}

// keepID keeps a publication's ID. It must be called with p.mu held.
func (p *Publisher) keepID(channel, id string) {
	c := slices.Index(p.channels, channel) // a broker has a handful of channels
	if c < 0 {
		c = len(p.channels)
		p.channels = append(p.channels, channel)
	}
	p.ids.add(keptID{channel: c, id: id})
}

// Log returns the channel and event ID of everything published so far, in order, whether the
// publisher keeps the events or their IDs only.
func (p *Publisher) Log() []PublishedID {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.idsOnly {
		log := make([]PublishedID, 0, p.ids.len())
		for _, chunk := range p.ids.chunks {
			for _, k := range chunk {
				log = append(log, PublishedID{Channel: p.channels[k.channel], EventID: k.id})
			}
		}
		return log
	}
	log := make([]PublishedID, len(p.sent))
	for i, s := range p.sent {
		log[i] = PublishedID{Channel: s.Channel, EventID: s.Event.Identity().ID}
	}
	return log
}

// Published returns a copy of everything published so far; nil when the publisher keeps IDs
// only (KeepIDs: see Log).
func (p *Publisher) Published() []Published {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.sent)
}

// Held returns the events kept on channel, in publish order. Its error is nil unless the
// publisher keeps IDs only (ErrNotKept); the signature is the one publishertest.Harness asks of
// a broker.
func (p *Publisher) Held(_ context.Context, channel string) ([]domain.Event, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.idsOnly {
		return nil, fmt.Errorf("held on %s: %w", channel, ErrNotKept)
	}
	var es []domain.Event
	for _, s := range p.sent {
		if s.Channel == channel {
			es = append(es, s.Event)
		}
	}
	return es, nil
}

// DedupHits returns the IDs of the events accepted as duplicates and not kept, in order.
func (p *Publisher) DedupHits() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.dedupHits)
}

// Disconnect makes every Publish fail with ErrDisconnected until Reconnect, as a broker outage.
func (p *Publisher) Disconnect() { p.setDisconnected(true) }

// Reconnect ends a Disconnect; what was kept before it is still there.
func (p *Publisher) Reconnect() { p.setDisconnected(false) }

func (p *Publisher) setDisconnected(d bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.disconnected = d
}

// chunks is a log kept in fixed-size chunks: appending never copies what it holds, so a log of a
// million records costs the records once rather than the five times a growing slice allocates.
type chunks[T any] struct {
	chunks [][]T
	n      int
}

// chunkLen is the records of one chunk.
const chunkLen = 4096

func (c *chunks[T]) add(v T) {
	if c.n%chunkLen == 0 {
		c.chunks = append(c.chunks, make([]T, 0, chunkLen))
	}
	last := &c.chunks[len(c.chunks)-1]
	*last = append(*last, v)
	c.n++
}

func (c *chunks[T]) len() int { return c.n }

// all returns the records in order, in one new slice.
func (c *chunks[T]) all() []T {
	if c.n == 0 {
		return nil
	}
	out := make([]T, 0, c.n)
	for _, chunk := range c.chunks {
		out = append(out, chunk...)
	}
	return out
}
