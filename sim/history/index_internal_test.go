package history

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// EventIndex must find what an idIndex of every event finds, whatever the history's layout; on
// the layout the run assembles it must do so without building that index.
func TestEventIndexFindsWhatAFullIndexFinds(t *testing.T) {
	ids := func(s ...string) []EventOp {
		es := make([]EventOp, len(s))
		for i, id := range s {
			es[i] = EventOp{ID: id}
		}
		return es
	}
	rows := []struct {
		name   string
		events []EventOp
		layout bool // the index goes by the IDs' numbers
	}{
		{"none", nil, true},
		{"the run's layout", ids("e0-1", "e0-2", "e0-3", "e1-1", "e1-2", "e3-1"), true},
		{"streams in another order", ids("e2-1", "e2-2", "e0-1"), true},
		{"out of order within a stream", ids("e0-2", "e0-1"), false},
		{"a gap", ids("e0-1", "e0-3"), false},
		{"a stream split in two", ids("e0-1", "e1-1", "e0-2"), false},
		{"a repeat", ids("e0-1", "e0-1"), false},
		{"a stream restarted", ids("e0-1", "e0-2", "e1-1", "e0-1"), false},
		{"IDs the run does not mint", ids("ev-1", "e0-1", "x"), false},
		{"not starting at 1", ids("e0-2", "e0-3"), false},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			want := newIDIndex()
			for i, e := range row.events {
				want.add(e.ID, i+1)
			}
			got := IndexEvents(row.events)
			assert.Equal(t, row.layout, got.fallback == nil, "indexed by the IDs' numbers")
			probes := []string{"", "e", "e0-0", "e0-4", "e1-3", "e2-1", "e2-3", "e3-2", "e9-1", "ev-1", "x", "e0-1x"}
			for _, e := range row.events {
				probes = append(probes, e.ID)
			}
			for _, id := range probes {
				assert.Equal(t, want.get(id), got.Get(id), "get(%q)", id)
			}
		})
	}
}
