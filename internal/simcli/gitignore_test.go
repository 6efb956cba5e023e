package simcli

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGitIgnoresWhatTheDocsWrite reads the output files the READMEs' commands write (-report,
// tee, go build -o) and asks git whether it ignores each, so a documented command leaves the
// repository clean.
func TestGitIgnoresWhatTheDocsWrite(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	root := filepath.Join("..", "..")
	outputs := regexp.MustCompile(`(?:-report|-chart|tee -i|tee|-o|>)\s+([\w./-]+\.(?:html|json|txt|png)|bin/\w+)`)
	found := map[string]bool{}
	for _, doc := range []string{"README.md", filepath.Join("sim", "README.md")} {
		text, err := os.ReadFile(filepath.Join(root, doc))
		require.NoError(t, err)
		for _, m := range outputs.FindAllStringSubmatch(string(text), -1) {
			if !filepath.IsAbs(m[1]) {
				found[m[1]] = true
			}
		}
	}
	require.Contains(t, found, "bin/simulate", "the docs build the binary")
	require.Contains(t, found, "sweep.html")
	for name := range found {
		cmd := exec.Command("git", "check-ignore", "-q", "--no-index", name)
		cmd.Dir = root
		assert.NoError(t, cmd.Run(), "git ignores %s, which a documented command writes", name)
	}
}
