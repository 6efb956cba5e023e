// Package smtp is a service.Mailer that sends mail over SMTP, reusing a small pool of idle
// sessions between sends, with a
// connect and a send timeout, optional STARTTLS, and a Message-ID derived from the mail's cause
// event so that a receiver can drop repeats. Its errors fall in the service layer's categories
// (service.ErrMailTransient, service.ErrMailPermanent, service.ErrMailUnknown).
//
// It speaks SMTP through github.com/emersion/go-smtp's client: the module needs go-smtp for its
// test server anyway, and unlike the frozen net/smtp its client gives a reply's code and enhanced
// code as a typed error.
package smtp

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/stockbus/stockbus/service"
)

// Defaults of a Config's zero fields.
const (
	DefaultConnectTimeout = 10 * time.Second
	DefaultSendTimeout    = 30 * time.Second
	DefaultDomain         = "stockbus.invalid"
	DefaultMaxIdle        = 4
	DefaultIdleTimeout    = 30 * time.Second
)

// Config configures a Mailer.
type Config struct {
	// Addr is the SMTP server's host:port.
	Addr string
	// From is the envelope sender and the From header, an address such as "stockbus@example.com".
	From string
	// ConnectTimeout bounds the TCP connect (0: DefaultConnectTimeout).
	ConnectTimeout time.Duration
	// SendTimeout bounds the rest of one send, from the server's greeting to its reply to the
	// mail's data (0: DefaultSendTimeout).
	SendTimeout time.Duration
	// TLS, when set, makes every send switch to TLS with STARTTLS before MAIL FROM, and fail for
	// good if the server does not offer it. An empty ServerName is taken from Addr's host.
	TLS *tls.Config
	// Domain is the right-hand side of the Message-IDs (empty: DefaultDomain).
	Domain string
	// Now is the clock of the Date header and of IdleTimeout (nil: time.Now).
	Now func() time.Time
	// MaxIdle is how many idle sessions the mailer keeps open for later sends (0: DefaultMaxIdle;
	// negative: none, every send opens and quits its own connection). It bounds idle sessions
	// only: concurrent sends open as many connections as they need.
	MaxIdle int
	// IdleTimeout is how long an idle session may wait before a send stops reusing it and
	// closes it (0: DefaultIdleTimeout). It is checked when a send looks for a session; no
	// goroutine sweeps the pool.
	IdleTimeout time.Duration
}

// ErrConfig is wrapped by New's error for a Config it cannot send with.
var ErrConfig = errors.New("smtp: bad config")

// ErrBadMail is wrapped by Send's error for a mail that cannot be sent as it is: no cause event
// (so no Message-ID), a recipient that is not an address, a subject that would break the header.
// It wraps service.ErrMailPermanent.
var ErrBadMail = fmt.Errorf("smtp: bad mail: %w", service.ErrMailPermanent)

// ErrClosed is wrapped by Send's error once Close has been called. It wraps
// service.ErrMailPermanent: no retry on this mailer can succeed.
var ErrClosed = fmt.Errorf("smtp: mailer closed: %w", service.ErrMailPermanent)

// Mailer sends mail over SMTP, reusing idle sessions. It is safe for concurrent use. Close it
// when done, to close its idle sessions.
type Mailer struct {
	addr, from    string
	connect, send time.Duration
	tls           *tls.Config
	domain        string
	now           func() time.Time
	maxIdle       int
	idleTimeout   time.Duration

	mu     sync.Mutex
	idle   []*session // oldest first
	closed bool
}

// session is one SMTP connection, owned by one send at a time or idle in the pool.
type session struct {
	raw       net.Conn
	conn      *limitConn
	c         *gosmtp.Client // nil until the send that dialled it has started the conversation
	idleSince time.Time
}

func (s *session) close() {
	if s.c != nil {
		_ = s.c.Close()
		return
	}
	_ = s.raw.Close()
}

var _ service.Mailer = (*Mailer)(nil)

