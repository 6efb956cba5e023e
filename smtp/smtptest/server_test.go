package smtptest_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/stockbus/stockbus/smtp/smtptest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func start(t *testing.T, cfg smtptest.Config) *smtptest.Server {
	t.Helper()
	s, err := smtptest.Start(cfg)
	require.NoError(t, err, "Start")
	t.Cleanup(func() { assert.NoError(t, s.Close(), "Close") })
	return s
}

// send sends one message with the Message-ID <id@test> over a new connection. A timeout of 0
// keeps go-smtp's own timeouts.
func send(addr, id string, timeout time.Duration) error {
	c, err := gosmtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if timeout > 0 {
		c.CommandTimeout, c.SubmissionTimeout = timeout, timeout
	}
	data := "From: a@example.com\r\nTo: b@example.com\r\nMessage-ID: <" + id + "@test>\r\nSubject: hi\r\n\r\nbody of " + id + "\r\n"
	if err := c.SendMail("a@example.com", []string{"b@example.com"}, strings.NewReader(data)); err != nil {
		return err
	}
	return c.Quit()
}

func code(err error) int {
	var se *gosmtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

func TestServerRecordsEveryMessage(t *testing.T) {
	s := start(t, smtptest.Config{})
	for _, id := range []string{"m1", "m2"} {
		require.NoError(t, send(s.Addr(), id, 0), "send %s", id)
	}
	got := s.Messages()
	require.Len(t, got, 2)
	assert.Equal(t, got, s.Delivered())
	for i, m := range got {
		assert.Equal(t, i, m.Index)
		assert.Equal(t, "a@example.com", m.From)
		assert.Equal(t, []string{"b@example.com"}, m.To)
		assert.Equal(t, fmt.Sprintf("<m%d@test>", i+1), m.MessageID)
		assert.False(t, m.TLS)
		assert.Equal(t, smtptest.Delivered, m.Outcome)
		msg, err := m.Parse()
		require.NoError(t, err)
		assert.Equal(t, "hi", msg.Header.Get("Subject"))
	}
	assert.Equal(t, 2, s.Transactions())
}

func TestServerDedupDropsRepeatsByMessageID(t *testing.T) {
	for _, tc := range []struct {
		name  string
		dedup bool
		want  []smtptest.Outcome
	}{
		{"with dedup", true, []smtptest.Outcome{smtptest.Delivered, smtptest.Delivered, smtptest.Duplicate, smtptest.Duplicate}},
		{"without", false, []smtptest.Outcome{smtptest.Delivered, smtptest.Delivered, smtptest.Delivered, smtptest.Delivered}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, smtptest.Config{Dedup: tc.dedup})
			for _, id := range []string{"a", "b", "a", "a"} {
				require.NoError(t, send(s.Addr(), id, 0), "a repeat is still answered 250")
			}
			var got []smtptest.Outcome
			for _, m := range s.Messages() {
				got = append(got, m.Outcome)
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestServerDedupDoesNotCountARefusedMessage(t *testing.T) {
	s := start(t, smtptest.Config{Dedup: true, Plan: smtptest.Sequence(smtptest.Fault{Reply: smtptest.Transient})})
	require.Equal(t, 451, code(send(s.Addr(), "a", 0)))
	require.NoError(t, send(s.Addr(), "a", 0))
	require.Len(t, s.Delivered(), 1, "the retry of a refused message is delivered")
}

func TestServerInjectsRepliesOnItsPlan(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fault    smtptest.Fault
		wantCode int // the reply code the client sees; 0: no reply
		want     []smtptest.Outcome
	}{
		{"451 to the data", smtptest.Fault{Reply: smtptest.Transient}, 451, []smtptest.Outcome{smtptest.Refused}},
		{"550 to the data", smtptest.Fault{Reply: smtptest.Permanent}, 550, []smtptest.Outcome{smtptest.Refused}},
		{"a closed connection after the data", smtptest.Fault{Reply: smtptest.Close}, 0, []smtptest.Outcome{smtptest.Refused}},
		{"451 to MAIL FROM", smtptest.Fault{At: smtptest.AtMail, Reply: smtptest.Transient}, 451, nil},
		{"550 to MAIL FROM", smtptest.Fault{At: smtptest.AtMail, Reply: smtptest.Permanent}, 550, nil},
		{"a closed connection at MAIL FROM", smtptest.Fault{At: smtptest.AtMail, Reply: smtptest.Close}, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, smtptest.Config{Plan: smtptest.Sequence(tc.fault)})
			err := send(s.Addr(), "a", 0)
			require.Error(t, err, "send meeting %+v", tc.fault)
			assert.Equal(t, tc.wantCode, code(err), "reply code of %v", err)
			var got []smtptest.Outcome
			for _, m := range s.Messages() {
				got = append(got, m.Outcome)
			}
			assert.Equal(t, tc.want, got, "outcomes")
			assert.Empty(t, s.Delivered())

			require.NoError(t, send(s.Addr(), "b", 0), "the next transaction, past the plan")
			assert.Len(t, s.Delivered(), 1)
		})
	}
}

func TestServerSlowReplyStillDelivers(t *testing.T) {
	s := start(t, smtptest.Config{Plan: smtptest.Sequence(smtptest.Fault{Delay: time.Millisecond},
		smtptest.Fault{At: smtptest.AtMail, Delay: time.Millisecond})})
	require.NoError(t, send(s.Addr(), "a", 0))
	require.NoError(t, send(s.Addr(), "b", 0))
	assert.Len(t, s.Delivered(), 2)
}

func TestServerHangGivesNoReply(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault smtptest.Fault
		want  []smtptest.Outcome
	}{
		{"after taking the message", smtptest.Fault{Hang: true}, []smtptest.Outcome{smtptest.Delivered}},
		{"after reading and dropping the message", smtptest.Fault{Reply: smtptest.Close, Hang: true}, []smtptest.Outcome{smtptest.Refused}},
		{"at MAIL FROM", smtptest.Fault{At: smtptest.AtMail, Hang: true}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, smtptest.Config{Plan: smtptest.Sequence(tc.fault)})
			// The hang has no end of its own, so the client's timeout is what ends the send.
			err := send(s.Addr(), "a", 500*time.Millisecond)
			require.Error(t, err)
			assert.Zero(t, code(err), "no reply code: %v", err)
			var got []smtptest.Outcome
			for _, m := range s.Messages() {
				got = append(got, m.Outcome)
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestServerCloseEndsDelaysAndHangs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault smtptest.Fault
	}{
		{"a delay", smtptest.Fault{At: smtptest.AtMail, Delay: time.Hour}},
		{"a hang", smtptest.Fault{Hang: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reached := make(chan struct{}, 1)
			s, err := smtptest.Start(smtptest.Config{Plan: func(int) smtptest.Fault { reached <- struct{}{}; return tc.fault }})
			require.NoError(t, err)
			done := make(chan error, 1)
			go func() { done <- send(s.Addr(), "a", 0) }()
			<-reached
			require.NoError(t, s.Close(), "Close while a transaction waits")
			assert.Error(t, <-done, "the client's send, cut off")
			assert.NoError(t, s.Close(), "a second Close")
			assert.Error(t, send(s.Addr(), "b", 0), "a send to a closed server")
		})
	}
}

func TestServerCountsTransactionsAcrossConnections(t *testing.T) {
	var seen []int
	plan := func(n int) smtptest.Fault { seen = append(seen, n); return smtptest.Fault{} } // sends are sequential here
	s := start(t, smtptest.Config{Plan: plan})
	c, err := gosmtp.Dial(s.Addr())
	require.NoError(t, err)
	defer c.Close()
	for _, id := range []string{"a", "b"} {
		require.NoError(t, c.SendMail("a@example.com", []string{"b@example.com"},
			strings.NewReader("Message-ID: <"+id+"@test>\r\n\r\nx\r\n")), "two transactions on one connection")
	}
	require.NoError(t, c.Quit())
	require.NoError(t, send(s.Addr(), "c", 0))
	assert.Equal(t, []int{0, 1, 2}, seen)
	assert.Equal(t, 3, s.Transactions())
}

func TestServerOffersSTARTTLS(t *testing.T) {
	serverTLS, clientTLS, err := smtptest.SelfSigned()
	require.NoError(t, err)
	s := start(t, smtptest.Config{TLS: serverTLS})
	cfg := clientTLS.Clone()
	cfg.ServerName = "127.0.0.1"
	c, err := gosmtp.DialStartTLS(s.Addr(), cfg)
	require.NoError(t, err, "STARTTLS with the self-signed certificate")
	defer c.Close()
	require.NoError(t, c.SendMail("a@example.com", []string{"b@example.com"}, strings.NewReader("Subject: x\r\n\r\ny\r\n")))
	require.NoError(t, c.Quit())
	got := s.Delivered()
	require.Len(t, got, 1)
	assert.True(t, got[0].TLS, "the message came over TLS")

	untrusting, err := gosmtp.DialStartTLS(s.Addr(), &tls.Config{ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	require.NoError(t, err, "STARTTLS itself; the handshake comes with the next command")
	defer untrusting.Close()
	var verr *tls.CertificateVerificationError
	assert.ErrorAs(t, untrusting.SendMail("a@example.com", []string{"b@example.com"}, strings.NewReader("x\r\n")), &verr,
		"a client that does not trust the certificate")
	assert.Len(t, s.Delivered(), 1)
}

func TestDrawIsSeededAndKeepsItsProportions(t *testing.T) {
	choices := []smtptest.Choice{{P: 0.2, Fault: smtptest.Fault{Reply: smtptest.Transient}}, {P: 0.1, Fault: smtptest.Fault{Reply: smtptest.Permanent}}}
	faults := func(seed uint64) []smtptest.Reply {
		p, err := smtptest.Draw(seed, choices...)
		require.NoError(t, err)
		var got []smtptest.Reply
		for n := range 2000 {
			got = append(got, p(n).Reply)
		}
		return got
	}
	a := faults(1)
	assert.Equal(t, a, faults(1), "same seed, same plan")
	assert.NotEqual(t, a, faults(2), "another seed, another plan")
	count := map[smtptest.Reply]int{}
	for _, r := range a {
		count[r]++
	}
	assert.InDelta(t, 400, count[smtptest.Transient], 80, "451s at p=0.2 of 2000")
	assert.InDelta(t, 200, count[smtptest.Permanent], 60, "550s at p=0.1 of 2000")
}

func TestDrawRejectsBadProbabilities(t *testing.T) {
	for _, tc := range []struct {
		name string
		ps   []float64
	}{
		{"negative", []float64{-0.1}},
		{"above one", []float64{1.5}},
		{"adding up to more than one", []float64{0.6, 0.6}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cs []smtptest.Choice
			for _, p := range tc.ps {
				cs = append(cs, smtptest.Choice{P: p})
			}
			p, err := smtptest.Draw(1, cs...)
			assert.ErrorIs(t, err, smtptest.ErrBadChoices)
			assert.Nil(t, p)
		})
	}
}

func TestServerAnswersAnInvalidFaultWith554(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault smtptest.Fault
	}{
		{"an unknown stage", smtptest.Fault{At: 7}},
		{"an unknown reply", smtptest.Fault{Reply: 9}},
		{"a negative delay", smtptest.Fault{Delay: -time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, smtptest.Config{Plan: smtptest.Sequence(tc.fault)})
			err := send(s.Addr(), "a", 0)
			assert.Equal(t, 554, code(err), "reply to %+v: %v", tc.fault, err)
			assert.ErrorContains(t, err, "invalid fault")
			assert.Empty(t, s.Messages())
			require.NoError(t, send(s.Addr(), "b", 0), "the next transaction")
		})
	}
}

