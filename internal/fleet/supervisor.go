package fleet

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// ErrNotListening is wrapped when an instance exited, or its start was given up, before it said
// it was listening.
var ErrNotListening = errors.New("instance did not start listening")

// Build compiles cmd/api of the module that holds the working directory into dir and returns the
// binary's path. Build it once and start it many times: a start then costs a process, not a
// compilation.
func Build(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find the module: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	if root == "." || root == "" {
		return "", errors.New("find the module: not inside one")
	}
	bin := filepath.Join(dir, "api")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/api")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/api: %w\n%s", err, out)
	}
	return bin, nil
}

// Instance is one cmd/api process and its later lives: Kill or Stop ends a life, Restart starts
// the next on the same address with the same flags. Its methods are safe for concurrent use,
// but a life must have ended before Restart.
type Instance struct {
	name string
	bin  string
	args []string

	mu     sync.Mutex
	addr   string // host:port, fixed by the first life
	lives  int
	cmd    *exec.Cmd
	exited chan struct{} // closed once the current life's process has been waited for
	err    error         // its exit error
	logs   lockedBuffer  // stderr of every life
}

// Start starts the first life of an instance of bin named name (its -name) on a free port of
// 127.0.0.1, with args, and returns once it is listening.
func Start(ctx context.Context, bin, name string, args ...string) (*Instance, error) {
	i := &Instance{name: name, bin: bin, args: args, addr: "127.0.0.1:0"}
	return i, i.start(ctx)
}

// Name returns the instance's -name.
func (i *Instance) Name() string { return i.name }

// URL returns the base URL the instance serves on, the same in every life.
func (i *Instance) URL() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return "http://" + i.addr
}

// Lives returns how many lives have been started, from 1.
func (i *Instance) Lives() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.lives
}

// Logs returns what every life wrote on stderr so far.
func (i *Instance) Logs() string { return i.logs.String() }

func (i *Instance) start(ctx context.Context) error {
	i.mu.Lock()
	args := append([]string{"-addr", i.addr, "-name", i.name}, i.args...)
	cmd := exec.Command(i.bin, args...)
	cmd.Stderr = &i.logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		i.mu.Unlock()
		return err
	}
	i.lives++
	life := i.lives
	fmt.Fprintf(&i.logs, "--- life %d: %s %s\n", life, i.bin, strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		i.mu.Unlock()
		return fmt.Errorf("start %s: %w", i.name, err)
	}
	exited := make(chan struct{})
	i.cmd, i.exited = cmd, exited
	i.mu.Unlock()

	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if addr, ok := strings.CutPrefix(sc.Text(), "listening on http://"); ok {
				listening <- addr
			}
		}
		// Wait only once stdout is read to its end, as os/exec requires.
		err := cmd.Wait()
		i.mu.Lock()
		i.err = err
		i.mu.Unlock()
		close(exited)
	}()
	select {
	case addr := <-listening:
		i.mu.Lock()
		i.addr = addr
		i.mu.Unlock()
		return nil
	case <-exited:
		i.mu.Lock()
		defer i.mu.Unlock()
		return fmt.Errorf("%s life %d: %w: exited (%v)\n%s", i.name, life, ErrNotListening, i.err, i.logs.String())
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("%s life %d: %w: %w", i.name, life, ErrNotListening, ctx.Err())
	}
}

// Kill ends the current life with SIGKILL, as a crash: nothing is drained, nothing is closed. It
// returns once the process is gone.
func (i *Instance) Kill() error { return i.signal(syscall.SIGKILL, false) }

// Stop ends the current life with SIGTERM and returns once the process exited: nil after a clean
// drain (status 0), its exit error otherwise.
func (i *Instance) Stop() error { return i.signal(syscall.SIGTERM, true) }

func (i *Instance) signal(sig syscall.Signal, wantClean bool) error {
	i.mu.Lock()
	cmd, exited := i.cmd, i.exited
	i.mu.Unlock()
	if cmd == nil {
		return fmt.Errorf("%s: not started", i.name)
	}
	// A process that already exited cannot be signalled; its exit status still tells.
	_ = cmd.Process.Signal(sig)
	<-exited
	i.mu.Lock()
	defer i.mu.Unlock()
	if wantClean && i.err != nil {
		return fmt.Errorf("%s life %d: %w", i.name, i.lives, i.err)
	}
	return nil
}

// Restart starts the next life, on the same address, once the current one has ended.
func (i *Instance) Restart(ctx context.Context) error {
	i.mu.Lock()
	exited := i.exited
	i.mu.Unlock()
	select {
	case <-exited:
	default:
		return fmt.Errorf("%s life %d: restart while it runs", i.name, i.Lives())
	}
	return i.start(ctx)
}

// Close kills the current life if it still runs. It is for cleanups; Stop is the clean end.
func (i *Instance) Close() {
	i.mu.Lock()
	cmd, exited := i.cmd, i.exited
	i.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Kill()
		<-exited
	}
}

// lockedBuffer is a bytes.Buffer that the process's stderr copier and readers may share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
