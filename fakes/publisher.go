package fakes

import (
	"context"
	"slices"
	"sync"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/service"
)

// Published is one event sent to an external channel.
type Published struct {
	Channel string
	Event   domain.Event
}

// Publisher is a service.Publisher that captures what it is asked to publish, in order. It is
// safe for concurrent use.
type Publisher struct {
	mu   sync.Mutex
	sent []Published
}

var _ service.Publisher = (*Publisher)(nil)

// NewPublisher returns a publisher that has published nothing.
func NewPublisher() *Publisher { return &Publisher{} }

// Publish captures the event.
func (p *Publisher) Publish(ctx context.Context, channel string, e domain.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent = append(p.sent, Published{Channel: channel, Event: e})
	return nil
}

// Published returns a copy of everything published so far.
func (p *Publisher) Published() []Published {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.sent)
}
