package fakes_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/fakes"
)

func TestMailerTimeoutGivesUpAndMayHaveDelivered(t *testing.T) {
	for _, tc := range []struct {
		name      string
		delivered float64
		wantMails int
	}{
		{"the server never got it", 0, 0},
		{"the server accepted it anyway", 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := fakes.NewMailer(fakes.WithLatency(fakes.Fixed(time.Hour)), fakes.WithTimeout(time.Millisecond, tc.delivered))
			err := m.Send(ctx, mail("a")) // returns after the timeout, not the drawn hour
			require.ErrorIs(t, err, fakes.ErrSendTimeout)
			var te *fakes.TimeoutError
			require.ErrorAs(t, err, &te)
			assert.Equal(t, time.Millisecond, te.After)
			assert.Equal(t, tc.wantMails == 1, te.Delivered, "the error tells the simulator what the server did")
			assert.Equal(t, "mail send timed out after 1ms", err.Error())
			assert.Equal(t, tc.wantMails, m.Len())
			s := m.Stats()
			assert.Equal(t, 1, s.TimedOut)
			assert.Equal(t, tc.wantMails, s.TimedOutDelivered)
			assert.Equal(t, tc.wantMails, s.Delivered)
			assert.Zero(t, s.Failed, "a timeout is not counted as an injected failure")
		})
	}
}

func TestMailerTimeoutSparesFastSends(t *testing.T) {
	m := fakes.NewMailer(fakes.WithLatency(fakes.Fixed(0)), fakes.WithTimeout(time.Millisecond, 0))
	require.NoError(t, m.Send(ctx, mail("a")))
	assert.Equal(t, 1, m.Len())
	assert.Zero(t, m.Stats().TimedOut)

	none := fakes.NewMailer(fakes.WithLatency(fakes.Fixed(2*time.Millisecond)), fakes.WithTimeout(0, 0))
	require.NoError(t, none.Send(ctx, mail("a")), "a timeout of 0 is none")
}

func TestMailerTimeoutAndFailureTogetherDeliverNothing(t *testing.T) {
	m := fakes.NewMailer(fakes.WithLatency(fakes.Fixed(time.Hour)), fakes.WithTimeout(time.Microsecond, 1), fakes.WithErrorRate(1))
	err := m.Send(ctx, mail("a"))
	var te *fakes.TimeoutError
	require.ErrorAs(t, err, &te)
	assert.False(t, te.Delivered, "a send the error rate failed is never accepted")
	assert.Zero(t, m.Len())
}

func TestMailerTimeoutDeliveryIsSeededAndDeduplicated(t *testing.T) {
	outcomes := func(seed uint64) (got []bool) {
		m := fakes.NewMailer(fakes.WithLatency(fakes.Uniform(0, 20*time.Microsecond)), fakes.WithTimeout(10*time.Microsecond, 0.5), fakes.WithSeed(seed))
		for i := range 100 {
			err := m.Send(ctx, mail(fmt.Sprint(i)))
			var te *fakes.TimeoutError
			got = append(got, err == nil || errors.As(err, &te) && te.Delivered)
		}
		return got
	}
	assert.Equal(t, outcomes(7), outcomes(7), "same seed, same timeouts and deliveries")
	assert.NotEqual(t, outcomes(7), outcomes(8))

	m := fakes.NewMailer(fakes.WithLatency(fakes.Fixed(time.Hour)), fakes.WithTimeout(time.Microsecond, 1), fakes.WithDedup())
	require.ErrorIs(t, m.Send(ctx, mail("a")), fakes.ErrSendTimeout)
	require.ErrorIs(t, m.Send(ctx, mail("a")), fakes.ErrSendTimeout)
	assert.Equal(t, 1, m.Len(), "the repeat of a timed-out but delivered send is de-duplicated")
	assert.Equal(t, []string{"a"}, m.DedupHits())
}

func TestMailerHealStopsFailuresAndTimeouts(t *testing.T) {
	m := fakes.NewMailer(fakes.WithErrorRate(1), fakes.WithLatency(fakes.Fixed(time.Millisecond)), fakes.WithTimeout(time.Microsecond, 0))
	require.Error(t, m.Send(ctx, mail("a")))
	m.Heal()
	require.NoError(t, m.Send(ctx, mail("b")), "a healed mailer delivers")
	assert.Equal(t, 1, m.Len())
	s := m.Stats()
	assert.Equal(t, 1, s.TimedOut, "only the send before Heal")
	assert.GreaterOrEqual(t, s.LatencyMax, time.Millisecond, "a healed send still takes its latency")
}
