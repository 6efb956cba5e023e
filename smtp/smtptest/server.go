// Package smtptest runs an SMTP server inside the process, on 127.0.0.1, for tests and the
// simulator: it records every message it reads, can drop repeats by Message-ID, and injects
// transient (451) and permanent (550) replies, slow replies, hangs and closed connections on a
// deterministic plan. It is built on github.com/emersion/go-smtp.
package smtptest

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/mail"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// Outcome is what the server made of a message it read.
type Outcome int

// The outcomes of a message.
const (
	// Delivered: the server took the message.
	Delivered Outcome = iota
	// Duplicate: the server answered 250 but dropped the message, a repeat of a delivered
	// Message-ID (see Config.Dedup).
	Duplicate
	// Refused: the plan refused the message (451, 550) or closed the connection instead of
	// answering.
	Refused
)

var outcomeNames = [...]string{"Delivered", "Duplicate", "Refused"}

func (o Outcome) String() string {
	if o >= 0 && int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Message is one message whose data the server read in full.
type Message struct {
	Index     int      // the mail transaction's number in the plan
	From      string   // the envelope sender
	To        []string // the envelope recipients
	Data      []byte   // the message as sent, headers and body, CRLF line endings, dots unstuffed
	MessageID string   // the Message-ID header's value, or "" if there is none
	TLS       bool     // the message came over a connection secured with STARTTLS
	Outcome   Outcome
}

// Parse reads the message's header and body.
func (m Message) Parse() (*mail.Message, error) { return mail.ReadMessage(bytes.NewReader(m.Data)) }

// Config configures a Server. The zero Config is a healthy server without TLS.
type Config struct {
	// Plan gives each mail transaction its fault (nil: none).
	Plan Plan
	// Dedup drops a message whose Message-ID was delivered before: it is answered 250 and
	// recorded as a Duplicate.
	Dedup bool
	// TLS, when set, makes the server offer STARTTLS with this configuration.
	TLS *tls.Config
}

// Server is an SMTP server listening on 127.0.0.1. It is safe for concurrent use.
type Server struct {
	plan  Plan
	dedup bool

	srv       *gosmtp.Server
	ln        *listener
	done      chan struct{} // closed by Close: ends delays
	served    chan struct{} // closed when Serve has returned
	closeOnce sync.Once

	mu       sync.Mutex
	next     int // the next transaction's number
	messages []Message
	seen     map[string]bool // delivered Message-IDs
	quits    int             // sessions ended by the client's QUIT
}

// Start starts a server on a free port of 127.0.0.1. Close it when done.
func Start(cfg Config) (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("smtptest: listen: %w", err)
	}
	s := &Server{plan: cfg.Plan, dedup: cfg.Dedup, ln: &listener{Listener: l, conns: map[net.Conn]bool{}},
		done: make(chan struct{}), served: make(chan struct{}), seen: map[string]bool{}}
	s.srv = gosmtp.NewServer(gosmtp.BackendFunc(func(c *gosmtp.Conn) (gosmtp.Session, error) {
		ss := &session{s: s, c: c, conn: connOf(c.Conn())}
		_, ss.tlsAtStart = c.TLSConnectionState()
		return ss, nil
	}))
	s.srv.Domain = "localhost"
	s.srv.TLSConfig = cfg.TLS
	s.srv.MaxMessageBytes = 1 << 20
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	go func() {
		defer close(s.served)
		_ = s.srv.Serve(s.ln)
	}()
	return s, nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Messages returns every message the server read, in the order it read them.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.messages)
}

// Delivered returns the messages the server took, in order: Messages without the duplicates and
// the refused.
func (s *Server) Delivered() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages {
		if m.Outcome == Delivered {
			out = append(out, m)
		}
	}
	return out
}

// Transactions returns how many mail transactions (MAIL FROM commands) the server has seen.
func (s *Server) Transactions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next
}

// Connections returns how many connections the server has accepted.
func (s *Server) Connections() int {
	s.ln.mu.Lock()
	defer s.ln.mu.Unlock()
	return s.ln.accepted
}

// Quits returns how many sessions ended with the client's QUIT, as against those whose
// connection closed or failed without one (a client that hangs up, DropConnections, a Close
// fault, Close). A session counts once the server has answered its QUIT and logged it out, a
// moment after the client read the 221: after Close the count is final.
func (s *Server) Quits() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.quits
}

// DropConnections closes every open connection without a reply, as a server does to sessions
// it finds idle for too long; the server goes on accepting new ones.
func (s *Server) DropConnections() {
	s.ln.mu.Lock()
	defer s.ln.mu.Unlock()
	for c := range s.ln.conns {
		_ = c.Close()
	}
}

// Close stops the server: it ends every delay and hang, closes the listener and every
// connection, and returns once every goroutine of the server has ended. Later calls do nothing.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.done)
		err = s.ln.Close()
		<-s.served // no connection is accepted after this
		s.ln.closeAll()
		_ = s.srv.Shutdown(context.Background()) // waits for the connections' goroutines
	})
	return err
}

func (s *Server) begin() (int, Fault) {
	s.mu.Lock()
	n := s.next
	s.next++
	s.mu.Unlock()
	if s.plan == nil {
		return n, Fault{}
	}
	return n, s.plan(n)
}

