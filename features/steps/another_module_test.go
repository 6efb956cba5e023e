package steps_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAnotherModuleRunsTheSteps builds the module that features/README.md shows ("Using the
// steps from another module") in a temporary folder, its replace directive pointed at this
// checkout, and runs its scenarios. It works offline: GOPROXY=off, so everything must come from the
// local module cache, as it does for stockbus itself.
func TestAnotherModuleRunsTheSteps(t *testing.T) {
	if testing.Short() {
		t.Skip("builds another module")
	}
	raw, err := os.ReadFile(readme)
	require.NoError(t, err)
	files := moduleFiles(string(raw))
	require.Equal(t, []string{"go.mod", "specs/lamps.feature", "specs_test.go"}, sortedKeys(files), "the files the README shows")

	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	ownMod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	require.NoError(t, err)
	godog := regexp.MustCompile(`github.com/cucumber/godog (v\S+)`)
	require.Equal(t, godog.FindStringSubmatch(string(ownMod))[1], godog.FindStringSubmatch(files["go.mod"])[1],
		"the README's go.mod requires the godog that stockbus requires")
	require.Contains(t, files["go.mod"], "replace github.com/stockbus/stockbus => ../stockbus")

	dir := t.TempDir()
	files["go.mod"] = strings.ReplaceAll(files["go.mod"], "=> ../stockbus", "=> "+root)
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	require.NoError(t, err)
	files["go.sum"] = string(sum) // as the README says: copy stockbus's go.sum
	for name, text := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	}

	cmd := exec.Command("go", "test", "-count=1", "-v", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go test in the other module:\n%s", out)
	assert.Contains(t, string(out), "--- PASS: TestSpecs")
	assert.Contains(t, string(out), "--- PASS: TestSpecs/The_last_lamp")
}

// moduleFiles returns the code blocks that follow the README's "<!-- another-module:NAME -->"
// markers, by NAME.
func moduleFiles(doc string) map[string]string {
	block := regexp.MustCompile("(?s)<!-- another-module:(\\S+) -->\n```[a-z]*\n(.*?)```")
	files := map[string]string{}
	for _, m := range block.FindAllStringSubmatch(doc, -1) {
		files[m[1]] = m[2]
	}
	return files
}

func sortedKeys(m map[string]string) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
