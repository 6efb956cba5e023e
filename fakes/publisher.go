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

// Published is one event sent to an external channel.
type Published struct {
	Channel string
	Event   domain.Event
}

// Publisher is a service.Publisher that captures what it is asked to publish, in order, like a
// broker that stores every event it acknowledges. It is safe for concurrent use.
type Publisher struct {
	mu           sync.Mutex
	sent         []Published
	window       time.Duration        // de-duplication window; 0: none
	now          func() time.Time     // the clock of the window
	seen         map[string]time.Time // event ID -> when it was first accepted, with a window
	dedupHits    []string
	disconnected bool
}

var _ service.Publisher = (*Publisher)(nil)

// NewPublisher returns a publisher that has published nothing and keeps every event it is given.
func NewPublisher() *Publisher { return &Publisher{} }

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
	p.sent = append(p.sent, Published{Channel: channel, Event: e})
	return nil
}

// Published returns a copy of everything published so far.
func (p *Publisher) Published() []Published {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.sent)
}

// Held returns the events kept on channel, in publish order. Its error is always nil; the
// signature is the one publishertest.Harness asks of a broker.
func (p *Publisher) Held(_ context.Context, channel string) ([]domain.Event, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
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