// New returns a mailer for cfg, or an error wrapping ErrConfig.
func New(cfg Config) (*Mailer, error) {
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil || host == "" || port == "" {
		return nil, fmt.Errorf("%w: address %q is not host:port", ErrConfig, cfg.Addr)
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil || from.Name != "" || from.Address != cfg.From {
		return nil, fmt.Errorf("%w: sender %q is not a bare address", ErrConfig, cfg.From)
	}
	if cfg.ConnectTimeout < 0 || cfg.SendTimeout < 0 || cfg.IdleTimeout < 0 {
		return nil, fmt.Errorf("%w: negative timeout", ErrConfig)
	}
	m := &Mailer{addr: cfg.Addr, from: cfg.From, connect: cfg.ConnectTimeout, send: cfg.SendTimeout,
		domain: cfg.Domain, now: cfg.Now, maxIdle: cfg.MaxIdle, idleTimeout: cfg.IdleTimeout}
	switch {
	case m.maxIdle == 0:
		m.maxIdle = DefaultMaxIdle
	case m.maxIdle < 0:
		m.maxIdle = 0
	}
	if m.idleTimeout == 0 {
		m.idleTimeout = DefaultIdleTimeout
	}
	if m.connect == 0 {
		m.connect = DefaultConnectTimeout
	}
	if m.send == 0 {
		m.send = DefaultSendTimeout
	}
	if m.domain == "" {
		m.domain = DefaultDomain
	}
	if !isDotAtom(m.domain) {
		return nil, fmt.Errorf("%w: Message-ID domain %q", ErrConfig, m.domain)
	}
	if m.now == nil {
		m.now = time.Now
	}
	if cfg.TLS != nil {
		m.tls = cfg.TLS.Clone()
		if m.tls.ServerName == "" {
			m.tls.ServerName = host
		}
	}
	return m, nil
}

// MessageID is the Message-ID of every mail caused by the event with the ID, domain being the
// right-hand side: "<ev-12@stockbus.invalid>". IDs map to distinct Message-IDs: letters, digits,
// '-' and '_' stand for themselves, every other byte is written =XX in hex.
func MessageID(eventID, domain string) string {
	var b strings.Builder
	b.WriteByte('<')
	for i := 0; i < len(eventID); i++ {
		c := eventID[i]
		if isIDByte(c) {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "=%02X", c)
		}
	}
	b.WriteByte('@')
	b.WriteString(domain)
	b.WriteByte('>')
	return b.String()
}

// ErrNotOurs is wrapped by EventID's error for a Message-ID that MessageID did not make with
// the domain.
var ErrNotOurs = errors.New("smtp: not a Message-ID of this mailer")

// EventID returns the ID of the event whose mails carry the Message-ID: the inverse of
// MessageID with the same domain, for a receiver that reads what it was sent.
func EventID(messageID, domain string) (string, error) {
	local, ok := strings.CutSuffix(messageID, "@"+domain+">")
	if !ok || !strings.HasPrefix(local, "<") {
		return "", fmt.Errorf("%w: %q (domain %s)", ErrNotOurs, messageID, domain)
	}
	local = local[1:]
	var b strings.Builder
	for i := 0; i < len(local); i++ {
		c := local[i]
		switch {
		case isIDByte(c):
			b.WriteByte(c)
		case c == '=' && i+2 < len(local) && isUpperHex(local[i+1]) && isUpperHex(local[i+2]):
			v, _ := strconv.ParseUint(local[i+1:i+3], 16, 8)
			b.WriteByte(byte(v))
			i += 2
		default:
			return "", fmt.Errorf("%w: %q has %q at %d", ErrNotOurs, messageID, c, i+1)
		}
	}
	return b.String(), nil
}

func isUpperHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'A' && c <= 'F' }

func isIDByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

func isDotAtom(s string) bool {
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if l == "" {
			return false
		}
		for i := 0; i < len(l); i++ {
			if !isIDByte(l[i]) {
				return false
			}
		}
	}
	return true
}

// Send sends the mail over an idle session if one is left from an earlier send, or else over a
// new connection (connect, EHLO, STARTTLS if configured), then MAIL FROM, RCPT TO, DATA. It
// returns nil once the server has accepted the mail. An idle session the server has dropped
// (a network error or a 421 reply to MAIL FROM, when none of the mail has left) is closed and
// the send goes on over another session, so the mail is sent at most once per call.
//
// A failure wraps service.ErrMailTransient (a 4xx reply, or the server could not be reached or
// dropped the connection before the mail's data was complete: nothing was delivered),
// service.ErrMailPermanent (a 5xx reply, a TLS failure, ErrBadMail, ErrClosed) or
// service.ErrMailUnknown (a timeout or a dropped connection after the data was complete, before
// the server's reply); a reply's *gosmtp.SMTPError is wrapped too. When ctx ends the connection
// is closed at once and the error wraps ctx.Err(), beside service.ErrMailUnknown if the data was
// already complete. After a network error, a timeout or a cancellation the session is closed; after
// a 4xx or 5xx reply (but 421) it is reset with RSET and kept.
func (m *Mailer) Send(ctx context.Context, ml service.Mail) error {
	rcpt, msg, err := m.compose(ml)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("smtp: send to %s: %w", m.addr, err)
	}
	var limit time.Time // set when the first conversation starts, kept over a stale session's replacement
	for {
		s, err := m.take()
		if err != nil {
			return err
		}
		if s == nil {
			break
		}
		if stale, err := m.converse(ctx, s, &limit, rcpt, msg); !stale {
			return err
		}
	}
	d := net.Dialer{Timeout: m.connect}
	raw, err := d.DialContext(ctx, "tcp", m.addr)
	if err != nil {
		return m.fail(ctx, false, fmt.Errorf("connect: %w", err))
	}
	_, err = m.converse(ctx, &session{raw: raw, conn: &limitConn{Conn: raw}}, &limit, rcpt, msg)
	return err
}

