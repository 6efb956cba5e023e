package domain_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
)

// TestProductOfOneBatch covers Allocate on a product of one batch, which looks the order up and
// appends its line in one step.
func TestProductOfOneBatch(t *testing.T) {
	tests := []struct {
		name string
		// before runs on a product of one batch "b1" of 4 LAMP.
		before  func(t *testing.T, p *domain.Product)
		line    domain.OrderLine
		wantRef string
		wantErr error
		// wantAllocated and wantLines are the batch's after the line; wantBump is the version's rise.
		wantAllocated, wantLines, wantBump int
	}{
		{
			name: "a new line", line: line("o1", "LAMP", 3), wantRef: "b1", wantAllocated: 3, wantLines: 1, wantBump: 1,
		},
		{
			name:   "an order the full batch holds returns its batch",
			before: func(t *testing.T, p *domain.Product) { mustAllocate(t, p, line("o1", "LAMP", 4)) },
			line:   line("o1", "LAMP", 4), wantRef: "b1", wantAllocated: 4, wantLines: 1,
		},
		{
			name:   "an order the full batch holds with another quantity conflicts",
			before: func(t *testing.T, p *domain.Product) { mustAllocate(t, p, line("o1", "LAMP", 4)) },
			line:   line("o1", "LAMP", 1), wantErr: domain.ErrOrderConflict, wantAllocated: 4, wantLines: 1,
		},
		{
			name:   "an order the batch holds is not added twice",
			before: func(t *testing.T, p *domain.Product) { mustAllocate(t, p, line("o1", "LAMP", 1)) },
			line:   line("o1", "LAMP", 1), wantRef: "b1", wantAllocated: 1, wantLines: 1,
		},
		{
			name: "a deallocated order is allocated again",
			before: func(t *testing.T, p *domain.Product) {
				mustAllocate(t, p, line("o1", "LAMP", 3))
				require.NoError(t, p.ChangeBatchQuantity("b1", 0))
				require.NoError(t, p.ChangeBatchQuantity("b1", 4))
			},
			line: line("o1", "LAMP", 3), wantRef: "b1", wantAllocated: 3, wantLines: 1, wantBump: 1,
		},
		{
			name:   "a line that does not fit is out of stock",
			before: func(t *testing.T, p *domain.Product) { mustAllocate(t, p, line("o1", "LAMP", 3)) },
			line:   line("o2", "LAMP", 2), wantErr: domain.ErrOutOfStock, wantAllocated: 3, wantLines: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := domain.NewProduct("LAMP", []*domain.Batch{domain.NewBatch("b1", "LAMP", 4, time.Time{})})
			if tt.before != nil {
				tt.before(t, p)
			}
			version := p.VersionNumber
			ref, err := p.Allocate(tt.line)
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr, "Allocate(%v)", tt.line)
			} else {
				assert.NoError(t, err, "Allocate(%v)", tt.line)
			}
			assert.Equal(t, tt.wantRef, ref)
			b := p.Batches[0]
			assert.Equal(t, tt.wantAllocated, b.AllocatedQuantity(), "allocated")
			assert.Equal(t, tt.wantLines, b.Allocations(), "lines")
			assert.Len(t, b.Lines(), tt.wantLines, "listed lines")
			assert.Equal(t, version+tt.wantBump, p.VersionNumber, "version")
		})
	}
}