func TestServerGivesConcurrentTransactionsThePlansFaults(t *testing.T) {
	const n = 40
	plan, err := smtptest.Draw(3, smtptest.Choice{P: 0.3, Fault: smtptest.Fault{Reply: smtptest.Transient}})
	require.NoError(t, err)
	want := 0
	for i := range n {
		if plan(i).Reply == smtptest.Transient {
			want++
		}
	}
	require.NotZero(t, want, "the seed draws some 451s")
	s := start(t, smtptest.Config{Plan: plan})
	var wg sync.WaitGroup
	refused := make(chan bool, n)
	for i := range n {
		wg.Go(func() { refused <- code(send(s.Addr(), fmt.Sprint("m", i), 0)) == 451 })
	}
	wg.Wait()
	close(refused)
	got := 0
	for r := range refused {
		if r {
			got++
		}
	}
	assert.Equal(t, want, got, "451s the clients saw")
	outcomes := map[smtptest.Outcome]int{}
	for _, m := range s.Messages() {
		outcomes[m.Outcome]++
		assert.Equal(t, plan(m.Index).Reply == smtptest.Transient, m.Outcome == smtptest.Refused, "message %d", m.Index)
	}
	assert.Equal(t, map[smtptest.Outcome]int{smtptest.Refused: want, smtptest.Delivered: n - want}, outcomes)
}