// converse sends one mail over s, then pools s or closes it. stale reports that s was an idle
// session found broken before any of the mail left, so the send may go on over another.
func (m *Mailer) converse(ctx context.Context, s *session, limit *time.Time, rcpt string, msg []byte) (stale bool, err error) {
	reused := s.c != nil
	if limit.IsZero() {
		*limit = time.Now().Add(m.send)
	}
	s.conn.limit = *limit
	keep := false
	stop := context.AfterFunc(ctx, func() { _ = s.raw.Close() })
	defer func() {
		if stop() && keep {
			m.put(s)
		} else {
			s.close()
		}
	}()
	if err := s.conn.SetDeadline(time.Time{}); err != nil {
		return reused && ctx.Err() == nil, m.fail(ctx, false, err)
	}
	if !reused {
		if m.tls != nil {
			if s.c, err = gosmtp.NewClientStartTLS(s.conn, m.tls); err != nil {
				return false, m.fail(ctx, false, fmt.Errorf("starttls: %w", err))
			}
			// The handshake happens on the first command after STARTTLS.
			if err := s.c.Hello("localhost"); err != nil {
				return false, m.fail(ctx, false, fmt.Errorf("ehlo over tls: %w", err))
			}
		} else {
			s.c = gosmtp.NewClient(s.conn)
		}
	}
	// replied keeps the session after a reply that ended the transaction: RSET makes it ready
	// for the next mail, and a failed RSET closes it.
	replied := func(err error) {
		var reply *gosmtp.SMTPError
		keep = errors.As(err, &reply) && reply.Code != 421 && ctx.Err() == nil && s.c.Reset() == nil
	}
	if err := s.c.Mail(m.from, nil); err != nil {
		if reused && ctx.Err() == nil && isDropped(err) {
			return true, err
		}
		replied(err)
		return false, m.fail(ctx, false, fmt.Errorf("mail from: %w", err))
	}
	if err := s.c.Rcpt(rcpt, nil); err != nil {
		replied(err)
		return false, m.fail(ctx, false, fmt.Errorf("rcpt to: %w", err))
	}
	w, err := s.c.Data()
	if err != nil {
		replied(err)
		return false, m.fail(ctx, false, fmt.Errorf("data: %w", err))
	}
	if _, err := w.Write(msg); err != nil {
		return false, m.fail(ctx, false, fmt.Errorf("data: %w", err))
	}
	// From here the server may have the whole mail, whatever happens to its reply.
	if err := w.Close(); err != nil {
		replied(err)
		return false, m.fail(ctx, true, fmt.Errorf("end of data: %w", err))
	}
	keep = true
	return false, nil
}

// isDropped reports whether err, met at MAIL FROM on an idle session, says the server had
// dropped the session while it was idle.
func isDropped(err error) bool {
	var reply *gosmtp.SMTPError
	if errors.As(err, &reply) {
		return reply.Code == 421
	}
	return isNetwork(err)
}

// take returns an idle session, most recently used first, closing those idle for longer than
// the idle timeout, or nil if there is none. It fails with ErrClosed after Close.
func (m *Mailer) take() (*session, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, fmt.Errorf("smtp: send to %s: %w", m.addr, ErrClosed)
	}
	now := m.now()
	n := 0
	for n < len(m.idle) && now.Sub(m.idle[n].idleSince) >= m.idleTimeout {
		n++
	}
	expired := slices.Clone(m.idle[:n])
	m.idle = m.idle[n:]
	var s *session
	if k := len(m.idle); k > 0 {
		s, m.idle = m.idle[k-1], m.idle[:k-1]
	}
	m.mu.Unlock()
	for _, e := range expired {
		e.close()
	}
	return s, nil
}

// put returns s to the pool, or quits it if the pool is full or the mailer closed.
func (m *Mailer) put(s *session) {
	m.mu.Lock()
	if !m.closed && len(m.idle) < m.maxIdle {
		s.idleSince = m.now()
		m.idle = append(m.idle, s)
		m.mu.Unlock()
		return
	}
	m.mu.Unlock()
	_ = s.c.Quit() // the mail is sent; a failed QUIT changes nothing
}

