package service_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/service"
)

func TestRetryBackoffStaysInItsDoublingWindow(t *testing.T) {
	p := service.RetryPolicy{Base: time.Millisecond, Seed: 7}
	for n, ceiling := range map[int]time.Duration{1: time.Millisecond, 2: 2 * time.Millisecond, 3: 4 * time.Millisecond, 5: 16 * time.Millisecond} {
		seen := map[time.Duration]bool{}
		for i := range 200 {
			d := p.Backoff(fmt.Sprint("e", i), n)
			require.True(t, d >= ceiling/2 && d < ceiling, "attempt %d: %v outside [%v, %v)", n, d, ceiling/2, ceiling)
			seen[d] = true
		}
		assert.Greater(t, len(seen), 100, "attempt %d: the jitter spreads the waits", n)
	}
}

func TestRetryBackoffIsCappedAndReplays(t *testing.T) {
	p := service.RetryPolicy{Base: time.Millisecond, Max: 3 * time.Millisecond, Seed: 7}
	for i := range 100 {
		d := p.Backoff(fmt.Sprint("e", i), 10)
		require.True(t, d >= 1500*time.Microsecond && d < 3*time.Millisecond, "capped wait %v", d)
	}
	assert.Equal(t, p.Backoff("e1", 2), p.Backoff("e1", 2), "same seed, id and attempt: same wait")
	other := p
	other.Seed = 8
	differ := 0
	for i := range 50 {
		if p.Backoff(fmt.Sprint("e", i), 2) != other.Backoff(fmt.Sprint("e", i), 2) {
			differ++
		}
	}
	assert.Greater(t, differ, 40, "another seed, other waits")
}

func TestRetryBackoffEdges(t *testing.T) {
	assert.Equal(t, time.Nanosecond, service.RetryPolicy{Base: time.Nanosecond}.Backoff("e", 1), "a 1ns ceiling waits 1ns")
	assert.Zero(t, service.RetryPolicy{}.Backoff("e", 3), "no base, no wait")
	huge := service.RetryPolicy{Base: math.MaxInt64 / 2}
	for n := 1; n < 5; n++ {
		assert.Greater(t, huge.Backoff("e", n), time.Duration(0), "attempt %d must not overflow", n)
	}
}

func TestChangeBatchQuantityAcceptsTheMaximum(t *testing.T) {
	s := newChainStack(t)
	require.NoError(t, s.send(t, domain.CreateBatch{Ref: "b1", SKU: "LAMP", Qty: 10}))
	require.NoError(t, s.send(t, domain.ChangeBatchQuantity{Ref: "b1", Qty: domain.MaxQty}))
	p, _ := s.store.Product("LAMP")
	assert.Equal(t, domain.MaxQty, p.Batches[0].AvailableQuantity())
}
