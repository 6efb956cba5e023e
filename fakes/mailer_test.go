package fakes_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/service"
)

func mail(id string) service.Mail {
	return service.Mail{To: "stock@made.com", Body: "Out of stock for " + id,
		Cause: domain.OutOfStock{Meta: domain.Meta{ID: id}, SKU: id}}
}

func TestMailerCapturesMailsInOrder(t *testing.T) {
	m := fakes.NewMailer()
	for _, id := range []string{"a", "b", "c"} {
		require.NoError(t, m.Send(ctx, mail(id)))
	}
	require.NoError(t, m.Send(ctx, service.Mail{To: "someone@else", Body: "hi"}))
	assert.Equal(t, []string{"Out of stock for a", "Out of stock for b", "Out of stock for c"}, m.To("stock@made.com"))
	assert.Equal(t, 4, m.Len())
	mails := m.Mails()
	assert.Equal(t, "b", mails[1].Cause.Identity().ID)
	mails[0].Body = "changed"
	assert.Equal(t, "Out of stock for a", m.Mails()[0].Body, "Mails returns a copy")
}

func TestMailerIsSafeForConcurrentUse(t *testing.T) {
	m := fakes.NewMailer(fakes.WithLatency(fakes.Uniform(0, 50*time.Microsecond)), fakes.WithErrorRate(0.2))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				_ = m.Send(ctx, mail(fmt.Sprintf("%d-%d", g, i)))
				_ = m.Len()
			}
		})
	}
	wg.Wait()
	s := m.Stats()
	assert.Equal(t, 400, s.Sends)
	assert.Equal(t, 400, s.Delivered+s.Failed)
	assert.Equal(t, s.Delivered, m.Len())
}

func TestMailerErrorRateIsSeeded(t *testing.T) {
	outcomes := func(seed uint64) []bool {
		m := fakes.NewMailer(fakes.WithErrorRate(0.3), fakes.WithSeed(seed))
		var got []bool
		for i := range 200 {
			got = append(got, m.Send(ctx, mail(fmt.Sprint(i))) == nil)
		}
		return got
	}
	a, b := outcomes(42), outcomes(42)
	assert.Equal(t, a, b, "same seed, same failures")
	assert.NotEqual(t, a, outcomes(43))
	failed := 0
	for _, ok := range a {
		if !ok {
			failed++
		}
	}
	assert.InDelta(t, 60, failed, 25, "failures at p=0.3 of 200")
}

func TestMailerFailedSendDeliversNothing(t *testing.T) {
	m := fakes.NewMailer(fakes.WithErrorRate(1))
	err := m.Send(ctx, mail("a"))
	require.ErrorIs(t, err, fakes.ErrMailFailed)
	assert.Zero(t, m.Len())
	assert.Equal(t, 1, m.Stats().Failed)
}

func TestMailerDedupDeliversOncePerEvent(t *testing.T) {
	m := fakes.NewMailer(fakes.WithDedup())
	for _, id := range []string{"a", "b", "a", "a"} {
		require.NoError(t, m.Send(ctx, mail(id)))
	}
	assert.Equal(t, []string{"Out of stock for a", "Out of stock for b"}, m.To("stock@made.com"))
	assert.Equal(t, 2, m.Stats().DedupHits)
	assert.Equal(t, []string{"a", "a"}, m.DedupHits())

	plain := fakes.NewMailer()
	for _, id := range []string{"a", "a"} {
		require.NoError(t, plain.Send(ctx, mail(id)))
	}
	assert.Equal(t, 2, plain.Len(), "without dedup every send is delivered")
}

func TestMailerMeasuresTheLatencyItReallyTook(t *testing.T) {
	m := fakes.NewMailer(fakes.WithLatency(fakes.Fixed(2 * time.Millisecond)))
	for i := range 3 {
		require.NoError(t, m.Send(ctx, mail(fmt.Sprint(i))))
	}
	s := m.Stats()
	assert.Equal(t, 3, s.Delayed)
	assert.GreaterOrEqual(t, s.MeanLatency(), 2*time.Millisecond, "a timer never fires early")
	assert.GreaterOrEqual(t, s.LatencyMax, s.MeanLatency())
	assert.Zero(t, fakes.MailerStats{}.MeanLatency())
}

func TestMailerStopsWaitingWhenTheContextEnds(t *testing.T) {
	m := fakes.NewMailer(fakes.WithLatency(fakes.Fixed(time.Hour)))
	cctx, cancel := context.WithCancel(ctx)
	go cancel()
	err := m.Send(cctx, mail("a"))
	require.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, m.Len())
	require.ErrorIs(t, m.Send(cctx, mail("b")), context.Canceled, "a send on a done context")
}

func TestLatencyDistributions(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	assert.Equal(t, 3*time.Millisecond, fakes.Fixed(3*time.Millisecond)(r))
	for range 1000 {
		d := fakes.Uniform(time.Millisecond, 2*time.Millisecond)(r)
		require.True(t, d >= time.Millisecond && d <= 2*time.Millisecond, "uniform draw %v", d)
	}
	assert.Equal(t, time.Millisecond, fakes.Uniform(time.Millisecond, time.Millisecond)(r))
	var sum time.Duration
	for range 20000 {
		d := fakes.Exponential(time.Millisecond)(r)
		require.GreaterOrEqual(t, d, time.Duration(0))
		sum += d
	}
	assert.InDelta(t, float64(time.Millisecond), float64(sum/20000), float64(50*time.Microsecond), "exponential mean")
}

// A mailer that keeps records only records what one that keeps the mails does, and counts and
// de-duplicates the same, but hands back no mails it did not keep.
func TestMailerKeepingRecordsRecordsEveryMail(t *testing.T) {
	mails := []service.Mail{
		{To: "a@x", Subject: "s", Body: "one", Cause: domain.OutOfStock{Meta: domain.Meta{ID: "e0-1"}, SKU: "LAMP"}},
		{To: "b@x", Subject: "s", Body: "two", Cause: domain.OutOfStock{Meta: domain.Meta{ID: "e0-2"}, SKU: "LAMP"}},
		{To: "a@x", Subject: "s", Body: "one again", Cause: domain.OutOfStock{Meta: domain.Meta{ID: "e0-1"}, SKU: "LAMP"}},
		{To: "a@x", Body: "no cause"},
	}
	want := []fakes.MailRecord{{To: "a@x", Body: "one", EventID: "e0-1"}, {To: "b@x", Body: "two", EventID: "e0-2"},
		{To: "a@x", Body: "one again", EventID: "e0-1"}, {To: "a@x", Body: "no cause"}}
	rows := []struct {
		name    string
		opts    []fakes.MailerOption
		records []fakes.MailRecord
		mails   int
	}{
		{"keeping the mails", nil, want, len(mails)},
		{"keeping records", []fakes.MailerOption{fakes.KeepRecords()}, want, 0},
		{"keeping records, de-duplicating", []fakes.MailerOption{fakes.KeepRecords(), fakes.WithDedup()},
			[]fakes.MailRecord{want[0], want[1], want[3]}, 0},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			m := fakes.NewMailer(row.opts...)
			for _, mail := range mails {
				require.NoError(t, m.Send(context.Background(), mail))
			}
			assert.Equal(t, row.records, m.Records())
			assert.Len(t, m.Mails(), row.mails)
			assert.Equal(t, len(row.records), m.Len())
			var toA []string
			for _, r := range row.records {
				if r.To == "a@x" {
					toA = append(toA, r.Body)
				}
			}
			assert.Equal(t, toA, m.To("a@x"))
		})
	}
}
