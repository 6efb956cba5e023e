package service_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/service"
)

var errFlaky = errors.New("flaky")

// flaky is a handler that fails its first n calls.
type flaky struct {
	n, calls int
	err      error
}

func (f *flaky) handle(context.Context, domain.Event) error {
	f.calls++
	if f.calls <= f.n {
		return f.err
	}
	return nil
}

var quick = service.RetryPolicy{Attempts: 3, Base: time.Microsecond}

func oos(id string) domain.Event { return domain.OutOfStock{Meta: domain.Meta{ID: id}, SKU: "LAMP"} }

func TestRetryRunsAFailingHandlerUpToItsAttempts(t *testing.T) {
	for _, tc := range []struct {
		name      string
		failures  int
		wantCalls int
		wantErr   bool
	}{
		{"succeeds at once", 0, 1, false},
		{"succeeds on the second attempt", 1, 2, false},
		{"succeeds on the third attempt", 2, 3, false},
		{"fails all three", 3, 3, true},
		{"fails for good", 100, 3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &flaky{n: tc.failures, err: errFlaky}
			err := service.Retry(quick)(f.handle)(ctx, oos("e1"))
			assert.Equal(t, tc.wantCalls, f.calls, "handler calls")
			if !tc.wantErr {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, service.ErrAttemptsExhausted)
			require.ErrorIs(t, err, errFlaky, "the last error is kept")
			assert.Equal(t, "handler attempts exhausted (3): flaky", err.Error())
		})
	}
}

func TestRetryAttemptsBelowOneRunOnce(t *testing.T) {
	f := &flaky{n: 5, err: errFlaky}
	err := service.Retry(service.RetryPolicy{})(f.handle)(ctx, oos("e1"))
	require.ErrorIs(t, err, errFlaky)
	assert.Equal(t, 1, f.calls)
}

func TestRetrySkipsErrorsThatAreNotRetryable(t *testing.T) {
	f := &flaky{n: 5, err: context.Canceled}
	err := service.Retry(quick)(f.handle)(ctx, oos("e1"))
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 1, f.calls, "the context's own errors are not retried by default")

	permanent := errors.New("permanent")
	p := quick
	p.Retryable = func(err error) bool { return !errors.Is(err, permanent) }
	f = &flaky{n: 5, err: permanent}
	require.ErrorIs(t, service.Retry(p)(f.handle)(ctx, oos("e1")), permanent)
	assert.Equal(t, 1, f.calls)
	assert.NotErrorIs(t, service.Retry(p)(f.handle)(ctx, oos("e1")), service.ErrAttemptsExhausted)
}

func TestRetryStopsWaitingWhenTheContextEnds(t *testing.T) {
	cctx, cancel := context.WithCancel(ctx)
	f := &flaky{n: 5, err: errFlaky}
	handler := func(ctx context.Context, e domain.Event) error {
		cancel() // the wait after this failure is cut short
		return f.handle(ctx, e)
	}
	err := service.Retry(service.RetryPolicy{Attempts: 3, Base: time.Hour})(handler)(cctx, oos("e1"))
	require.ErrorIs(t, err, errFlaky)
	assert.Equal(t, 1, f.calls)
}

func TestRetryBackoffIsExponentialJitteredAndSeeded(t *testing.T) {
	p := service.RetryPolicy{Attempts: 5, Base: time.Millisecond, Max: 3 * time.Millisecond, Seed: 42}
	for _, tc := range []struct {
		attempt int
		lo, hi  time.Duration // [lo, hi)
	}{
		{1, 500 * time.Microsecond, time.Millisecond},
		{2, time.Millisecond, 2 * time.Millisecond},
		{3, 1500 * time.Microsecond, 3 * time.Millisecond}, // capped at Max
		{4, 1500 * time.Microsecond, 3 * time.Millisecond},
	} {
		for _, id := range []string{"e0-1", "e0-2", "e1-1", ""} {
			d := p.Backoff(id, tc.attempt)
			assert.True(t, d >= tc.lo && d < tc.hi, "Backoff(%q, %d) = %v, want in [%v, %v)", id, tc.attempt, d, tc.lo, tc.hi)
			assert.Equal(t, d, p.Backoff(id, tc.attempt), "the same seed, event and attempt wait the same")
		}
	}
	other := p
	other.Seed = 43
	differ := 0
	for _, id := range []string{"e0-1", "e0-2", "e0-3", "e0-4"} {
		if p.Backoff(id, 1) != other.Backoff(id, 1) {
			differ++
		}
	}
	assert.Positive(t, differ, "another seed, other waits")
	assert.NotEqual(t, p.Backoff("e0-1", 1), p.Backoff("e0-2", 1), "events do not wait in lockstep")
	assert.Zero(t, service.RetryPolicy{}.Backoff("e", 3), "no base, no wait")
	assert.Positive(t, service.RetryPolicy{Base: time.Millisecond}.Backoff("e", 200), "no overflow without a cap")
}

func TestRetryAsBusMiddlewareMakesTheBooksHandlerSurviveTwoFailures(t *testing.T) {
	bus := service.NewBus(service.WithMiddleware(service.Retry(quick)))
	f := &flaky{n: 2, err: errFlaky}
	service.Subscribe(bus, func(ctx context.Context, e domain.OutOfStock) error { return f.handle(ctx, e) })
	require.NoError(t, bus.Handle(ctx, oos("e1")))
	assert.Equal(t, 3, f.calls)

	f.calls, f.n = 0, 3
	err := bus.Handle(ctx, oos("e2"))
	require.ErrorIs(t, err, service.ErrAttemptsExhausted)
	assert.Equal(t, 3, f.calls)
}
