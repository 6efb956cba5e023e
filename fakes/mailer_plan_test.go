package fakes_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/service"
)

func TestMailerErrorsFallInTheServiceCategories(t *testing.T) {
	categories := []error{service.ErrMailTransient, service.ErrMailPermanent, service.ErrMailUnknown}
	for _, tc := range []struct {
		name string
		err  error
		want error
		text string
	}{
		{"an injected failure is transient", fakes.ErrMailFailed, service.ErrMailTransient, "mail send failed"},
		{"a rejection is permanent", fakes.ErrMailRejected, service.ErrMailPermanent, "mail rejected"},
		{"a timeout's outcome is unknown", &fakes.TimeoutError{After: time.Second}, service.ErrMailUnknown, "mail send timed out after 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, c := range categories {
				assert.Equal(t, c == tc.want, errors.Is(tc.err, c), "errors.Is(%v, %v)", tc.err, c)
			}
			assert.EqualError(t, tc.err, tc.text)
		})
	}
	assert.ErrorIs(t, fmt.Errorf("handler: %w", fakes.ErrMailFailed), fakes.ErrMailFailed, "the sentinel still matches itself")
}

// plan is a fault plan that gives send n faults[n], and NoFault past the end.
func plan(faults ...fakes.Fault) fakes.MailerOption {
	return fakes.WithFaultPlan(func(n int) fakes.Fault {
		if n < len(faults) {
			return faults[n]
		}
		return fakes.NoFault
	})
}

func TestMailerFaultPlanDecidesEachSend(t *testing.T) {
	m := fakes.NewMailer(fakes.WithTimeout(time.Millisecond, 0),
		plan(fakes.FailTransient, fakes.FailPermanent, fakes.TimeoutLost, fakes.TimeoutDelivered, fakes.NoFault))
	var errs []error
	for i := range 5 {
		errs = append(errs, m.Send(ctx, mail(fmt.Sprint(i))))
	}
	assert.ErrorIs(t, errs[0], fakes.ErrMailFailed)
	assert.ErrorIs(t, errs[1], fakes.ErrMailRejected)
	for i, delivered := range map[int]bool{2: false, 3: true} {
		var te *fakes.TimeoutError
		require.ErrorAs(t, errs[i], &te, "send %d", i)
		assert.Equal(t, delivered, te.Delivered, "send %d delivered", i)
		assert.Equal(t, time.Millisecond, te.After)
	}
	assert.NoError(t, errs[4])
	assert.Equal(t, []string{"Out of stock for 3", "Out of stock for 4"}, m.To(service.StockAddress))
	s := m.Stats()
	assert.Equal(t, fakes.MailerStats{Sends: 5, Delivered: 2, Failed: 1, Rejected: 1, TimedOut: 2, TimedOutDelivered: 1,
		Delayed: 2, LatencyTotal: s.LatencyTotal, LatencyMax: s.LatencyMax}, s)
}

func TestMailerFaultPlanKeepsTheSeededDraws(t *testing.T) {
	outcomes := func(opts ...fakes.MailerOption) []bool {
		m := fakes.NewMailer(append([]fakes.MailerOption{fakes.WithErrorRate(0.5), fakes.WithSeed(7)}, opts...)...)
		var got []bool
		for i := range 50 {
			got = append(got, m.Send(ctx, mail(fmt.Sprint(i))) == nil)
		}
		return got
	}
	plain, planned := outcomes(), outcomes(plan(fakes.FailPermanent, fakes.FailPermanent))
	assert.Equal(t, []bool{false, false}, planned[:2], "the planned sends")
	assert.Equal(t, plain[2:], planned[2:], "the sends after the plan draw as without it")
}

func TestMailerHealStopsTheFaultPlan(t *testing.T) {
	m := fakes.NewMailer(plan(fakes.FailPermanent, fakes.FailPermanent))
	require.ErrorIs(t, m.Send(ctx, mail("a")), fakes.ErrMailRejected)
	m.Heal()
	assert.NoError(t, m.Send(ctx, mail("b")), "a send after Heal, planned to fail")
}

func TestMailerHangWaitsForTheContext(t *testing.T) {
	hung := make(chan struct{}, 1)
	m := fakes.NewMailer(fakes.WithFaultPlan(func(int) fakes.Fault { hung <- struct{}{}; return fakes.Hang }))
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Send(cctx, mail("a")) }()
	<-hung
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)
	assert.Zero(t, m.Len())
	assert.Equal(t, 1, m.Stats().Hung)
}

func TestMailerFaultPlanWithAnUnknownFaultFailsTheSend(t *testing.T) {
	m := fakes.NewMailer(plan(fakes.Fault(42)))
	err := m.Send(ctx, mail("a"))
	assert.ErrorContains(t, err, "unknown fault 42")
	assert.Zero(t, m.Len())
	assert.NoError(t, m.Send(ctx, mail("b")), "the next send, past the plan")
}
