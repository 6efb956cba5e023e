package dispatch

import (
	"github.com/stockbus/stockbus/service"
)

// syncRetryStrategy is sync with the book's handler retries: service.Retry as bus middleware,
// so that a failing handler runs again inside the request.
type syncRetryStrategy struct {
	syncStrategy
	retry    service.RetryPolicy
	timeouts bool // sends may time out and still be delivered
}

var _ Strategy = (*syncRetryStrategy)(nil)

func newSyncRetry(o Options) Strategy {
	return &syncRetryStrategy{retry: service.RetryPolicy{Attempts: o.HandlerAttempts, Base: o.HandlerBackoff,
		Max: 64 * o.HandlerBackoff, Seed: uint64(o.Seed)}, timeouts: o.TimeoutsDelivered}
}

// Promise is sync's, but for mail: retrying a send that timed out but was delivered mails it
// twice, so sync-retry promises at-most-once mail only without such timeouts. Publication stays
// at most once (the publisher never times out).
func (s *syncRetryStrategy) Promise() Promise {
	p := s.syncStrategy.Promise()
	p.NoDuplicate = !s.timeouts
	return p
}

// Middleware retries every handler by the policy.
func (s *syncRetryStrategy) Middleware() []service.Middleware {
	return []service.Middleware{service.Retry(s.retry)}
}
