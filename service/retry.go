package service

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"time"

	"github.com/stockbus/stockbus/domain"
)

// RetryPolicy says how Retry retries a failing event handler. The book's text (not its code)
// suggests 3 attempts with exponential backoff.
type RetryPolicy struct {
	// Attempts is how many times the handler runs at most, the first included (the book: 3).
	// Less than 1 counts as 1.
	Attempts int
	// Base is the ceiling of the wait before the second attempt; it doubles for each later one.
	Base time.Duration
	// Max caps the ceiling (0: no cap).
	Max time.Duration
	// Seed seeds the jitter. Each wait is drawn from [ceiling/2, ceiling) by a hash of the seed,
	// the event's ID and the attempt, so a replay waits the same whatever the goroutines do.
	Seed uint64
	// Retryable says whether an error is worth another attempt. nil retries every error except
	// the context's own (context.Canceled, context.DeadlineExceeded).
	Retryable func(error) bool
}

// ErrAttemptsExhausted is wrapped, beside the handler's last error, when Retry gave up.
var ErrAttemptsExhausted = errors.New("handler attempts exhausted")

// Retry returns middleware that runs a failing handler again after a jittered exponential
// backoff, up to p.Attempts times in all. A handler that succeeds stops the retries; when every
// attempt failed the error wraps ErrAttemptsExhausted and the last error. Waiting stops when ctx
// ends. Retries happen inside the handler's call, so under synchronous dispatch the request waits
// for them: that is their price. A panic is not retried (the bus turns it into an error).
//
// A handler whose side effect may have happened although it failed (a send that timed out) is
// run again all the same: retries trade lost events for possible duplicates.
func Retry(p RetryPolicy) Middleware {
	attempts := max(p.Attempts, 1)
	retryable := p.Retryable
	if retryable == nil {
		retryable = func(err error) bool {
			return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
		}
	}
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, e domain.Event) error {
			var err error
			for attempt := 1; ; attempt++ {
				if err = next(ctx, e); err == nil || !retryable(err) {
					return err
				}
				if attempt == attempts {
					return fmt.Errorf("%w (%d): %w", ErrAttemptsExhausted, attempts, err)
				}
				if werr := sleep(ctx, p.Backoff(e.Identity().ID, attempt)); werr != nil {
					return err
				}
			}
		}
	}
}

// Backoff is the wait after failed attempt n (1, 2, ...) of the event with the ID: drawn from
// [c/2, c) with c = Base·2^(n-1), capped at Max, by a hash of Seed, id and n.
func (p RetryPolicy) Backoff(id string, n int) time.Duration {
	ceiling := p.Base
	for i := 1; i < n && ceiling > 0 && ceiling < math.MaxInt64/2 && (p.Max <= 0 || ceiling < p.Max); i++ {
		ceiling *= 2
	}
	if p.Max > 0 {
		ceiling = min(ceiling, p.Max)
	}
	if ceiling <= 1 {
		return max(ceiling, 0)
	}
	h := fnv.New64a()
	h.Write([]byte(id))
	x := mix(h.Sum64() ^ mix(p.Seed^uint64(n)*0x9e3779b97f4a7c15))
	half := ceiling / 2
	return half + time.Duration(x%uint64(ceiling-half))
}

// mix is splitmix64's finalizer: a cheap, well-spread hash of x.
func mix(x uint64) uint64 {
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}
