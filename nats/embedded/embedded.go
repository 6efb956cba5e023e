// Package embedded runs a NATS server with JetStream inside the process, for tests and for the
// simulator's default broker. It is its own package because nats-server is a large dependency:
// a program that publishes to an external broker imports package nats alone and does not link it.
package embedded

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ErrNotReady is wrapped when a started server does not accept connections within the start bound.
var ErrNotReady = errors.New("embedded nats server not ready")

// ErrClosed is returned by Restart after Close.
var ErrClosed = errors.New("embedded nats server closed")

// startBound caps how long Start and Restart wait for the server to accept connections. It is a
// bound on a failure, not a measurement: a healthy server is ready in milliseconds.
const startBound = 30 * time.Second

// Server is a NATS server with JetStream, listening on 127.0.0.1 and storing its streams in a
// directory of its own. Stop and Restart keep the port and the store, so a client configured to
// reconnect finds its streams, messages and de-duplication state again, as after a broker restart.
// Its methods are safe for concurrent use.
type Server struct {
	mu     sync.Mutex
	opts   server.Options
	srv    *server.Server // nil while stopped
	url    string
	tmp    bool // the store directory was made by Start and is removed by Close
	closed bool
}

// Start starts a server whose JetStream store is storeDir, or a new temporary directory (removed by
// Close) when storeDir is empty. The server picks a free port; URL reports it.
func Start(storeDir string) (*Server, error) {
	s := &Server{}
	if storeDir == "" {
		dir, err := os.MkdirTemp("", "stockbus-nats-*")
		if err != nil {
			return nil, fmt.Errorf("embedded nats store: %w", err)
		}
		storeDir, s.tmp = dir, true
	}
	s.opts = server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  storeDir,
		NoLog:     true,
		NoSigs:    true,
	}
	if err := s.start(); err != nil {
		if s.tmp {
			_ = os.RemoveAll(storeDir)
		}
		return nil, err
	}
	s.opts.Port = s.srv.Addr().(*net.TCPAddr).Port // a restart listens where clients reconnect
	s.url = s.srv.ClientURL()
	return s, nil
}

// must be called with s.mu held, or before s is shared.
func (s *Server) start() error {
	opts := s.opts // the server keeps and changes its options; keep ours clean
	srv, err := server.NewServer(&opts)
	if err != nil {
		return fmt.Errorf("embedded nats server: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(startBound) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return fmt.Errorf("%w after %v on port %d", ErrNotReady, startBound, s.opts.Port)
	}
	s.srv = srv
	return nil
}

// URL returns the nats:// URL clients connect to. It stays the same across Stop and Restart.
func (s *Server) URL() string { return s.url }

// StoreDir returns the directory that holds the server's JetStream streams.
func (s *Server) StoreDir() string { return s.opts.StoreDir }

// Stop shuts the server down, as a broker outage: clients lose their connections and, if they
// reconnect, keep trying until Restart. The store is kept. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stop()
}

// must be called with s.mu held.
func (s *Server) stop() {
	if s.srv == nil {
		return
	}
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	s.srv = nil
}

// Restart stops the server if it runs and starts it again on the same port with the same store.
// It returns once the server accepts connections; a client's reconnection is the client's business.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.stop()
	return s.start()
}

// Close stops the server and, if Start made the store directory, removes it. Close is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stop()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.tmp {
		if err := os.RemoveAll(s.opts.StoreDir); err != nil {
			return fmt.Errorf("remove embedded nats store: %w", err)
		}
	}
	return nil
}