// Close quits the idle sessions and makes every later Send fail with ErrClosed. Sends in
// progress finish and close their sessions. It always returns nil; later calls do nothing.
func (m *Mailer) Close() error {
	m.mu.Lock()
	idle := m.idle
	m.idle, m.closed = nil, true
	m.mu.Unlock()
	for _, s := range idle {
		s.conn.limit = time.Now().Add(m.connect)
		_ = s.c.Quit()
		s.close()
	}
	return nil
}

// compose checks the mail and writes its message; errors wrap ErrBadMail.
func (m *Mailer) compose(ml service.Mail) (rcpt string, msg []byte, err error) {
	if ml.Cause == nil || ml.Cause.Identity().ID == "" {
		return "", nil, fmt.Errorf("%w: no cause event to derive a Message-ID from", ErrBadMail)
	}
	to, err := mail.ParseAddress(ml.To)
	if err != nil {
		return "", nil, fmt.Errorf("%w: recipient %q: %v", ErrBadMail, ml.To, err)
	}
	if strings.ContainsAny(ml.Subject, "\r\n") {
		return "", nil, fmt.Errorf("%w: subject %q spans lines", ErrBadMail, ml.Subject)
	}
	var b bytes.Buffer
	header := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	header("From", m.from)
	header("To", to.String())
	header("Subject", mime.QEncoding.Encode("utf-8", ml.Subject))
	header("Date", m.now().Format(time.RFC1123Z))
	header("Message-ID", MessageID(ml.Cause.Identity().ID, m.domain))
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	if _, err := io.WriteString(qp, ml.Body); err != nil {
		return "", nil, fmt.Errorf("%w: body: %v", ErrBadMail, err)
	}
	if err := qp.Close(); err != nil {
		return "", nil, fmt.Errorf("%w: body: %v", ErrBadMail, err)
	}
	b.WriteString("\r\n")
	return to.Address, b.Bytes(), nil
}

// fail puts a failed send's error in its category. handedOver says the mail's data was complete.
func (m *Mailer) fail(ctx context.Context, handedOver bool, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		// Cancellation closed the connection, so err is only its echo.
		if handedOver {
			return fmt.Errorf("smtp: send to %s stopped after the data was sent: %w: %w", m.addr, cerr, service.ErrMailUnknown)
		}
		return fmt.Errorf("smtp: send to %s stopped: %w", m.addr, cerr)
	}
	category := service.ErrMailPermanent
	var reply *gosmtp.SMTPError
	switch {
	case errors.As(err, &reply) && reply.Code >= 400 && reply.Code < 500:
		category = service.ErrMailTransient
	case errors.As(err, &reply) && reply.Code >= 500:
		category = service.ErrMailPermanent
	case handedOver:
		category = service.ErrMailUnknown
	case isTLS(err):
		category = service.ErrMailPermanent
	case isNetwork(err):
		category = service.ErrMailTransient
	}
	return fmt.Errorf("smtp: send to %s: %w: %w", m.addr, category, err)
}

// isTLS reports whether err is a failed handshake or certificate check, which another attempt
// would meet again.
func isTLS(err error) bool {
	var (
		verify  *tls.CertificateVerificationError
		alert   tls.AlertError
		record  tls.RecordHeaderError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
	)
	return errors.As(err, &verify) || errors.As(err, &alert) || errors.As(err, &record) ||
		errors.As(err, &unknown) || errors.As(err, &host) || errors.As(err, &invalid) || isRemoteAlert(err)
}

// isRemoteAlert reports whether err is a TLS alert from the server, which crypto/tls gives as a
// *net.OpError with the Op "remote error".
func isRemoteAlert(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error"
}

// isNetwork reports whether err is the connection's failure rather than the conversation's.
func isNetwork(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}

// limitConn keeps every deadline go-smtp sets (it sets one per command and clears it after) at
// or before the send's limit, so SendTimeout bounds the whole conversation.
type limitConn struct {
	net.Conn
	limit time.Time
}

func (c *limitConn) clamp(t time.Time) time.Time {
	if t.IsZero() || t.After(c.limit) {
		return c.limit
	}
	return t
}

func (c *limitConn) SetDeadline(t time.Time) error      { return c.Conn.SetDeadline(c.clamp(t)) }
func (c *limitConn) SetReadDeadline(t time.Time) error  { return c.Conn.SetReadDeadline(c.clamp(t)) }
func (c *limitConn) SetWriteDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(c.clamp(t)) }
