package domain_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
)

// counter is an IDSource that numbers its IDs and counts the calls.
type counter struct{ n int }

func (c *counter) NextID() string { c.n++; return "id-" + strconv.Itoa(c.n) }

func TestStampEvents(t *testing.T) {
	tests := []struct {
		name string
		// run stamps p's events from ids (or not) and records events.
		run  func(p *domain.Product, ids *counter) error
		want []domain.Event
		ids  int // IDs drawn
	}{
		{
			name: "unstamped product records an empty Meta",
			run: func(p *domain.Product, _ *counter) error {
				_, err := p.Allocate(line("o1", "LAMP", 2))
				return err
			},
			want: []domain.Event{domain.Allocated{OrderID: "o1", SKU: "LAMP", Qty: 2, BatchRef: "b1"}},
		},
		{
			name: "Allocated carries an ID from the source and the cause",
			run: func(p *domain.Product, ids *counter) error {
				p.StampEvents(ids, "cmd-9")
				_, err := p.Allocate(line("o1", "LAMP", 2))
				return err
			},
			want: []domain.Event{domain.Allocated{Meta: domain.Meta{ID: "id-1", CausationID: "cmd-9"}, OrderID: "o1", SKU: "LAMP", Qty: 2, BatchRef: "b1"}},
			ids:  1,
		},
		{
			name: "OutOfStock carries one too",
			run: func(p *domain.Product, ids *counter) error {
				p.StampEvents(ids, "cmd-9")
				_, err := p.Allocate(line("o1", "LAMP", 20))
				require.ErrorIs(t, err, domain.ErrOutOfStock)
				return nil
			},
			want: []domain.Event{domain.OutOfStock{Meta: domain.Meta{ID: "id-1", CausationID: "cmd-9"}, SKU: "LAMP", OrderID: "o1", Qty: 20}},
			ids:  1,
		},
		{
			name: "each Deallocated gets its own ID, in order",
			run: func(p *domain.Product, ids *counter) error {
				if _, err := p.Allocate(line("o1", "LAMP", 4)); err != nil {
					return err
				}
				if _, err := p.Allocate(line("o2", "LAMP", 4)); err != nil {
					return err
				}
				p.Events = nil
				p.StampEvents(ids, "")
				return p.ChangeBatchQuantity("b1", 0)
			},
			want: []domain.Event{
				domain.Deallocated{Meta: domain.Meta{ID: "id-1"}, OrderID: "o2", SKU: "LAMP", Qty: 4},
				domain.Deallocated{Meta: domain.Meta{ID: "id-2"}, OrderID: "o1", SKU: "LAMP", Qty: 4},
			},
			ids: 2,
		},
		{
			name: "a nil source stops it",
			run: func(p *domain.Product, ids *counter) error {
				p.StampEvents(ids, "cmd-9")
				p.StampEvents(nil, "cmd-9")
				_, err := p.Allocate(line("o1", "LAMP", 2))
				return err
			},
			want: []domain.Event{domain.Allocated{OrderID: "o1", SKU: "LAMP", Qty: 2, BatchRef: "b1"}},
		},
		{
			name: "a line already held and a rejected line draw no ID",
			run: func(p *domain.Product, ids *counter) error {
				if _, err := p.Allocate(line("o1", "LAMP", 2)); err != nil {
					return err
				}
				p.Events = nil
				p.StampEvents(ids, "cmd-9")
				if _, err := p.Allocate(line("o1", "LAMP", 2)); err != nil {
					return err
				}
				_, err := p.Allocate(line("", "LAMP", 2))
				require.ErrorIs(t, err, domain.ErrInvalidOrderLine)
				return nil
			},
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := domain.NewProduct("LAMP", []*domain.Batch{domain.NewBatch("b1", "LAMP", 10, time.Time{})})
			ids := &counter{}
			require.NoError(t, tt.run(p, ids))
			assert.Equal(t, tt.want, p.Events)
			assert.Equal(t, tt.ids, ids.n, "IDs drawn")
		})
	}
}

func TestStampEventsIsNotState(t *testing.T) {
	p := domain.NewProduct("LAMP", []*domain.Batch{domain.NewBatch("b1", "LAMP", 10, time.Time{})})
	before := p.Clone()
	ids := &counter{}
	p.StampEvents(ids, "cmd-9")
	assert.True(t, p.SameState(before), "stamping changes no stored state")

	c := p.Clone()
	_, err := c.Allocate(line("o1", "LAMP", 2))
	require.NoError(t, err)
	assert.Equal(t, []domain.Event{domain.Allocated{OrderID: "o1", SKU: "LAMP", Qty: 2, BatchRef: "b1"}}, c.Events,
		"a clone does not stamp with its original's source")
	assert.Zero(t, ids.n, "IDs drawn by the clone")
}