func (s *Server) record(m Message) Outcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.Outcome == Delivered && s.dedup && m.MessageID != "" {
		if s.seen[m.MessageID] {
			m.Outcome = Duplicate
		}
		s.seen[m.MessageID] = true
	}
	s.messages = append(s.messages, m)
	return m.Outcome
}

// wait waits d, or until the server closes; it reports whether d passed.
func (s *Server) wait(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.done:
		return false
	}
}

// check reports a fault the server cannot carry out, which it answers with 554 at MAIL FROM so
// that a mistaken plan shows at once.
func (f Fault) check() error {
	if f.At != AtData && f.At != AtMail || f.Reply < OK || f.Reply > Close || f.Delay < 0 {
		return fmt.Errorf("smtptest: the plan gave an invalid fault %+v", f)
	}
	return nil
}

var (
	errTransient = &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "Try again later (injected)"}
	errPermanent = &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 7, 1}, Message: "Rejected (injected)"}
	errClosed    = errors.New("smtptest: connection closed by the plan")
)

// session is one SMTP session; go-smtp calls it from the connection's goroutine.
type session struct {
	s          *Server
	c          *gosmtp.Conn
	conn       *conn // the accepted connection (TLS, once STARTTLS has run, goes over it)
	tlsAtStart bool  // the session began after STARTTLS
	n          int
	fault      Fault
	from       string
	to         []string
}

func (ss *session) Reset() { ss.from, ss.to, ss.fault = "", nil, Fault{} }

// Logout counts the session as quit when go-smtp ends it right after writing a reply, with no
// read since: go-smtp ends a session after its own reply only on QUIT (or on a panic, a fourth
// protocol error or a Reject, none of which this server's clients cause). A connection that
// closes or fails ends it after a read. STARTTLS logs out the plaintext session too, to begin
// another over TLS: that one is not an end.
func (ss *session) Logout() error {
	if _, secure := ss.c.TLSConnectionState(); secure && !ss.tlsAtStart {
		return nil
	}
	if ss.conn != nil && ss.conn.lastWrite.Load() {
		ss.s.mu.Lock()
		ss.s.quits++
		ss.s.mu.Unlock()
	}
	return nil
}

func (ss *session) Mail(from string, _ *gosmtp.MailOptions) error {
	ss.n, ss.fault = ss.s.begin()
	ss.from = from
	if err := ss.fault.check(); err != nil {
		ss.fault = Fault{At: AtMail, Reply: Permanent}
		return &gosmtp.SMTPError{Code: 554, EnhancedCode: gosmtp.EnhancedCode{5, 0, 0}, Message: err.Error()}
	}
	if ss.fault.At == AtMail {
		return ss.apply()
	}
	return nil
}

func (ss *session) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := Message{Index: ss.n, From: ss.from, To: slices.Clone(ss.to), Data: data, Outcome: Delivered}
	if _, ok := ss.c.TLSConnectionState(); ok {
		m.TLS = true
	}
	if msg, err := m.Parse(); err == nil {
		m.MessageID = msg.Header.Get("Message-ID")
	}
	if ss.fault.At != AtData {
		ss.s.record(m)
		return nil
	}
	if ss.fault.Reply != OK {
		m.Outcome = Refused
	}
	ss.s.record(m)
	return ss.apply()
}

// apply carries out the session's fault at its stage: the delay, then the hang or the reply.
func (ss *session) apply() error {
	f := ss.fault
	if !ss.s.wait(f.Delay) {
		// The server is closing: the transaction must not go on while it closes the connections.
		_ = ss.c.Conn().Close()
		return errClosed
	}
	if f.Hang {
		// The client sends nothing while it waits for the reply, so a read returns only when it
		// hangs up or Close closes the connection.
		_, _ = ss.c.Conn().Read(make([]byte, 1))
		_ = ss.c.Conn().Close()
		return errClosed
	}
	switch f.Reply {
	case Transient:
		return errTransient
	case Permanent:
		return errPermanent
	case Close:
		_ = ss.c.Conn().Close()
		return errClosed
	}
	return nil
}

// listener tracks the connections it accepts, so Close can close every one, even one go-smtp
// has not registered yet.
type listener struct {
	net.Listener
	mu       sync.Mutex
	closed   bool
	accepted int
	conns    map[net.Conn]bool
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		_ = c.Close()
		return nil, net.ErrClosed
	}
	l.conns[c] = true
	l.accepted++
	return &conn{Conn: c, l: l}, nil
}

func (l *listener) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for c := range l.conns {
		_ = c.Close()
	}
}

// conn is an accepted connection: it leaves the listener's set when closed, and remembers
// whether its last read or write was a write (see session.Logout).
type conn struct {
	net.Conn
	l         *listener
	lastWrite atomic.Bool
}

// connOf returns the accepted connection under c, which is one or a TLS connection over one.
func connOf(c net.Conn) *conn {
	if t, ok := c.(*tls.Conn); ok {
		c = t.NetConn()
	}
	oc, _ := c.(*conn)
	return oc
}

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.lastWrite.Store(false)
	return n, err
}

func (c *conn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.lastWrite.Store(err == nil)
	return n, err
}

func (c *conn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c.Conn)
	c.l.mu.Unlock()
	return c.Conn.Close()
}