// Quits counts the sessions a client ended with QUIT, and no session that ended otherwise:
// the client hanging up, the server dropping it, a Close fault, the server closing, or the
// plaintext session STARTTLS replaces.
func TestServerCountsTheSessionsEndedByQUIT(t *testing.T) {
	serverTLS, clientTLS, err := smtptest.SelfSigned()
	require.NoError(t, err)
	clientTLS.ServerName = "127.0.0.1"
	mail := func(c *gosmtp.Client) error {
		return c.SendMail("a@example.com", []string{"b@example.com"}, strings.NewReader("Subject: x\r\n\r\ny\r\n"))
	}
	mailThen := func(end func(*gosmtp.Client) error) func(*smtptest.Server, *gosmtp.Client) error {
		return func(_ *smtptest.Server, c *gosmtp.Client) error { return errors.Join(mail(c), end(c)) }
	}
	quit, hangUp := mailThen((*gosmtp.Client).Quit), mailThen((*gosmtp.Client).Close)
	for _, tc := range []struct {
		name  string
		plan  smtptest.Plan
		tls   uint16                                       // the TLS version the client insists on after STARTTLS (0: plaintext)
		after func(*smtptest.Server, *gosmtp.Client) error // on a client that said EHLO (after STARTTLS with tls)
		want  int
	}{
		{"QUIT after a mail", nil, 0, quit, 1},
		{"QUIT with no mail", nil, 0, func(_ *smtptest.Server, c *gosmtp.Client) error { return c.Quit() }, 1},
		{"QUIT after STARTTLS and a mail", nil, tls.VersionTLS13, quit, 1},
		// Over TLS 1.2 the server writes last in the handshake, just before STARTTLS ends the
		// plaintext session.
		{"QUIT after STARTTLS with TLS 1.2", nil, tls.VersionTLS12, quit, 1},
		{"the client hangs up after a mail", nil, 0, hangUp, 0},
		{"the client hangs up after STARTTLS and a mail", nil, tls.VersionTLS13, hangUp, 0},
		{"the server drops the session", nil, 0, func(s *smtptest.Server, c *gosmtp.Client) error {
			s.DropConnections()
			assert.Error(t, c.Quit(), "QUIT on a dropped session")
			return nil
		}, 0},
		{"a Close fault", smtptest.Sequence(smtptest.Fault{Reply: smtptest.Close}), 0, func(_ *smtptest.Server, c *gosmtp.Client) error {
			assert.Error(t, mail(c), "a mail the plan closes the connection on")
			return nil
		}, 0},
		{"the server closes with the session open", nil, 0, func(*smtptest.Server, *gosmtp.Client) error { return nil }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := smtptest.Config{Plan: tc.plan}
			if tc.tls != 0 {
				cfg.TLS = serverTLS
			}
			s := start(t, cfg)
			var c *gosmtp.Client
			var err error
			if tc.tls != 0 {
				ct := clientTLS.Clone()
				ct.MinVersion, ct.MaxVersion = tc.tls, tc.tls
				c, err = gosmtp.DialStartTLS(s.Addr(), ct)
			} else {
				c, err = gosmtp.Dial(s.Addr())
			}
			require.NoError(t, err, "dial")
			defer c.Close()
			require.NoError(t, c.Hello("localhost"), "EHLO")
			require.NoError(t, tc.after(s, c))
			require.NoError(t, s.Close(), "Close, which waits for every session to end")
			assert.Equal(t, tc.want, s.Quits(), "Quits after Close")
		})
	}
}
