package service_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/stockbus/stockbus/service"
)

func TestMailRetryableFollowsTheCategories(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"no error", nil, false},
		{"transient", fmt.Errorf("send: %w", service.ErrMailTransient), true},
		{"permanent", fmt.Errorf("send: %w", service.ErrMailPermanent), false},
		{"unknown outcome", fmt.Errorf("send: %w", service.ErrMailUnknown), true},
		{"cancelled", fmt.Errorf("send: %w", context.Canceled), false},
		{"caller's deadline", context.DeadlineExceeded, false},
		{"cancelled after the mail was handed over", fmt.Errorf("send: %w: %w", context.Canceled, service.ErrMailUnknown), false},
		{"uncategorized", errors.New("disk full"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, service.MailRetryable(tc.err), "MailRetryable(%v)", tc.err)
		})
	}
}

func TestMailRetryableFitsRetry(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       error
		wantCalls int
	}{
		{"transient failures are retried", service.ErrMailTransient, 3},
		{"a permanent failure is not", service.ErrMailPermanent, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &flaky{n: 2, err: tc.err}
			p := quick
			p.Retryable = service.MailRetryable
			err := service.Retry(p)(f.handle)(context.Background(), oos("e1"))
			assert.Equal(t, tc.wantCalls, f.calls, "handler calls for %v", tc.err)
			if tc.wantCalls == 1 {
				assert.ErrorIs(t, err, service.ErrMailPermanent)
			} else {
				assert.NoError(t, err)
			}
		})
	}
}
