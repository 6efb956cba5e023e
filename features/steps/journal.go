package steps

import (
	"context"
	"slices"
	"sync"

	"github.com/stockbus/stockbus/domain"
)

// delivery is one call of one handler with one event.
type delivery struct {
	handler string
	event   domain.Event
	result  string // "ok", "failed: ...", or "panicked" when the call never returned
}

// traced is one message the bus handled, with the errors its handlers returned.
type traced struct {
	msg domain.Message
	err error
}

// trace records what the bus's trace hook reports. Messages are handled on the writers'
// goroutines, so it is guarded.
type trace struct {
	mu   sync.Mutex
	msgs []traced
}

func (t *trace) add(_ context.Context, m domain.Message, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.msgs = append(t.msgs, traced{msg: m, err: err})
}

func (t *trace) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.msgs)
}

func (t *trace) since(i int) []traced {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.msgs[i:])
}

// journal records handler calls and what witness handlers saw. Handlers run on the goroutines
// of the writers, so it is guarded.
type journal struct {
	mu         sync.Mutex
	deliveries []delivery
	witnessed  map[string][][]string // handler name -> what it saw at each call
}

func (j *journal) start(handler string, e domain.Event) int {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.deliveries = append(j.deliveries, delivery{handler: handler, event: e, result: "panicked"})
	return len(j.deliveries) - 1
}

func (j *journal) finish(i int, err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.deliveries[i].result = "ok"
	if err != nil {
		j.deliveries[i].result = "failed: " + err.Error()
	}
}

func (j *journal) len() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.deliveries)
}

func (j *journal) since(i int) []delivery {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.deliveries[i:])
}

func (j *journal) witness(handler string, held []string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.witnessed == nil {
		j.witnessed = map[string][][]string{}
	}
	j.witnessed[handler] = append(j.witnessed[handler], held)
}

func (j *journal) seenBy(handler string) [][]string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.witnessed[handler])
}
